"""The engine in use is the one asked for, never a silent fallback."""

import os
import subprocess
import sys
import textwrap

import micrograd_fast
import micrograd_fast.engine
import micrograd_fast._engine_py
import pytest

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))


def run_python(code, no_extensions):
    env = dict(os.environ)
    env.pop("MICROGRAD_FAST_NO_EXTENSIONS", None)
    if no_extensions is not None:
        env["MICROGRAD_FAST_NO_EXTENSIONS"] = no_extensions
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_both_import_spellings_work():
    from micrograd_fast import Value as A
    from micrograd_fast.engine import Value as B

    assert A is B
    v = A(2.0) * B(3.0)
    v.backward()
    assert v.data == 6.0


@pytest.mark.compiled_core
def test_compiled_core_is_in_use_without_the_flag():
    import micrograd_fast._engine

    assert micrograd_fast.engine.Value is micrograd_fast._engine.Value
    assert micrograd_fast.Value is micrograd_fast._engine.Value
    assert micrograd_fast.COMPILED is True
    assert micrograd_fast.engine.COMPILED is True
    assert micrograd_fast._engine.COMPILED is True
    assert micrograd_fast.Value is not micrograd_fast._engine_py.Value


def test_pure_engine_is_in_use_with_the_flag(no_extensions):
    if not no_extensions:
        pytest.skip("MICROGRAD_FAST_NO_EXTENSIONS is not set")
    assert micrograd_fast.Value is micrograd_fast._engine_py.Value
    assert micrograd_fast.engine.Value is micrograd_fast._engine_py.Value
    assert micrograd_fast.COMPILED is False
    assert micrograd_fast.engine.COMPILED is False


def test_pure_engine_reports_not_compiled():
    assert micrograd_fast._engine_py.COMPILED is False


PROBE = """
    import micrograd_fast, micrograd_fast.engine, micrograd_fast._engine_py
    from micrograd_fast import Value
    from micrograd_fast.engine import Value as V2
    assert Value is V2
    print(micrograd_fast.COMPILED, Value is micrograd_fast._engine_py.Value)
"""


@pytest.mark.parametrize("flag", ["1", "yes"])
def test_flag_selects_the_pure_engine_in_a_fresh_process(flag):
    r = run_python(PROBE, flag)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


@pytest.mark.compiled_core
@pytest.mark.parametrize("flag", [None, "", "0"])
def test_no_flag_selects_the_compiled_core_in_a_fresh_process(flag):
    r = run_python(PROBE, flag)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"]


@pytest.mark.parametrize("flag", [None, "0"])
def test_missing_compiled_core_is_an_import_error(flag):
    # hide the compiled core: importing the package must fail loudly
    code = """
        import sys
        sys.modules["micrograd_fast._engine"] = None
        try:
            import micrograd_fast
        except ImportError as exc:
            print("ImportError", "MICROGRAD_FAST_NO_EXTENSIONS" in str(exc))
        else:
            print("imported", micrograd_fast.COMPILED)
    """
    r = run_python(code, flag)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ImportError", "True"]
