"""micrograd-fast run: micrograd scripts on micrograd_fast (the alias, the
engine option, --replace-value)."""

import os
import subprocess
import sys
import textwrap

import pytest

import micrograd_fast
from micrograd_fast.lab import run as lab_run

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))


# -- run -----------------------------------------------------------------------------

SCRIPT = """\
import sys
import micrograd
import micrograd.engine
from micrograd.engine import Value
from micrograd.nn import MLP

x = Value(3.0)
y = x * x + 1
y.backward()
print("module", Value.__module__)
print("file", micrograd.engine.__file__)
print("package", micrograd.__name__)
print("grad", x.grad)
print("mlp", type(MLP(2, [3, 1])(([1.0, 2.0]))).__module__)
print("argv", sys.argv[1:])
print("name", __name__)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def test_run_swaps_in_micrograd_fast(engine, tmp_path, engine_name, cli):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    r = cli(engine, "run", str(script), "0", "--lr", "0.1")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    expected_module = "micrograd_fast._engine" if engine.COMPILED else "micrograd_fast._engine_py"
    assert lines["module"] == expected_module
    assert lines["file"] == os.path.join(PACKAGE_PARENT, "micrograd_fast", "engine.py")
    assert lines["package"] == "micrograd_fast"
    assert lines["grad"] == "6.0"
    assert lines["mlp"] == expected_module
    assert lines["argv"] == "['0', '--lr', '0.1']"
    assert lines["name"] == "__main__"
    stderr_lines = r.stderr.strip().splitlines()
    assert "in place of micrograd" in stderr_lines[0]
    assert f"{engine_name} engine" in stderr_lines[0]
    # the rest name the real micrograd the alias hides, if one is installed
    assert all(line.startswith("micrograd-fast: shadowing the installed micrograd ")
               for line in stderr_lines[1:])


def _shadow_lines(stderr):
    return [line for line in stderr.splitlines() if "micrograd-fast: shadowing" in line]


def test_run_names_a_local_micrograd_package(engine, tmp_path, cli):
    """A student's own micrograd/ next to the script is named, with its path,
    before the script runs, and the script still gets micrograd_fast."""
    proj = tmp_path / "proj"
    (proj / "micrograd").mkdir(parents=True)
    (proj / "micrograd" / "__init__.py").write_text("OWN = True\n")
    (proj / "micrograd" / "engine.py").write_text("class Value: pass\n")
    script = proj / "train.py"
    script.write_text("import micrograd\nprint(micrograd.__name__)\n")
    r = cli(engine, "run", str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "micrograd_fast"
    lines = _shadow_lines(r.stderr)
    assert lines, r.stderr
    assert lines[0] == (
        "micrograd-fast: shadowing the micrograd package next to the script "
        f"('import micrograd' gives micrograd_fast): {proj / 'micrograd'}")
    # said before the script's own output could be: stderr's first lines
    assert r.stderr.splitlines()[1] == lines[0]


def test_run_names_a_micrograd_module_in_the_working_directory(engine, tmp_path, cli):
    (tmp_path / "micrograd.py").write_text("OWN = True\n")
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "train.py"
    script.write_text("import micrograd\nprint(micrograd.__name__)\n")
    r = cli(engine, "run", str(script), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "micrograd_fast"
    assert (f"micrograd-fast: shadowing the micrograd module in the working directory "
            f"('import micrograd' gives micrograd_fast): {tmp_path / 'micrograd.py'}"
            in _shadow_lines(r.stderr))


def test_shadowed_micrograd_lists_each_place_once(tmp_path, monkeypatch):
    here = tmp_path / "here"
    (here / "micrograd").mkdir(parents=True)  # a namespace package counts too
    site = tmp_path / "site"
    (site / "micrograd").mkdir(parents=True)
    (site / "micrograd" / "__init__.py").write_text("")
    monkeypatch.chdir(here)
    found = lab_run.shadowed_micrograd(str(here), [str(site), str(here), str(tmp_path)])
    assert found == [(str(here / "micrograd"), "next to the script"),
                     (str(site / "micrograd"), "installed")]
    monkeypatch.chdir(tmp_path)
    assert lab_run.shadowed_micrograd(str(tmp_path), [str(tmp_path)]) == []


# A script with its own Value class written in the children / local-gradients
# style, trained on a few made-up names: printed numbers only.  It is a
# user's program as a user writes it (recursive topological sort, ops in one
# line each), deliberately not built from benchmarks.microgpt's class: what
# `run --replace-value` must handle is the text of someone else's script.
OWN_VALUE_SCRIPT = """import math
import random
import sys


class Value:
    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def exp(self):
        return Value(math.exp(self.data), (self,), (math.exp(self.data),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def relu(self):
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return other + (-self)
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * other ** -1
    def __rtruediv__(self, other): return other * self ** -1

    def backward(self):
        order, seen = [], set()
        def visit(v):
            if v not in seen:
                seen.add(v)
                for c in v._children:
                    visit(c)
                order.append(v)
        visit(self)
        self.grad = 1
        for v in reversed(order):
            for c, g in zip(v._children, v._local_grads):
                c.grad += g * v.grad


def halve_square(x):
    # an op of the script's own, built in the node form
    return Value(0.5 * x.data * x.data, (x,), (x.data,))


rng = random.Random(3)
words = ["ana", "bo", "kira", "lum", "sefa", "tor"]
chars = sorted(set("".join(words)))
V, D = len(chars) + 1, 6
emb = [[Value(rng.gauss(0, 0.3)) for _ in range(D)] for _ in range(V)]
out = [[Value(rng.gauss(0, 0.3)) for _ in range(D)] for _ in range(V)]
params = [p for m in (emb, out) for row in m for p in row]
node_op = "--node-op" in sys.argv
for step in range(6):
    w = words[step % len(words)]
    toks = [V - 1] + [chars.index(c) for c in w] + [V - 1]
    losses = []
    for a, b in zip(toks, toks[1:]):
        h = [e.relu() if not node_op else halve_square(e) for e in emb[a]]
        logits = [sum(wi * hi for wi, hi in zip(row, h)) for row in out]
        top = max(l.data for l in logits)
        exps = [(l - top).exp() for l in logits]
        total = sum(exps)
        losses.append(-(exps[b] / total).log())
    loss = sum(losses) / len(losses)
    loss.backward()
    for p in params:
        p.data -= 0.5 * p.grad
        p.grad = 0
    print(f"step {step} loss {loss.data:.4f}")
"""


def _plain_run(script, *args):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=600)


def _node_form(Value):
    return hasattr(Value(1.0), "_local_grads")


def test_run_replace_value_gives_the_scripts_own_numbers(engine, tmp_path, cli):
    script = tmp_path / "names.py"
    script.write_text(OWN_VALUE_SCRIPT)
    own = _plain_run(script)
    assert own.returncode == 0, own.stderr
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout == own.stdout
    assert len(r.stdout.splitlines()) == 6
    expected = (f"micrograd-fast: replacing the script's class Value ({script}, line 6) "
                f"with micrograd_fast's Value ({engine.Value.__module__}.Value)")
    assert expected in r.stderr.splitlines()


def test_run_replace_value_with_an_op_in_node_form(engine, tmp_path, cli):
    if not _node_form(engine.Value):
        pytest.skip("Value(data, children, local_grads) is not supported yet")
    script = tmp_path / "names.py"
    script.write_text(OWN_VALUE_SCRIPT)
    own = _plain_run(script, "--node-op")
    assert own.returncode == 0, own.stderr
    r = cli(engine, "run", "--replace-value", str(script), "--node-op")
    assert r.returncode == 0, r.stderr
    assert r.stdout == own.stdout


def test_run_replace_value_binds_our_class(engine, tmp_path, cli):
    script = tmp_path / "which.py"
    script.write_text(textwrap.dedent("""\
        class Value:
            def __init__(self, data):
                self.data = data


        class Param(Value):
            pass


        def make(x):
            return Value(x)


        p = Param(2.0)
        print(Value.__module__, isinstance(p, Value), isinstance(make(1.0) * 2, Value))
        print(Param.__mro__[1].__module__)
        """))
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 0, r.stderr
    module = engine.Value.__module__
    assert r.stdout.splitlines() == [f"{module} True True", module]
    assert f"({script}, line 1)" in r.stderr


LECTURE_OPS_SCRIPT = """\
import math


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def sin(self):
        out = Value(math.sin(self.data), (self,), 'sin')

        def _backward():
            self.grad += math.cos(self.data) * out.grad

        out._backward = _backward
        return out

    def wobble(self):
        return self

    def __ne__(self, other):
        return self is not other

    def backward(self):
        topo, seen = [], set()

        def build(v):
            if id(v) not in seen:
                seen.add(id(v))
                for c in v._prev:
                    build(c)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


x = Value(0.5)
y = (x * x).sin().wobble()
y.backward()
print(repr(y.data), repr(x.grad), y._op)
"""


def test_run_replace_value_adds_the_scripts_own_ops(engine, tmp_path, cli):
    script = tmp_path / "ops.py"
    script.write_text(LECTURE_OPS_SCRIPT)
    own = _plain_run(script)
    assert own.returncode == 0, own.stderr
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout == own.stdout
    lines = r.stderr.splitlines()
    assert ("micrograd-fast: adding sin, wobble from the class Value of __main__ to "
            "micrograd_fast's Value for this run") in lines
    assert any(line.startswith("micrograd-fast: not adding __ne__ from the class Value")
               for line in lines)
    assert not hasattr(engine.Value, "sin")  # (in this process: only for that run)


COURSE_VALUE = LECTURE_OPS_SCRIPT[:LECTURE_OPS_SCRIPT.index("x = Value(0.5)")]
COURSE_SCRIPT = """\
from value import Value
from nets.layers import Neuron

x = Value(0.5)
y = (x * x).sin()
y.backward()
print(repr(y.data), repr(x.grad), type(x).__module__.startswith("micrograd_fast"))
print(Neuron().out())
"""


def _course(tmp_path):
    """The course layout: the lecture's class in a module beside the script,
    a package that imports it too, and a notebook beside them."""
    (tmp_path / "value.py").write_text(COURSE_VALUE)
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "__init__.py").write_text("")
    (tmp_path / "nets" / "layers.py").write_text(
        "from value import Value\n\n\nclass Neuron:\n    def out(self):\n"
        "        return (Value(2.0) * Value(3.0)).data\n")
    (tmp_path / "lecture.ipynb").write_text('{"cells": [], "nbformat": 4, "nbformat_minor": 5}')
    script = tmp_path / "train.py"
    script.write_text(COURSE_SCRIPT)
    return script


def test_run_replace_value_in_a_module_beside_the_script(engine, tmp_path, cli):
    script = _course(tmp_path)
    own = _plain_run(script)
    assert own.returncode == 0, own.stderr
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [own.stdout.splitlines()[0].replace("False", "True"),
                                     own.stdout.splitlines()[1]]
    assert (f"micrograd-fast: replacing the class Value of module value "
            f"({tmp_path / 'value.py'}, line 4) with micrograd_fast's Value") in r.stderr
    assert "adding sin, wobble from the class Value of value to" in r.stderr
    named = cli(engine, "run", "--replace-value=value", str(script))
    assert named.returncode == 0, named.stderr
    assert named.stdout == r.stdout
    other = cli(engine, "run", "--replace-value=nets.layers", str(script))
    assert other.returncode == 2
    assert "module nets.layers" in other.stderr and "no top-level 'class Value'" in other.stderr


def test_run_replace_value_without_a_value_class(engine, tmp_path, cli):
    script = tmp_path / "plain.py"
    script.write_text("def f():\n    class Value: pass\nprint('ran')\n")
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 2
    assert r.stdout == ""
    assert f"{script} defines no top-level 'class Value' to replace" in r.stderr


def test_replace_value_keeps_line_numbers():
    source = "x = 1\nclass Value:\n    pass\n\n\nclass Value:\n    y = 2\nraise KeyError(x)\n"
    code, lines = lab_run.replace_value(source, "s.py")
    assert lines == [2, 6]
    scope = {lab_run._INJECTED: lambda theirs: int}
    with pytest.raises(KeyError) as info:
        exec(code, scope)
    assert scope["Value"] is int
    assert info.traceback[-1].lineno + 1 == 8


def test_run_passes_the_exit_code_on(engine, tmp_path, cli):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    r = cli(engine, "run", str(script), "3")
    assert r.returncode == 3, r.stderr


def test_run_even_with_upstream_installed(tmp_path, cli):
    pytest.importorskip("micrograd.engine")  # upstream micrograd is importable
    script = tmp_path / "which.py"
    script.write_text("import micrograd.engine as e\nprint(e.__name__)\n")
    r = cli(micrograd_fast, "run", str(script), env_engine="pure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "micrograd_fast.engine"


def test_run_missing_script(engine, tmp_path, cli):
    r = cli(engine, "run", str(tmp_path / "nope.py"))
    assert r.returncode == 2 and "no such script" in r.stderr


@pytest.mark.compiled_core
@pytest.mark.parametrize("env_engine,flag", [("compiled", "pure"), ("pure", "compiled")])
def test_engine_option_overrides_environment(tmp_path, env_engine, flag, cli):
    script = tmp_path / "which.py"
    script.write_text("from micrograd.engine import Value\nprint(Value.__module__)\n")
    r = cli(micrograd_fast, "run", "--engine", flag, str(script), env_engine=env_engine)
    assert r.returncode == 0, r.stderr
    expected = "micrograd_fast._engine_py" if flag == "pure" else "micrograd_fast._engine"
    assert r.stdout.strip() == expected


SUM_SCRIPT = """\
import micrograd
import micrograd_fast
from micrograd_fast import Value

total = micrograd_fast.sum([Value(1.0), Value(2.0)])
also = micrograd.sum([Value(3.0)], 1.0)
print(type(total).__module__, total.data, also.data)
"""


def test_run_engine_option_rebinds_micrograd_fast_sum(engine, engine_name, tmp_path, cli,
                                                     no_extensions):
    # regression: with --engine pure over a compiled default, micrograd_fast.sum
    # stayed the compiled vsum and refused the script's (pure) Values
    script = tmp_path / "sums.py"
    script.write_text(SUM_SCRIPT)
    start = "pure" if no_extensions else ("pure" if engine.COMPILED else "compiled")
    r = cli(engine, "run", "--engine", engine_name, str(script), env_engine=start)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [engine.__name__, "3.0", "4.0"]


def test_alias_is_undone_after_the_block():
    before = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "micrograd"}
    finders = list(sys.meta_path)
    with lab_run.micrograd_alias():
        import micrograd.engine

        assert micrograd.engine is sys.modules["micrograd_fast.engine"]
        assert sys.modules["micrograd"] is micrograd_fast
    after = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "micrograd"}
    assert after == before
    assert sys.meta_path == finders


def test_alias_explains_missing_submodules():
    with lab_run.micrograd_alias():
        with pytest.raises(ModuleNotFoundError, match="micrograd.nothing_here"):
            import micrograd.nothing_here  # noqa: F401


# -- a directory with a __main__.py, and the script's own traceback -----------------------------


def test_run_a_directory_as_python_does(engine, tmp_path, cli):
    app = tmp_path / "app"
    app.mkdir()
    (app / "helper.py").write_text("def loss(v):\n    return (v * v).data\n")
    (app / "__main__.py").write_text(
        "import sys\nfrom micrograd.engine import Value\nfrom helper import loss\n"
        "print('argv', sys.argv[1:], 'loss', loss(Value(3.0)))\n")
    ours = cli(engine, "run", str(app), "x", "y")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == "argv ['x', 'y'] loss 9.0"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli(engine, "run", str(empty))
    assert r.returncode == 2 and "no __main__.py" in r.stderr


def test_an_uncaught_exception_s_traceback_starts_at_the_script(engine, tmp_path, cli):
    script = tmp_path / "boom.py"
    script.write_text("from micrograd.engine import Value\n\n"
                      "def f(v):\n    return v.log()\n\nf(Value(-1.0))\n")
    ours = cli(engine, "run", str(script))
    theirs = subprocess.run(
        [sys.executable, "-c", "import sys, runpy; sys.modules['micrograd'] = "
         "__import__('micrograd_fast'); sys.modules['micrograd.engine'] = "
         "__import__('micrograd_fast.engine').engine; runpy.run_path(sys.argv[1], "
         "run_name='__main__')", str(script)], capture_output=True, text=True)
    assert ours.returncode == 1 == theirs.returncode
    lines = ours.stderr.splitlines()
    start = lines.index("Traceback (most recent call last):")
    assert lines[start + 1].startswith(f'  File "{script}", line 6, in <module>'), ours.stderr
    assert "cli.py" not in ours.stderr and "runpy" not in ours.stderr
    assert lines[-1] == theirs.stderr.splitlines()[-1]
    assert lines[-1].startswith("ValueError: ")
