"""The engines the suite compares, and how each one is loaded.

Each engine is known by a short name:

``micrograd_fast``
    the compiled core, ``micrograd_fast._engine``;
``reference``
    the pure-Python twin, ``micrograd_fast._engine_py``;
``micrograd``
    upstream micrograd's ``micrograd.engine``;
``torch``
    PyTorch, for the workloads that have a tensor form.

``compiled`` and ``pure``, the names the package and the lab use, are the
first two (``canonical``).

``load(name)`` returns an :class:`Engine` or raises :class:`EngineUnavailable`
with a one-line reason, which the runner prints as a note and moves on.
"""

import importlib
import importlib.util
import os

__all__ = [
    "ENGINE_NAMES",
    "ALIASES",
    "canonical",
    "Engine",
    "EngineUnavailable",
    "load",
    "from_module",
    "subprocess_env",
    "upstream_nn",
]

ENGINE_NAMES = ("micrograd_fast", "reference", "micrograd", "torch")

#: The names the package, the lab and the docs give our two engines.
ALIASES = {"compiled": "micrograd_fast", "pure": "reference"}


def canonical(name):
    """The suite's name of engine ``name`` (``compiled`` and ``pure`` are
    ``micrograd_fast`` and ``reference``); a ValueError that lists the
    names for any other."""
    name = ALIASES.get(name, name)
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; choose from "
                         f"{', '.join(ENGINE_NAMES + tuple(ALIASES))}")
    return name

_NO_EXT_VAR = "MICROGRAD_FAST_NO_EXTENSIONS"

_MODULES = {
    "micrograd_fast": "micrograd_fast._engine",
    "reference": "micrograd_fast._engine_py",
    "micrograd": "micrograd.engine",
}


class EngineUnavailable(Exception):
    """The engine cannot be used in this interpreter (reason in the message)."""


def _no_extensions():
    return os.environ.get(_NO_EXT_VAR, "") not in ("", "0")


def subprocess_env(name, base=None):
    """Environment for a worker process that runs engine ``name``.

    The pure twin's worker sets ``MICROGRAD_FAST_NO_EXTENSIONS=1`` so that the
    package (and ``micrograd_fast.nn``) resolve to the pure engine there; the
    compiled core's worker keeps the caller's setting, so a caller that set the
    variable gets the compiled engine skipped, as the test suite does.
    """
    env = dict(os.environ if base is None else base)
    if name == "reference":
        env[_NO_EXT_VAR] = "1"
    return env


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # not installed as a distribution (e.g. a source tree)
        return None


class Engine:
    """One engine as the workloads see it.

    ``Value`` is the scalar class (``None`` for torch), ``module`` the engine
    module, ``vsum`` the engine's n-ary sum when it has one, ``version`` a
    version string or ``None``.
    """

    def __init__(self, name, module, version):
        self.name = name
        self.module = module
        self.version = version
        self.Value = getattr(module, "Value", None) if name != "torch" else None
        self.vsum = getattr(module, "vsum", None)

    @property
    def is_scalar(self):
        return self.Value is not None

    def __repr__(self):
        return f"Engine({self.name!r}, version={self.version!r})"


def _package_version():
    try:
        from micrograd_fast._version import __version__

        return __version__
    except Exception:
        return None


def load(name):
    """Import engine ``name``; raise EngineUnavailable with the reason."""
    name = canonical(name)
    if name == "micrograd_fast" and _no_extensions():
        raise EngineUnavailable(f"{_NO_EXT_VAR} is set")
    modname = "torch" if name == "torch" else _MODULES[name]
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        if name == "micrograd_fast":
            raise EngineUnavailable(_no_core_reason(exc)) from exc
        reason = str(exc).split(". ")[0]
        raise EngineUnavailable(f"cannot import {modname}: {reason}") from exc
    if name == "torch":
        version = getattr(module, "__version__", None)
    elif name == "micrograd":
        version = _version("micrograd")
    else:
        version = _package_version()
        if name == "micrograd_fast" and not getattr(module, "COMPILED", False):
            raise EngineUnavailable(f"{modname} is not the compiled core")
    return Engine(name, module, version)


def _no_core_reason(exc):
    """Why the compiled core does not import, and the command that fixes it."""
    import benchmarks

    where, kind = benchmarks.measured_package()
    if where is not None and not benchmarks.has_compiled_core(where):
        return (f"micrograd_fast's compiled core is not built, neither in the source "
                f"tree nor in an installed package: `pip install -e "
                f"\"{benchmarks.ROOT}\"` builds it in place")
    reason = str(exc).split(". ")[0]
    return f"cannot import micrograd_fast._engine ({kind} package at {where}): {reason}"


def from_module(module):
    """An Engine for an engine module already imported (used by the tests)."""
    for name, modname in _MODULES.items():
        if module.__name__ == modname:
            if name == "micrograd":
                return Engine(name, module, _version("micrograd"))
            return Engine(name, module, _package_version())
    raise ValueError(f"{module.__name__} is not a known engine module")


def upstream_nn(Value, tag):
    """Upstream's ``micrograd/nn.py`` loaded as a fresh module using ``Value``.

    The file is executed as it is (it imports upstream's engine, which is
    harmless), then its global ``Value`` is replaced, so ``Neuron``, ``Layer``
    and ``MLP`` build their parameters from the given class: upstream's own
    network code running on another engine, as a user swapping the import
    would.  Raises EngineUnavailable when micrograd is not installed.
    """
    try:
        spec = importlib.util.find_spec("micrograd.nn")
    except ImportError as exc:
        raise EngineUnavailable(f"cannot find micrograd.nn: {exc}") from exc
    if spec is None or spec.origin is None:
        raise EngineUnavailable("micrograd is not installed (its nn.py is needed)")
    fresh = importlib.util.spec_from_file_location(f"_upstream_nn_on_{tag}", spec.origin)
    module = importlib.util.module_from_spec(fresh)
    fresh.loader.exec_module(module)
    module.Value = Value
    return module
