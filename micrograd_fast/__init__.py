"""micrograd_fast: a compiled-core, drop-in faster micrograd."""

from micrograd_fast._version import __version__
from micrograd_fast.engine import COMPILED, Value

__all__ = ["Value", "COMPILED", "__version__"]
