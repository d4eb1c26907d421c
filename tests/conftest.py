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


@pytest.fixture(scope="session", autouse=True)
def _neutral_working_directory(tmp_path_factory):
    """Run the tests from an empty directory.

    ``python -c`` and ``python -m`` put the working directory first on
    sys.path.  From the repository root that is the source tree, whose
    ``micrograd_fast/`` holds no compiled core when the package was
    installed with pip, so a test's subprocess would import another package
    than the test itself.  Tests that need a directory of their own still
    pass ``cwd=``.
    """
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(previous)
