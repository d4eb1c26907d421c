"""Type information for the engine selector: it exports the compiled core's
API (the pure twin provides the same names and signatures, without the
arena's ``ARENA_API``)."""

from types import ModuleType
from typing import Optional

from micrograd_fast._engine import *
from micrograd_fast._engine import COMPILED as COMPILED
from micrograd_fast._engine import Value as Value

NO_EXTENSIONS: bool
ENGINE_API: tuple[str, ...]
ARENA_API: tuple[str, ...]
ENGINE_MODULES: dict[str, str]
PACKAGE_FORWARDS: tuple[tuple[str, str], ...]

def is_engine(module: object) -> bool: ...
def resolve_engine(engine: Optional[object]) -> ModuleType: ...
def engine_of(value: object) -> Optional[ModuleType]: ...
def forward_names(package: ModuleType) -> None: ...

__all__ = ["Value", "COMPILED"]
