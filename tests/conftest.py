"""One test suite, run against both engines.

Tests take the ``engine`` fixture (the engine module) or ``Value`` (its Value
class).  Each runs twice, with ids ``c`` (the compiled core) and ``py`` (the
pure-Python twin).  ``MICROGRAD_FAST_NO_EXTENSIONS=1`` skips the ``c`` runs;
without it a missing compiled core is an error, never a silent skip.
"""

import importlib
import os

import pytest

NO_EXTENSIONS = os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0")

ENGINE_MODULES = {"c": "micrograd_fast._engine", "py": "micrograd_fast._engine_py"}

ENGINE_PARAMS = [
    pytest.param(
        "c",
        id="c",
        marks=pytest.mark.skipif(
            NO_EXTENSIONS, reason="MICROGRAD_FAST_NO_EXTENSIONS is set"
        ),
    ),
    pytest.param("py", id="py"),
]


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request):
    return importlib.import_module(ENGINE_MODULES[request.param])


@pytest.fixture
def Value(engine):
    return engine.Value
