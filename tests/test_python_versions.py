"""What must not depend on the Python version running the tests.

* Float summation.  Since CPython 3.12 the builtin ``sum()`` of floats adds
  with compensation (Neumaier), so it can differ in the last bits from adding
  left to right with ``+``.  Upstream micrograd's ``sum()`` over Values is a
  chain of ``+`` (left to right), and that is the number this package
  promises on every Python: ``vsum``, ``micrograd_fast.sum`` and the neurons
  add in order.  The cases below are ones where the two ways differ, so these
  tests fail on 3.12 and later if anything takes the builtin float ``sum``.
* Free-threaded CPython.  The compiled core declares that it needs the GIL
  (``freethreading_compatible = False`` at the top of ``_engine.pyx``), and
  free-threaded wheels are not built (``docs/packaging.md``).  The import's
  effect is tested on free-threaded interpreters; that the declaration, the
  wheel matrix and the documentation agree is tested everywhere.
* The version claims: classifiers, ``requires-python``, the cibuildwheel
  matrix, the Cython floor and the documentation list the same versions.
"""

import fnmatch
import math
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from micrograd_fast import nn


try:
    import tomllib
except ImportError:  # Python < 3.11: pytest itself depends on tomli there
    import tomli as tomllib

CHECKOUT = Path(__file__).resolve().parent.parent
PYPROJECT = CHECKOUT / "pyproject.toml"
FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

needs_checkout = pytest.mark.skipif(
    not PYPROJECT.is_file(), reason="the tests are not next to the project's pyproject.toml"
)


def in_order(xs, start=0.0):
    """Upstream's ``sum()`` of Values, on floats: ``+`` from left to right."""
    acc = start
    for x in xs:
        acc = acc + x
    return acc


# (id, terms): in-order and compensated summation give different floats
CASES = [
    ("tenths", [0.1] * 10),  # 0.9999999999999999, compensated 1.0
    ("ramp", [0.1 * i for i in range(10)]),  # 4.500000000000001, compensated 4.5
    ("absorbed", [1e16, 1.0, -1e16]),  # 0.0, compensated 1.0
    ("cancelled", [1.0, 1e100, 1.0, -1e100]),  # 0.0, compensated 2.0
]
case_params = pytest.mark.parametrize("xs", [c[1] for c in CASES], ids=[c[0] for c in CASES])


@case_params
def test_the_cases_tell_the_two_summations_apart(xs):
    assert in_order(xs) != math.fsum(xs)
    if sys.version_info >= (3, 12):
        # the interpreter's own sum compensates: this is what must not leak in
        assert sum(xs) != in_order(xs)
    else:
        assert sum(xs) == in_order(xs)


def test_the_expected_in_order_numbers():
    assert [in_order(xs) for _, xs in CASES] == [0.9999999999999999, 4.500000000000001, 0.0, 0.0]


@case_params
def test_vsum_adds_left_to_right(engine, Value, xs):
    want = in_order(xs)
    assert engine.vsum([Value(x) for x in xs]).data == want
    # plain numbers are folded into the sum at their place, in order too
    assert engine.vsum(xs).data == want
    assert engine.vsum(list(xs)).data == want
    assert engine.vsum(xs[1:], start=xs[0]).data == want
    assert engine.vsum(xs[1:], start=Value(xs[0])).data == want
    mixed = [Value(x) if k % 2 else x for k, x in enumerate(xs)]
    assert engine.vsum(mixed).data == want
    # and the builtin sum over Values is the chain of + nodes
    assert sum(Value(x) for x in xs).data == want


@case_params
def test_vsum_gives_upstreams_sum_of_values(engine, Value, xs):
    upstream = pytest.importorskip("micrograd.engine")
    theirs = sum(upstream.Value(x) for x in xs)
    ours = [Value(x) for x in xs]
    s = engine.vsum(ours)
    assert s.data == theirs.data == in_order(xs)
    s.backward()
    theirs.backward()
    assert [v.grad for v in ours] == [1.0] * len(xs)


@case_params
def test_neuron_adds_its_products_in_order(engine, xs):
    n = nn.Neuron(len(xs), nonlin=False, engine=engine)
    for w in n.w:
        w.data = 1.0
    n.b.data = 0.0
    assert n(xs).data == in_order(xs)


@case_params
def test_neuron_matches_upstreams_neuron(engine, xs):
    unn = pytest.importorskip("micrograd.nn")
    ours = nn.Neuron(len(xs), nonlin=False, engine=engine)
    theirs = unn.Neuron(len(xs), nonlin=False)
    for a, b in zip(ours.w, theirs.w):
        a.data = b.data = 1.0
    assert ours(xs).data == theirs(xs).data


# -- free-threaded CPython -------------------------------------------------------------------

_IMPORT_ON_FREE_THREADED = """
import sys, warnings
before = sys._is_gil_enabled()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import micrograd_fast
print(before, sys._is_gil_enabled(), micrograd_fast.COMPILED)
for w in caught:
    print(w.category.__name__, str(w.message).replace("\\n", " "))
"""


def _import_in_child(**env):
    child_env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "MICROGRAD_FAST_NO_EXTENSIONS")
    }
    child_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ON_FREE_THREADED],
        capture_output=True, text=True, timeout=120, env=child_env, check=True,
    ).stdout.splitlines()
    return out[0].split(), out[1:]


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="CPython built with the GIL: nothing to re-enable")
@pytest.mark.compiled_core
def test_importing_the_core_on_free_threaded_python_re_enables_the_gil():
    state, warned = _import_in_child()
    assert state == ["False", "True", "True"]
    assert any(
        line.startswith("RuntimeWarning") and "GIL" in line and "micrograd_fast._engine" in line
        for line in warned
    ), warned


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="CPython built with the GIL: nothing to force off")
@pytest.mark.compiled_core
def test_python_gil_0_keeps_the_gil_off_as_documented():
    # documented as unsupported (the arena has no locks), but this is what it does
    state, warned = _import_in_child(PYTHON_GIL="0")
    assert state == ["False", "False", "True"]
    assert not any(line.startswith("RuntimeWarning") for line in warned), warned


@pytest.mark.skipif(not FREE_THREADED_BUILD, reason="CPython built with the GIL: nothing to keep off")
def test_the_pure_engine_leaves_the_gil_off():
    state, warned = _import_in_child(MICROGRAD_FAST_NO_EXTENSIONS="1")
    assert state == ["False", "False", "False"]
    assert not any(line.startswith("RuntimeWarning") for line in warned), warned


def _pyproject():
    with open(PYPROJECT, "rb") as f:
        return tomllib.load(f)


def _selects(selectors, identifier):
    return any(fnmatch.fnmatch(identifier, s) for s in selectors.split())


@needs_checkout
def test_free_threading_declaration_wheels_and_docs_agree():
    with open(CHECKOUT / "micrograd_fast" / "_engine.pyx", encoding="utf-8") as f:
        first = f.readline().strip()
    assert first == "# cython: freethreading_compatible = False"
    cibw = _pyproject()["tool"]["cibuildwheel"]
    # not free-threading compatible, so no free-threaded wheels: no build
    # selector matches a "t" identifier, and the opt-in for 3.13t is off
    for minor in range(13, 20):
        for plat in ("manylinux_x86_64", "musllinux_aarch64", "macosx_arm64", "win_amd64"):
            assert not _selects(cibw["build"], f"cp3{minor}t-{plat}")
    assert "cpython-freethreading" not in cibw.get("enable", [])
    policy = (CHECKOUT / "docs" / "packaging.md").read_text(encoding="utf-8")
    assert "## Free-threaded CPython" in policy
    assert "Free-threaded (`t`) wheels are not built" in policy
    assert "freethreading_compatible = False" in policy


# -- the versions claimed --------------------------------------------------------------------


def _claimed_minors():
    found = set()
    for c in _pyproject()["project"]["classifiers"]:
        m = re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


# CPython versions that need a newer Cython than the 3.1 floor the project
# started with: the first Cython release that builds for them
CYTHON_FOR_MINOR = {15: (3, 3, 0)}
# and the first cibuildwheel release that builds them by default (4.1 has
# cp315 only behind the prerelease opt-in)
CIBUILDWHEEL_FOR_MINOR = {15: (4, 2)}


@needs_checkout
def test_version_claims_agree():
    project = _pyproject()
    minors = _claimed_minors()
    assert minors == list(range(minors[0], minors[-1] + 1))
    assert project["project"]["requires-python"] == f">=3.{minors[0]}"
    # cibuildwheel: exactly the claimed versions, GIL builds only
    build = project["tool"]["cibuildwheel"]["build"].split()
    assert build == [f"cp3{m}-*" for m in minors]
    # the Cython floor generates C for the newest claimed version
    (cython,) = [r for r in project["build-system"]["requires"] if r.lower().startswith("cython")]
    floor = tuple(int(p) for p in re.fullmatch(r"(?i)cython>=([\d.]+)", cython).group(1).split("."))
    floor += (0,) * (3 - len(floor))
    need = max((v for m, v in CYTHON_FOR_MINOR.items() if m <= minors[-1]), default=(3, 0, 0))
    assert floor >= need
    # the documentation names the same range
    span = f"CPython 3.{minors[0]}–3.{minors[-1]}"
    assert span in (CHECKOUT / "docs" / "packaging.md").read_text(encoding="utf-8")
    # the release workflow's cibuildwheel knows the newest claimed version
    # (.github/ is not in the sdist)
    workflow = CHECKOUT / ".github" / "workflows" / "wheels.yml"
    if workflow.is_file():
        m = re.search(r"pypa/cibuildwheel@v(\d+)\.(\d+)", workflow.read_text(encoding="utf-8"))
        need = max((v for k, v in CIBUILDWHEEL_FOR_MINOR.items() if k <= minors[-1]), default=(0, 0))
        assert m and (int(m.group(1)), int(m.group(2))) >= need
