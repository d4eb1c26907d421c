"""The lab: the micrograd-fast command, draw_dot and the moons data."""

import html
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import micrograd_fast
from micrograd_fast.datasets import make_moons
from micrograd_fast.lab import run as lab_run
from micrograd_fast.lab.walkthrough import walkthrough
from micrograd_fast.viz import collect_graph, draw_dot, value_svg

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))
HAVE_DOT = shutil.which("dot") is not None
HAVE_GRAPHVIZ = importlib.util.find_spec("graphviz") is not None
needs_dot = pytest.mark.skipif(
    not HAVE_DOT,
    reason="Graphviz's dot program is not on PATH (apt-get install graphviz, "
    "brew install graphviz or conda install -c conda-forge graphviz)",
)
needs_graphviz = pytest.mark.skipif(
    not HAVE_GRAPHVIZ, reason="the graphviz package (test and viz extras) is not installed")

# The command as a subprocess.
BOOT = textwrap.dedent(
    """
    import sys
    from micrograd_fast.lab.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def engine_flag(engine):
    return "compiled" if engine.COMPILED else "pure"


def cli(engine, *args, cwd=None, env_engine=None, extra_boot=""):
    """Run ``micrograd-fast ARGS`` in a fresh interpreter with ``engine``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    which = env_engine or engine_flag(engine)
    env["MICROGRAD_FAST_NO_EXTENSIONS"] = "1" if which == "pure" else "0"
    return subprocess.run(
        [sys.executable, "-c", extra_boot + BOOT, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# -- demo ----------------------------------------------------------------------


needs_viz = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tqdm", "matplotlib")),
    reason="tqdm and matplotlib (the viz extra) are not both installed",
)


@needs_viz
def test_demo_trains_and_writes_pngs(engine, tmp_path):
    plot = tmp_path / "out" / "moons.png"
    plot.parent.mkdir()
    r = cli(engine, "demo", "--steps", "3", "--plot", str(plot),
            "--engine", engine_flag(engine))
    assert r.returncode == 0, r.stderr
    for path in (plot, tmp_path / "out" / "moons_loss.png"):
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert f"{engine_flag(engine)} engine" in r.stdout
    assert "mean time per step:" in r.stdout
    assert "step 3: loss" in r.stdout
    assert "training" in r.stderr and "3/3" in r.stderr  # the progress bar


@needs_viz
def test_demo_default_plot_names_and_first_loss(engine, tmp_path):
    r = cli(engine, "demo", "--steps", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "moons.png").stat().st_size > 0
    assert (tmp_path / "moons_loss.png").stat().st_size > 0
    # the first loss of micrograd's demo notebook (seed 1337)
    assert "step 1: loss 0.895844, accuracy 50%" in r.stdout


def test_demo_matches_upstream_micrograd():
    upstream_engine = pytest.importorskip("micrograd.engine")
    upstream_nn = pytest.importorskip("micrograd.nn")
    from micrograd_fast.lab.demo import evaluate, moons_data, train

    X, labels = moons_data(1337)
    model = upstream_nn.MLP(2, [16, 16, 1])
    losses, accs, _ = train(model, upstream_engine.Value, X, labels, 2)
    assert round(losses[0], 6) == 0.895844 and accs[0] == 0.5
    total, _ = evaluate(model, upstream_engine.Value, X, labels)
    assert total.data < losses[0]


def test_demo_no_plot_writes_nothing(engine, tmp_path):
    r = cli(engine, "demo", "--steps", "0", "--no-plot", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == []


BLOCK_VIZ = "import sys; sys.modules['tqdm'] = sys.modules['matplotlib'] = None\n"


def test_demo_runs_without_the_viz_extra(engine, tmp_path):
    """No tqdm, no matplotlib: the demo still trains and reports, and one
    line names the extra that adds the progress bar and the plots."""
    r = cli(engine, "demo", "--steps", "20", cwd=tmp_path, extra_boot=BLOCK_VIZ)
    assert r.returncode == 0, r.stderr
    assert "step 20: loss" in r.stdout and "accuracy" in r.stdout
    assert "mean time per step:" in r.stdout
    hints = [line for line in r.stdout.splitlines() if "micrograd-fast[viz]" in line]
    assert len(hints) == 1
    assert "progress bar and plots" in hints[0]
    assert "tqdm" in hints[0] and "matplotlib" in hints[0]
    # plain progress lines instead of the bar
    assert "step 10/20: loss" in r.stderr and "step 20/20: loss" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_demo_first_loss_without_the_viz_extra(engine, tmp_path):
    r = cli(engine, "demo", "--steps", "1", cwd=tmp_path, extra_boot=BLOCK_VIZ)
    assert r.returncode == 0, r.stderr
    assert "step 1: loss 0.895844, accuracy 50%" in r.stdout


def test_demo_without_tqdm_still_plots(engine, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (viz extra)")
    block = "import sys; sys.modules['tqdm'] = None\n"
    r = cli(engine, "demo", "--steps", "2", cwd=tmp_path, extra_boot=block)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "moons.png").stat().st_size > 0
    (hint,) = [line for line in r.stdout.splitlines() if "micrograd-fast[viz]" in line]
    assert "not installed: tqdm)" in hint


def test_demo_explicit_plot_needs_matplotlib(engine, tmp_path):
    """A picture asked for by name that cannot be drawn is an error, before
    any training, naming the extra."""
    r = cli(engine, "demo", "--steps", "1", "--plot", "x.png", cwd=tmp_path,
            extra_boot=BLOCK_VIZ)
    assert r.returncode == 2
    assert "micrograd-fast[viz]" in r.stderr and "matplotlib" in r.stderr
    assert "step 1:" not in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_lr_schedule():
    from micrograd_fast.lab.demo import learning_rate

    assert learning_rate(0) == 1.0
    assert learning_rate(50) == pytest.approx(0.55)
    assert learning_rate(99) == pytest.approx(0.109)


# -- walkthrough -------------------------------------------------------------------


def test_walkthrough_numbers(Value):
    out = io.StringIO()
    assert walkthrough(Value, out=out) is True
    text = out.getvalue()
    for line in [
        "e = a * b = 2.0 * -3.0 = -6.0",
        "d = e + c = -6.0 + 10.0 = 4.0",
        "L = d * f = 4.0 * -2.0 = -8.0",
        "dL/dd = dL/dL * dL/dd = 1.0 * -2.0 = -2.0",
        "dL/df = dL/dL * dL/df = 1.0 * 4.0 = 4.0",
        "local derivative dd/de = 1.0",
        "dL/de = dL/dd * dd/de = -2.0 * 1.0 = -2.0",
        "dL/dc = dL/dd * dd/dc = -2.0 * 1.0 = -2.0",
        "local derivative de/da = b = -3.0",
        "dL/da = dL/de * de/da = -2.0 * -3.0 = 6.0",
        "dL/db = dL/de * de/db = -2.0 * 2.0 = -4.0",
        "a.grad = 6.0, b.grad = -4.0, c.grad = -2.0",
        "h = 1e-06",
    ]:
        assert line in text, line
    assert text.count("  ok") == 4 and "MISMATCH" not in text


def test_walkthrough_command(engine, tmp_path):
    r = cli(engine, "walkthrough", "--engine", engine_flag(engine), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "L = d * f = 4.0 * -2.0 = -8.0" in r.stdout
    assert "dL/da = dL/de * de/da = -2.0 * -3.0 = 6.0" in r.stdout
    assert list(tmp_path.iterdir()) == []


@needs_graphviz
@needs_dot
def test_walkthrough_graph_svg(engine, tmp_path):
    svg = tmp_path / "graph.svg"
    r = cli(engine, "walkthrough", "--graph", str(svg), "--engine", engine_flag(engine))
    assert r.returncode == 0, r.stderr
    text = html.unescape(svg.read_text())
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for needle in ["data -8.0000", "grad 1.0000", "data 2.0000", "grad 6.0000",
                   "data -3.0000", "grad -4.0000", "data 10.0000", ">L<", ">a<",
                   ">*<", ">+<"]:
        assert needle in text, needle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.svg"]


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


def test_run_swaps_in_micrograd_fast(engine, tmp_path):
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
    assert f"{engine_flag(engine)} engine" in stderr_lines[0]
    # the rest name the real micrograd the alias hides, if one is installed
    assert all(line.startswith("micrograd-fast: shadowing the installed micrograd ")
               for line in stderr_lines[1:])


def _shadow_lines(stderr):
    return [line for line in stderr.splitlines() if "micrograd-fast: shadowing" in line]


def test_run_names_a_local_micrograd_package(engine, tmp_path):
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


def test_run_names_a_micrograd_module_in_the_working_directory(engine, tmp_path):
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
# style, trained on a few made-up names: printed numbers only.
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


def test_run_replace_value_gives_the_scripts_own_numbers(engine, tmp_path):
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


def test_run_replace_value_with_an_op_in_node_form(engine, tmp_path):
    if not _node_form(engine.Value):
        pytest.skip("Value(data, children, local_grads) is not supported yet")
    script = tmp_path / "names.py"
    script.write_text(OWN_VALUE_SCRIPT)
    own = _plain_run(script, "--node-op")
    assert own.returncode == 0, own.stderr
    r = cli(engine, "run", "--replace-value", str(script), "--node-op")
    assert r.returncode == 0, r.stderr
    assert r.stdout == own.stdout


def test_run_replace_value_binds_our_class(engine, tmp_path):
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


def test_run_replace_value_names_methods_ours_lacks(engine, tmp_path):
    script = tmp_path / "extra.py"
    script.write_text(textwrap.dedent("""\
        import math


        class Value:
            def __init__(self, data):
                self.data = data

            def exp(self):
                return Value(math.exp(self.data))

            def wobble(self):
                return self

            def shimmer(self):
                return self


        print((Value(0.0).exp()).data)
        """))
    r = cli(engine, "run", "--replace-value", str(script))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1.0"
    assert ("micrograd-fast: the script's class Value defines wobble, shimmer, which "
            "micrograd_fast's Value does not have: calls to them fail unless the "
            "script adds them to Value") in r.stderr.splitlines()


def test_run_replace_value_without_a_value_class(engine, tmp_path):
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
    scope = {lab_run._INJECTED: int}
    with pytest.raises(KeyError) as info:
        exec(code, scope)
    assert scope["Value"] is int
    assert info.traceback[-1].lineno + 1 == 8


def test_run_passes_the_exit_code_on(engine, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    r = cli(engine, "run", str(script), "3")
    assert r.returncode == 3, r.stderr


def test_run_even_with_upstream_installed(tmp_path):
    pytest.importorskip("micrograd.engine")  # upstream micrograd is importable
    script = tmp_path / "which.py"
    script.write_text("import micrograd.engine as e\nprint(e.__name__)\n")
    r = cli(micrograd_fast, "run", str(script), env_engine="pure")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "micrograd_fast.engine"


def test_run_missing_script(engine, tmp_path):
    r = cli(engine, "run", str(tmp_path / "nope.py"))
    assert r.returncode == 2 and "no such script" in r.stderr


@pytest.mark.skipif(
    os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0"),
    reason="needs the compiled core",
)
@pytest.mark.parametrize("env_engine,flag", [("compiled", "pure"), ("pure", "compiled")])
def test_engine_option_overrides_environment(tmp_path, env_engine, flag):
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


def test_run_engine_option_rebinds_micrograd_fast_sum(engine, tmp_path, no_extensions):
    # regression: with --engine pure over a compiled default, micrograd_fast.sum
    # stayed the compiled vsum and refused the script's (pure) Values
    script = tmp_path / "sums.py"
    script.write_text(SUM_SCRIPT)
    flag = engine_flag(engine)
    start = "pure" if no_extensions else ("pure" if engine.COMPILED else "compiled")
    r = cli(engine, "run", "--engine", flag, str(script), env_engine=start)
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


# -- draw_dot ---------------------------------------------------------------------------


def lecture_graph(Value):
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
    return L


def test_draw_dot_records_and_ops(Value):
    pytest.importorskip("graphviz")
    L = lecture_graph(Value)
    dot = micrograd_fast.draw_dot(L)
    src = dot.source
    assert "{ L | data -8.0000 | grad 0.0000 }" in src
    assert "{ a | data 2.0000 | grad 0.0000 }" in src
    assert src.count("shape=record") == 7
    assert src.count('label="*"') == 2 and src.count('label="+"') == 1
    assert "rankdir=LR" in src
    L.backward()
    assert "{ a | data 2.0000 | grad 6.0000 }" in micrograd_fast.draw_dot(L).source
    assert "rankdir=TB" in micrograd_fast.draw_dot(L, rankdir="TB").source
    assert micrograd_fast.draw_dot(L, format="png").format == "png"


def test_draw_dot_escapes_labels(Value):
    pytest.importorskip("graphviz")
    v = Value(1.0, label="x|{y}<z>")
    assert r"x\|\{y\}\<z\>" in draw_dot(v).source


def test_draw_dot_refuses_big_graphs(Value):
    x = Value(0.0)
    for _ in range(2500):
        x = x + 1.0
    with pytest.raises(ValueError, match="max_nodes=2000"):
        draw_dot(x)
    with pytest.raises(ValueError, match="max_nodes=10"):
        draw_dot(x, max_nodes=10)
    assert value_svg(x) is None


def test_draw_dot_walks_deep_graphs_without_recursion(Value):
    x = Value(1.0)
    for _ in range(5 * sys.getrecursionlimit()):
        x = x * 1.0
    nodes, edges = collect_graph(x, max_nodes=None)
    assert len(nodes) == 1 + 2 * 5 * sys.getrecursionlimit()
    assert len(edges) == 2 * 5 * sys.getrecursionlimit()


def test_draw_dot_on_upstream_values():
    pytest.importorskip("graphviz")
    upstream = pytest.importorskip("micrograd.engine")
    v = upstream.Value(2.0) * upstream.Value(3.0)
    assert "data 6.0000" in draw_dot(v).source


def test_render_without_dot_explains(Value, tmp_path, monkeypatch):
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot in there
    dot = draw_dot(lecture_graph(Value))
    for call in (lambda: dot.pipe(), lambda: dot.render(tmp_path / "g")):
        with pytest.raises(graphviz.ExecutableNotFound) as info:
            call()
        assert isinstance(info.value, RuntimeError)
        assert "install" in str(info.value).lower() and "dot" in str(info.value)
    assert value_svg(lecture_graph(Value)) is None


@needs_dot
def test_repr_svg(Value):
    pytest.importorskip("graphviz")
    L = lecture_graph(Value)
    svg = L._repr_svg_()
    assert svg.startswith("<?xml") and "data &#45;8.0000" in svg
    assert value_svg(L) == svg


def test_import_does_not_load_optional_packages():
    code = (
        "import sys, micrograd_fast, micrograd_fast.viz, micrograd_fast.lab.cli; "
        "print(sorted(m for m in ('graphviz', 'matplotlib', 'tqdm') if m in sys.modules))"
    )
    env = dict(os.environ, MICROGRAD_FAST_NO_EXTENSIONS="1", PYTHONPATH=PACKAGE_PARENT)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_main_module_help():
    env = dict(os.environ, MICROGRAD_FAST_NO_EXTENSIONS="1", PYTHONPATH=PACKAGE_PARENT)
    r = subprocess.run([sys.executable, "-m", "micrograd_fast", "--help"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for command in ("demo", "run", "walkthrough"):
        assert command in r.stdout


# -- make_moons ---------------------------------------------------------------------


def test_make_moons_shape_and_labels():
    X, y = make_moons(n_samples=101, noise=None, shuffle=False)
    assert X.shape == (101, 2) and y.shape == (101,)
    assert (y[:50] == 0).all() and (y[50:] == 1).all()
    # without noise the points lie on the two unit half circles
    assert np.allclose(np.hypot(X[:50, 0], X[:50, 1]), 1.0)
    assert np.allclose(np.hypot(X[50:, 0] - 1.0, X[50:, 1] - 0.5), 1.0)
    assert (X[:50, 1] >= -1e-12).all() and (X[50:, 1] <= 0.5 + 1e-12).all()


def test_make_moons_uses_the_global_numpy_state():
    np.random.seed(1337)
    a = make_moons(n_samples=100, noise=0.1)
    np.random.seed(1337)
    b = make_moons(n_samples=100, noise=0.1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert sorted(a[1].tolist()) == [0] * 50 + [1] * 50


@pytest.mark.parametrize(
    "n,noise,shuffle",
    [(100, 0.1, True), (100, None, True), (7, 0.3, False), (33, 0.05, True), ((4, 9), 0.2, True)],
)
def test_make_moons_matches_scikit_learn(n, noise, shuffle):
    datasets = pytest.importorskip("sklearn.datasets")
    np.random.seed(1337)
    X, y = make_moons(n_samples=n, noise=noise, shuffle=shuffle)
    np.random.seed(1337)
    X_ref, y_ref = datasets.make_moons(n_samples=n, noise=noise, shuffle=shuffle)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    X, y = make_moons(n_samples=n, noise=noise, shuffle=shuffle, random_state=5)
    X_ref, y_ref = datasets.make_moons(n_samples=n, noise=noise, shuffle=shuffle,
                                       random_state=5)
    np.testing.assert_array_equal(X, X_ref)


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
    draws = HAVE_DOT and HAVE_GRAPHVIZ
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
