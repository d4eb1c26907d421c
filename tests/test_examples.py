"""The scripts in examples/ run on both engines."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

import micrograd_fast

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))


# -- examples ---------------------------------------------------------------------

EXAMPLES_DIR = os.path.join(os.path.dirname(TESTS_DIR), "examples")


def run_example(engine, name, *args):
    path = os.path.join(EXAMPLES_DIR, name)
    if not os.path.exists(path):
        pytest.skip("examples/ is not next to the tests")
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT,
               MICROGRAD_FAST_NO_EXTENSIONS="0" if engine.COMPILED else "1")
    return subprocess.run([sys.executable, path, *args], env=env, capture_output=True,
                          text=True, timeout=600)


def test_example_lecture(engine, tmp_path):
    args = ["--steps", "3"]
    draws = (shutil.which("dot") is not None
             and importlib.util.find_spec("graphviz") is not None)
    if draws:
        args += ["--graphs", str(tmp_path)]
    r = run_example(engine, "lecture.py", *args)
    assert r.returncode == 0, r.stderr
    assert "backward():  a.grad=6.0, b.grad=-4.0" in r.stdout
    assert "b = a + a: a.grad = 2.0" in r.stdout
    assert r.stdout.count("x1.grad=-1.5000, x2.grad=0.5000, w1.grad=1.0000, w2.grad=0.0000") == 3
    if draws:
        assert (tmp_path / "expression.svg").stat().st_size > 0


def test_example_multiclass(engine):
    r = run_example(engine, "multiclass.py", "--steps", "3", "--points", "10", "--hidden", "4")
    assert r.returncode == 0, r.stderr
    losses = [float(line.split("train loss ")[1].split()[0])
              for line in r.stdout.splitlines() if "train loss" in line]
    assert len(losses) == 2 and losses[-1] < losses[0]


def test_example_newton(engine):
    r = run_example(engine, "newton.py", "--steps", "6")
    assert r.returncode == 0, r.stderr
    assert "minimum: x=1.050188219684" in r.stdout


def test_example_hessian_vector(engine):
    r = run_example(engine, "hessian_vector.py", "--points", "10")
    assert r.returncode == 0, r.stderr
    assert "relative difference from finite differences" in r.stdout
