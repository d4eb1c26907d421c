"""The micrograd-fast command: demo, walkthrough, its help and the console
script (the run command has tests/test_run.py)."""

import html
import importlib
import importlib.util
import io
import os
import subprocess
import sys

import pytest

import micrograd_fast
from micrograd_fast.lab.walkthrough import walkthrough

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))


# -- demo ----------------------------------------------------------------------


needs_viz = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tqdm", "matplotlib")),
    reason="tqdm and matplotlib (the viz extra) are not both installed",
)


@needs_viz
def test_demo_trains_and_writes_pngs(engine, tmp_path, engine_name, cli):
    plot = tmp_path / "out" / "moons.png"
    plot.parent.mkdir()
    r = cli(engine, "demo", "--steps", "3", "--plot", str(plot),
            "--engine", engine_name)
    assert r.returncode == 0, r.stderr
    for path in (plot, tmp_path / "out" / "moons_loss.png"):
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert f"{engine_name} engine" in r.stdout
    assert "mean time per step:" in r.stdout
    assert "step 3: loss" in r.stdout
    assert "training" in r.stderr and "3/3" in r.stderr  # the progress bar


@needs_viz
def test_demo_default_plot_names_and_first_loss(engine, tmp_path, cli):
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


def test_demo_no_plot_writes_nothing(engine, tmp_path, cli):
    r = cli(engine, "demo", "--steps", "0", "--no-plot", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == []


BLOCK_VIZ = "import sys; sys.modules['tqdm'] = sys.modules['matplotlib'] = None\n"


def test_demo_runs_without_the_viz_extra(engine, tmp_path, cli):
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


def test_demo_first_loss_without_the_viz_extra(engine, tmp_path, cli):
    r = cli(engine, "demo", "--steps", "1", cwd=tmp_path, extra_boot=BLOCK_VIZ)
    assert r.returncode == 0, r.stderr
    assert "step 1: loss 0.895844, accuracy 50%" in r.stdout


def test_demo_without_tqdm_still_plots(engine, tmp_path, cli):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (viz extra)")
    block = "import sys; sys.modules['tqdm'] = None\n"
    r = cli(engine, "demo", "--steps", "2", cwd=tmp_path, extra_boot=block)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "moons.png").stat().st_size > 0
    (hint,) = [line for line in r.stdout.splitlines() if "micrograd-fast[viz]" in line]
    assert "not installed: tqdm)" in hint


def test_demo_explicit_plot_needs_matplotlib(engine, tmp_path, cli):
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


def test_walkthrough_command(engine, tmp_path, engine_name, cli):
    r = cli(engine, "walkthrough", "--engine", engine_name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "L = d * f = 4.0 * -2.0 = -8.0" in r.stdout
    assert "dL/da = dL/de * de/da = -2.0 * -3.0 = 6.0" in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_walkthrough_graph_svg(engine, tmp_path, engine_name, cli, dot_program):
    pytest.importorskip("graphviz")
    svg = tmp_path / "graph.svg"
    r = cli(engine, "walkthrough", "--graph", str(svg), "--engine", engine_name)
    assert r.returncode == 0, r.stderr
    text = html.unescape(svg.read_text())
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for needle in ["data -8.0000", "grad 1.0000", "data 2.0000", "grad 6.0000",
                   "data -3.0000", "grad -4.0000", "data 10.0000", ">L<", ">a<",
                   ">*<", ">+<"]:
        assert needle in text, needle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.svg"]


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


def test_console_script_points_at_the_command():
    """pyproject.toml's micrograd-fast script names the function that is the
    command, micrograd_fast.lab.cli.main (python -m micrograd_fast runs it too)."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = os.path.join(os.path.dirname(TESTS_DIR), "pyproject.toml")
    if not os.path.exists(pyproject):
        pytest.skip("pyproject.toml is not next to the tests")
    with open(pyproject, "rb") as fh:
        target = tomllib.load(fh)["project"]["scripts"]["micrograd-fast"]
    module, _, name = target.partition(":")
    from micrograd_fast.lab import cli

    assert getattr(importlib.import_module(module), name) is cli.main
    assert module == cli.__name__
