"""micrograd_fast: a compiled-core, drop-in faster micrograd."""

from micrograd_fast._version import __version__
from micrograd_fast.engine import COMPILED, Value
from micrograd_fast import engine as _engine

#: ``sum(values, start=0.0)``: the selected engine's ``vsum``, one n-ary
#: ``'sum'`` node instead of a chain of ``+`` nodes (same number as the
#: builtin ``sum`` of the same Values: the additions run left to right).
sum = _engine.vsum

__all__ = ["Value", "COMPILED", "sum", "__version__"]
