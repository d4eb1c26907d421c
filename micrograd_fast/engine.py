"""Selects the engine: the compiled core, or the pure twin when
``MICROGRAD_FAST_NO_EXTENSIONS`` is set to a non-empty value other than 0.

The engine interface is written once, in ``micrograd_fast._vocab`` (both
engines build their ``__all__`` from it) and re-exported here.
``ENGINE_API`` lists the names every engine exports (its ``__all__``, in
that order), ``ARENA_API`` the compiled core's arena names that follow them
there (the pure twin has no arena).  The tests hold both engines' ``__all__`` and the stubs to these
lists.  Whatever binds or forwards engine names reads them: this module's own
bindings below, the package's names (``PACKAGE_FORWARDS``), the lab's engine
switch (``micrograd_fast.lab.engines.use_engine``) and the modules that find
the engine of a Value (``engine_of``).
"""

import os
import sys

from micrograd_fast._vocab import ARENA_API, ENGINE_API

__all__ = ["Value", "COMPILED"]

#: The engine modules, by the name the lab's ``--engine`` option gives them.
ENGINE_MODULES = {"compiled": "micrograd_fast._engine", "pure": "micrograd_fast._engine_py"}

#: The names ``micrograd_fast`` forwards from the selected engine, as
#: (the package's name, the engine's name).
PACKAGE_FORWARDS = (("Value", "Value"), ("COMPILED", "COMPILED"), ("sum", "vsum"),
                    ("grad", "grad"), ("linear", "linear"))

NO_EXTENSIONS = os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0")


def is_engine(module):
    """Whether ``module`` provides the whole engine interface."""
    return all(hasattr(module, name) for name in ENGINE_API)


def resolve_engine(engine):
    """The engine module ``engine`` names: None for the selected one (this
    module), ``"compiled"`` or ``"pure"`` (the names the lab and the docs
    use), an engine module's own name, or an engine module itself.  Any
    other name is a ValueError that lists the names; anything else a
    TypeError."""
    if engine is None:
        return sys.modules[__name__]
    if isinstance(engine, str):
        name = ENGINE_MODULES.get(engine, engine)
        if name not in _ENGINE_MODULE_NAMES and name != __name__:
            raise ValueError(
                f"unknown engine {engine!r}: expected 'compiled' or 'pure' "
                f"(or a module: {', '.join(sorted(_ENGINE_MODULE_NAMES))})"
            )
        import importlib

        return importlib.import_module(name)
    if not is_engine(engine):
        raise TypeError(
            "engine must be 'compiled', 'pure' or a micrograd_fast engine module, "
            f"not {type(engine).__name__}"
        )
    return engine


def engine_of(value):
    """The engine module ``value``'s class (or a class it derives from)
    belongs to, or None when it is not an engine's Value."""
    for cls in type(value).__mro__:
        name = cls.__module__
        if name in _ENGINE_MODULE_NAMES and cls.__name__ == "Value":
            return sys.modules[name]
    return None


def forward_names(package):
    """Bind ``package``'s forwarded names (``PACKAGE_FORWARDS``) to the
    selected engine's objects."""
    for ours, theirs in PACKAGE_FORWARDS:
        setattr(package, ours, globals()[theirs])


_ENGINE_MODULE_NAMES = frozenset(ENGINE_MODULES.values())


def _bind(impl):
    """This module's engine names, from the engine module ``impl``.

    Also run again when the lab switches engines (it reloads this module in
    place): arena names the new engine lacks are dropped.
    """
    namespace = globals()
    for name in ENGINE_API:
        namespace[name] = getattr(impl, name)
    for name in ARENA_API:
        if hasattr(impl, name):
            namespace[name] = getattr(impl, name)
        else:
            namespace.pop(name, None)


if NO_EXTENSIONS:
    from micrograd_fast import _engine_py as _impl
else:
    try:
        from micrograd_fast import _engine as _impl
    except ImportError as exc:  # pragma: no cover - depends on the build
        _here = os.path.dirname(os.path.abspath(__file__))
        if os.path.exists(os.path.join(_here, "_engine.pyx")):
            # a source checkout: an installed copy, if any, is shadowed by it
            # (the current directory comes first on sys.path)
            _fix = (
                f"micrograd_fast was imported from the source tree {_here}, where "
                "the core is not built (a copy installed with pip is not used "
                "while this directory comes first on sys.path). Build it in place "
                f'with `pip install -e "{os.path.dirname(_here)}"`, or run from '
                "another directory"
            )
        else:
            _fix = "Reinstall the package with pip so the extension is compiled"
        raise ImportError(
            "micrograd_fast's compiled core (micrograd_fast._engine) is not built: "
            f"{exc}. {_fix}, or set MICROGRAD_FAST_NO_EXTENSIONS=1 to use the "
            "pure-Python engine."
        ) from exc

_bind(_impl)
