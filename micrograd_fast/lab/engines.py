"""Choosing the engine for a lab command (``--engine compiled|pure``).

``micrograd_fast.engine`` picks its engine from ``MICROGRAD_FAST_NO_EXTENSIONS``
when first imported.  The command line runs after that import, so a request
for the other engine sets the variable (child processes inherit it) and
re-runs the selector, which rebinds its engine names (``ENGINE_API``); the
package's own (``PACKAGE_FORWARDS``: ``micrograd_fast.Value``, ``.sum``, ...)
are rebound the same way, and modules that took ``Value`` from the old engine
(``micrograd_fast.nn`` and friends) are dropped so their next import binds the
new one.
"""

import importlib
import os
import sys

from micrograd_fast.engine import ENGINE_MODULES

ENV = "MICROGRAD_FAST_NO_EXTENSIONS"
CHOICES = tuple(ENGINE_MODULES)

# the submodules kept across a switch: the selector itself (reloaded in
# place), the engines, and modules that bind no engine name at import; every
# other micrograd_fast.* module (the lab's excepted) is dropped and re-imported
_KEEP = {
    "micrograd_fast.engine",
    "micrograd_fast._vocab",
    "micrograd_fast._engine",
    "micrograd_fast._engine_py",
    "micrograd_fast._version",
    "micrograd_fast.viz",
    "micrograd_fast.datasets",
}


def engine_name(engine_module):
    return "compiled" if engine_module.COMPILED else "pure"


def use_engine(name=None):
    """Make ``name`` ('compiled' or 'pure'; None: leave as is) the engine.

    Returns the ``micrograd_fast.engine`` module.  Asking for the compiled
    core when it is not built raises ImportError with the selector's message.
    """
    import micrograd_fast
    import micrograd_fast.engine as engine

    if name is None or name == engine_name(engine):
        return engine
    if name not in CHOICES:
        raise ValueError(f"engine must be one of {CHOICES}, not {name!r}")
    previous = os.environ.get(ENV)
    os.environ[ENV] = "1" if name == "pure" else "0"
    try:
        importlib.reload(engine)
    except ImportError:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        importlib.reload(engine)
        raise
    engine.forward_names(micrograd_fast)
    for mod_name in list(sys.modules):
        if mod_name.startswith("micrograd_fast.") and mod_name not in _KEEP:
            if mod_name.startswith("micrograd_fast.lab"):
                continue
            del sys.modules[mod_name]
            parent, _, child = mod_name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None):
                delattr(sys.modules[parent], child)
    return engine
