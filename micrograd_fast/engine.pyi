"""Type information for the engine selector: it exports the compiled core's
API (the pure twin provides the same names and signatures)."""

from micrograd_fast._engine import *
from micrograd_fast._engine import COMPILED as COMPILED
from micrograd_fast._engine import Value as Value

NO_EXTENSIONS: bool

__all__ = ["Value", "COMPILED"]
