"""Benchmark suite of micrograd_fast: ``python -m benchmarks --help``.

Compares the compiled core (``micrograd_fast``), the pure-Python twin
(``reference``), upstream micrograd (``micrograd``) and PyTorch (``torch``)
on the same workloads, each engine and workload in a fresh interpreter.

Which ``micrograd_fast`` is measured: the source tree's, when its compiled
core is built there (``pip install -e .`` or ``python setup.py build_ext
--inplace``); otherwise the installed package (``pip install .``), which
the source tree's unbuilt ``micrograd_fast/`` would shadow when the suite
runs from the repository root.  :func:`measured_package` says which.
"""

import importlib.machinery
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_PACKAGE = os.path.join(ROOT, "micrograd_fast")

#: how to get a measurable micrograd_fast when there is none
BUILD_HINT = "pip install -e ."


def has_compiled_core(package_dir):
    """Whether ``package_dir`` holds a built ``_engine`` extension module."""
    try:
        names = os.listdir(package_dir)
    except OSError:
        return False
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return any(n.startswith("_engine.") and n.endswith(suffixes) for n in names)


def _resolves_to_root(entry):
    try:
        return os.path.samefile(entry or os.curdir, ROOT)
    except OSError:
        return False


def _prefer_built_package():
    """Move the source tree to the end of sys.path when its micrograd_fast
    has no compiled core and an installed one has (``benchmarks`` itself is
    imported already, and its submodules load through its ``__path__``)."""
    if "micrograd_fast" in sys.modules or not os.path.isdir(SOURCE_PACKAGE):
        return
    if has_compiled_core(SOURCE_PACKAGE):
        return
    shadowing = [p for p in sys.path if _resolves_to_root(p)]
    if not shadowing:
        return
    rest = [p for p in sys.path if p not in shadowing]
    saved = sys.path[:]
    sys.path[:] = rest
    try:  # every finder, editable installs' too, without the source tree
        spec = importlib.util.find_spec("micrograd_fast")
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path[:] = saved
    if spec is None or not spec.submodule_search_locations:
        return
    if not any(has_compiled_core(d) for d in spec.submodule_search_locations):
        return
    sys.path[:] = rest + shadowing


def measured_package():
    """``(directory, kind)`` of the micrograd_fast this process would import:
    kind is ``"source tree"`` or ``"installed"``; ``(None, None)`` if none."""
    module = sys.modules.get("micrograd_fast")
    if module is not None and getattr(module, "__file__", None):
        where = os.path.dirname(os.path.abspath(module.__file__))
        return where, _kind(where)
    try:
        spec = importlib.util.find_spec("micrograd_fast")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, None
    where = os.path.abspath(list(spec.submodule_search_locations)[0])
    return where, _kind(where)


def _kind(where):
    try:
        same = os.path.samefile(where, SOURCE_PACKAGE)
    except OSError:
        same = False
    return "source tree" if same else "installed"


_prefer_built_package()
