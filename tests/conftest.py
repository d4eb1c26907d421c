"""One test suite, run against both engines.

Tests take the ``engine`` fixture (the engine module) or ``Value`` (its Value
class).  Each runs twice, with ids ``c`` (the compiled core) and ``py`` (the
pure-Python twin).  ``MICROGRAD_FAST_NO_EXTENSIONS=1`` skips the ``c`` runs;
without it a missing compiled core is an error, never a silent skip.

Tests that need one engine in particular take ``compiled_engine`` (skipped
under ``MICROGRAD_FAST_NO_EXTENSIONS``) or ``pure_engine``; a test or module
marked ``compiled_core`` is skipped there too (for module-level comparisons of
the two engines); ``no_extensions`` tells whether the variable is set.
"""

import importlib
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

NO_EXTENSIONS = os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0")

ENGINE_MODULES = {"c": "micrograd_fast._engine", "py": "micrograd_fast._engine_py"}
NO_EXTENSIONS_REASON = "MICROGRAD_FAST_NO_EXTENSIONS is set"

ENGINE_PARAMS = [
    pytest.param(
        "c",
        id="c",
        marks=pytest.mark.skipif(
            NO_EXTENSIONS, reason=NO_EXTENSIONS_REASON
        ),
    ),
    pytest.param("py", id="py"),
]


def restore_class_attr(cls, name, saved):
    """Put back a class attribute read as cls.__dict__.get(name) (None: the
    class had none of its own)."""
    if saved is None:
        delattr(cls, name)
    else:
        setattr(cls, name, saved)


@pytest.fixture(params=ENGINE_PARAMS)
def engine(request):
    return importlib.import_module(ENGINE_MODULES[request.param])


@pytest.fixture
def Value(engine):
    return engine.Value


def _lecture_expression(Value):
    """The lecture's first expression, L = (a*b + c) * f, every node labelled:
    (a, b, c, e, d, f, L)."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return a, b, c, e, d, f, L


@pytest.fixture
def lecture_expression(Value):
    """A builder of the lecture's first expression on the ``Value`` fixture's
    engine: each call makes a fresh (a, b, c, e, d, f, L)."""
    return lambda: _lecture_expression(Value)


@pytest.fixture(scope="session")
def no_extensions():
    """Whether MICROGRAD_FAST_NO_EXTENSIONS is set (the ``c`` runs skip)."""
    return NO_EXTENSIONS


@pytest.fixture(scope="session")
def compiled_engine():
    """The compiled core; the test is skipped under MICROGRAD_FAST_NO_EXTENSIONS."""
    if NO_EXTENSIONS:
        pytest.skip(NO_EXTENSIONS_REASON)
    return importlib.import_module(ENGINE_MODULES["c"])


@pytest.fixture(scope="session")
def pure_engine():
    return importlib.import_module(ENGINE_MODULES["py"])


@pytest.fixture
def engine_name(engine):
    """The ``engine`` fixture's name for ``--engine``: 'compiled' or 'pure'."""
    return "compiled" if engine.COMPILED else "pure"


@pytest.fixture(scope="session")
def dot_program():
    """Graphviz's dot program; the test is skipped without it."""
    path = shutil.which("dot")
    if path is None:
        pytest.skip("Graphviz's dot program is not on PATH (apt-get install graphviz, "
                    "brew install graphviz or conda install -c conda-forge graphviz)")
    return path


# the command in a fresh interpreter, as the console script runs it
_CLI_BOOT = textwrap.dedent(
    """
    import sys
    from micrograd_fast.lab.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _run_cli(engine, *args, cwd=None, env_engine=None, extra_boot=""):
    import micrograd_fast

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    which = env_engine or ("compiled" if engine.COMPILED else "pure")
    env["MICROGRAD_FAST_NO_EXTENSIONS"] = "1" if which == "pure" else "0"
    return subprocess.run(
        [sys.executable, "-c", extra_boot + _CLI_BOOT, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def cli():
    """``cli(engine, *args, cwd=None, env_engine=None, extra_boot="")`` runs
    ``micrograd-fast ARGS`` in a fresh interpreter with ``engine`` (any module
    with ``COMPILED``) selected by the environment, or ``env_engine``
    ('compiled' or 'pure'); ``extra_boot`` is Python run first.  Returns the
    CompletedProcess."""
    return _run_cli


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "compiled_core: needs the compiled core (skipped under MICROGRAD_FAST_NO_EXTENSIONS)",
    )


def pytest_runtest_setup(item):
    if NO_EXTENSIONS and item.get_closest_marker("compiled_core") is not None:
        pytest.skip(NO_EXTENSIONS_REASON)


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
