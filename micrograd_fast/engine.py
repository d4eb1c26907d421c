"""Selects the engine: the compiled core, or the pure twin when
``MICROGRAD_FAST_NO_EXTENSIONS`` is set to a non-empty value other than 0."""

import os

NO_EXTENSIONS = os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0")

if NO_EXTENSIONS:
    from micrograd_fast._engine_py import *  # noqa: F401,F403
    from micrograd_fast._engine_py import COMPILED, Value
else:
    try:
        from micrograd_fast._engine import *  # noqa: F401,F403
        from micrograd_fast._engine import COMPILED, Value
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

__all__ = ["Value", "COMPILED"]
