"""Smoke tests of the benchmark suite: every workload runs once at tiny size.

They go through the same functions the command line uses (the worker's
``run`` and the runner), so the suite cannot rot unnoticed.  No timing is
asserted: only that records come back well formed and that all engines
compute the same demo step.
"""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    # benchmarks/ is not installed with the package: import it from the
    # source tree, after anything installed (an installed micrograd_fast wins)
    sys.path.append(ROOT)

from benchmarks import engines as engines_mod  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks._worker import run  # noqa: E402
from benchmarks import microgpt  # noqa: E402
from benchmarks.moons import demo_data  # noqa: E402
from benchmarks.workloads import WORKLOADS, Skip, applies  # noqa: E402

CORE = ("workload", "engine", "median_s", "min_s", "max_s", "repeats", "nodes",
        "headline", "unit")


def _check(records, workload, engine_name):
    assert records, "a workload returns at least one record"
    for rec in records:
        for key in CORE:
            assert key in rec, key
        assert rec["workload"] == workload
        assert rec["engine"] == engine_name
        assert rec["headline"] is not None
        if rec["median_s"] is not None:
            assert rec["min_s"] <= rec["median_s"] <= rec["max_s"]
            assert rec["repeats"] >= 1
    json.dumps(records)  # serialisable as the worker writes them


def _run_or_skip(engine, workload):
    try:
        return run(engine, workload, "smoke")
    except Skip as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_workload_on_our_engines(engine, workload):
    eng = engines_mod.from_module(engine)
    _check(_run_or_skip(eng, workload), workload, eng.name)


def _load_or_skip(name):
    try:
        return engines_mod.load(name)
    except engines_mod.EngineUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("workload", [w for w in WORKLOADS if applies(w, "micrograd")])
def test_workload_on_upstream(workload):
    eng = _load_or_skip("micrograd")
    _check(_run_or_skip(eng, workload), workload, "micrograd")


@pytest.mark.parametrize("workload", [w for w in WORKLOADS if applies(w, "torch")])
def test_workload_on_torch(workload):
    eng = _load_or_skip("torch")
    _check(_run_or_skip(eng, workload), workload, "torch")


def test_every_workload_is_declared_once_with_what_the_report_needs():
    labels = []
    for name, declared in WORKLOADS.items():
        assert declared.name == name and declared.run.__name__ == name
        assert declared.unit and declared.description
        assert set(declared.excluded) <= set(engines_mod.ENGINE_NAMES)
        assert all(reason for reason in declared.excluded.values())
        labels.extend(row.label for row in declared.rows)
    assert len(labels) == len(set(labels))
    # only the scaling workload has its own table instead of main-table rows
    assert [n for n, w in WORKLOADS.items() if not w.rows] == ["scaling"]
    from benchmarks.workloads import workload as declare

    with pytest.raises(ValueError, match="declared twice"):
        declare("ns/op", "again")(WORKLOADS["op_add"].run)


def test_a_declared_exclusion_is_a_skip_with_its_reason(engine):
    eng = engines_mod.from_module(engine)
    excluded = dict(WORKLOADS["vsum"].excluded)
    assert "micrograd" in excluded and applies("vsum", eng.name)
    eng.name = "micrograd"  # the declaration is checked before anything runs
    with pytest.raises(Skip, match=excluded["micrograd"]):
        run(eng, "vsum", "smoke")


def test_records_carry_the_declared_unit(engine):
    eng = engines_mod.from_module(engine)
    for name in ("op_add", "deep_chain", "sum_builtin"):
        (rec,) = run(eng, name, "smoke")
        assert rec["unit"] == WORKLOADS[name].unit


def test_deep_chain_records_upstream_recursion_limit():
    eng = _load_or_skip("micrograd")
    (rec,) = run(eng, "deep_chain", "smoke")
    assert rec["failure"].startswith("RecursionError")
    assert rec["failure_phase"] == "backward"
    assert 0 < rec["depth"] < rec["failed_depth"] <= 3_000


def test_same_first_loss_everywhere(engine):
    """Same data, same initial weights: the demo step's loss agrees across
    our engine (upstream's nn.py and micrograd_fast.nn on it, in the tuned
    form and in demo.ipynb's loop as written), upstream micrograd and torch
    (the hand-written tensor step and nn.Sequential)."""
    eng = engines_mod.from_module(engine)
    (ours,) = run(eng, "demo_step_native", "smoke")
    assert "upstream's graph" in ours["variant"]  # the row says which graph it builds
    firsts = {}
    for workload in ("demo_step", "demo_step_fused", "demo_notebook", "demo_notebook_native"):
        try:
            (rec,) = run(eng, workload, "smoke")
        except Skip:  # upstream's nn.py needs micrograd installed
            continue
        firsts[f"{workload} on {eng.name}"] = rec
    if "demo_step_fused on " + eng.name in firsts:
        assert "fused=True" in firsts["demo_step_fused on " + eng.name]["variant"]
    for other in ("micrograd", "torch"):
        try:
            other_eng = engines_mod.load(other)
        except engines_mod.EngineUnavailable:
            continue
        for workload in ("demo_step", "demo_notebook"):
            (rec,) = run(other_eng, workload, "smoke")
            firsts[f"{workload} on {other}"] = rec
    for what, rec in firsts.items():
        assert rec["loss_first"] == pytest.approx(ours["loss_first"], rel=1e-12), what
        assert rec["accuracy_first"] == ours["accuracy_first"], what


def test_notebook_data_is_the_demo_data():
    from benchmarks.workloads import SIZES, notebook_data

    X, y = notebook_data(SIZES["smoke"])
    xs, ys = demo_data(SIZES["smoke"]["demo_points"])
    assert type(X).__module__ == "numpy" and X.dtype.kind == "f" and y.dtype.kind == "i"
    assert X.tolist() == xs and y.tolist() == ys


def _needs_node_form(Value):
    if not microgpt.supports_node_form(Value):
        pytest.skip("Value(data, children, local_grads) is not supported by this "
                    "engine yet (the workload's squared ReLU is built in that form)")


@pytest.mark.parametrize("act", ["relu", "sqrelu"])
def test_microgpt_same_loss_trail(engine, act):
    """The names GPT trains to the same losses with the pure children /
    local-gradients Value and with ours swapped in."""
    if act == "sqrelu":
        _needs_node_form(engine.Value)
    res = microgpt.compare(engine.Value, microgpt.CONFIGS["smoke"], steps=3, act=act)
    assert len(res["trail_own"]) == 3
    assert res["trail_own"] == res["trail_ours"]
    assert res["max_abs_diff"] < 1e-12
    # it learns: the first name's loss is near log(vocab) and training moves it
    assert 2.0 < res["losses_own"][0] < 4.0
    assert len(set(res["trail_own"])) > 1
    # each step's time is split into its phases, for both classes
    for phases in (res["phases_own"], res["phases_ours"]):
        assert tuple(phases) == microgpt.PHASES
        assert all(s > 0 for s in phases.values())


def test_microgpt_apart_gives_the_trail_of_one_process(engine):
    """Each class trained in a process of its own gives the losses, as the
    same doubles, that the two give taking turns in this process."""
    _needs_node_form(engine.Value)
    cfg = microgpt.CONFIGS["smoke"]
    here = microgpt.compare(engine.Value, cfg, steps=3)
    apart = microgpt.compare(engine.Value, cfg, steps=3, apart=True, rounds=2)
    assert apart["apart"] and apart["rounds"] == 2 and not here["apart"]
    assert apart["losses_own"] == here["losses_own"]
    assert apart["losses_ours"] == here["losses_ours"]
    # two rounds of three steps, the first step of each a warm-up
    assert len(apart["times_own"]) == len(apart["times_ours"]) == 4
    assert all(s > 0 for s in apart["phases_ours"].values())


def test_microgpt_apart_needs_an_importable_class():
    class Local(microgpt.ScalarValue):
        __slots__ = ()

    with pytest.raises(ValueError, match="cannot be imported by another process"):
        microgpt.run_apart(Local, microgpt.CONFIGS["smoke"], steps=1)


def test_microgpt_phases_add_up_to_the_step(engine):
    _needs_node_form(engine.Value)
    for loss, seconds, phases in microgpt.training(engine.Value, microgpt.CONFIGS["smoke"]):
        assert len(phases) == len(microgpt.PHASES)
        assert sum(phases) == pytest.approx(seconds, rel=1e-9, abs=1e-12)
        assert math.isfinite(loss)


def test_microgpt_step_record(engine):
    _needs_node_form(engine.Value)
    eng = engines_mod.from_module(engine)
    (rec,) = run(eng, "microgpt_step", "smoke")
    assert rec["speedup"] > 0 and rec["own_ms_step"] > 0
    assert set(rec["phases_ms"]) == set(rec["own_phases_ms"]) == set(microgpt.PHASES)
    steps = microgpt.CONFIGS["smoke"]["steps"]
    assert len(rec["trail"]) == steps
    # the first step counts as a warm-up when there are more than two
    assert rec["repeats"] == (steps - 1 if steps > 2 else steps)
    assert report.microgpt_lines([rec])[0].startswith("microgpt-shaped step (n_embd=4")


def test_microgpt_skips_without_node_form():
    """An engine without the node form is skipped with the reason, never run
    with wrong gradients."""
    class Plain(microgpt.ScalarValue):
        __slots__ = ()

    class NoForm:
        def __init__(self, data, _children=(), _op=""):
            self.data = data

    assert microgpt.supports_node_form(microgpt.ScalarValue)
    assert microgpt.supports_node_form(Plain)
    assert not microgpt.supports_node_form(NoForm)
    with pytest.raises(TypeError, match="children, local_grads"):
        next(microgpt.training(NoForm, microgpt.CONFIGS["smoke"]))


def test_microgpt_scalar_value_gradients():
    """The workload's own class gets the gradients an independent engine
    (our pure twin) gets on an expression using every one of its ops."""
    from micrograd_fast._engine_py import Value as Ref

    def expr(V):
        a, b = V(1.5), V(-0.7)
        c = (a * b + 2 - a / b) ** 2
        d = (-c).exp() + (a * a).log() + (b * 3).relu() + (1 - a) + 2 / a
        e = microgpt.sqrelu(a - b) if V is microgpt.ScalarValue else (a - b).relu() ** 2
        return a, b, d * 0.5 + e

    a, b, out = expr(microgpt.ScalarValue)
    out.backward()
    ra, rb, rout = expr(Ref)
    rout.backward()
    assert out.data == pytest.approx(rout.data, rel=1e-14)
    assert a.grad == pytest.approx(ra.grad, rel=1e-12)
    assert b.grad == pytest.approx(rb.grad, rel=1e-12)


def test_microgpt_names_are_deterministic():
    names = microgpt.make_names(50)
    assert names == microgpt.make_names(50)
    assert names != microgpt.make_names(50, seed=8)
    assert all(n.isalpha() and n.islower() for n in names)
    assert len(set(names)) > 40


def test_microgpt_command(engine, capsys):
    flag = "compiled" if engine.COMPILED else "pure"
    act = "sqrelu" if microgpt.supports_node_form(engine.Value) else "relu"
    status = microgpt.main(["--size", "smoke", "--steps", "2", "--engine", flag, "--act", act])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "loss trails identical to 4 decimals: yes" in out
    assert f"ours = {engine.Value.__module__}.Value" in out
    rows = [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]
    assert len(rows) == 2 and all(r[1] == r[2] for r in rows)


def test_demo_data():
    xs, ys = demo_data(10, seed=3)
    assert len(xs) == 10 and set(ys) <= {-1, 1} and isinstance(xs[0][0], float)
    assert demo_data(10, seed=3) == (xs, ys)
    assert demo_data(10, seed=4) != (xs, ys)


# ``python -m benchmarks`` from the repository root would put the source tree
# first on sys.path, and with it a micrograd_fast/ that has no compiled core
# when the package was installed with pip.  Like this file, the command finds
# benchmarks/ at the end of sys.path, after the installed package.
BENCHMARKS_CLI = [
    sys.executable, "-c",
    f"import runpy, sys; sys.path.append({ROOT!r}); "
    "runpy.run_module('benchmarks', run_name='__main__', alter_sys=True)",
]


def test_command_line(tmp_path):
    """The CLI end to end on two engines: JSON list with the meta record
    first, Markdown table, PNG plot."""
    pytest.importorskip("matplotlib", reason="the --plot output needs matplotlib")
    out_json, out_md, out_png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    cmd = [*BENCHMARKS_CLI, "--smoke", "--no-progress",
           "--engines", "reference,micrograd",
           "--workloads", "op_add,free,deep_chain,scaling",
           "--json", str(out_json), "--markdown", str(out_md), "--plot", str(out_png)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(out_json.read_text())
    assert isinstance(records, list)
    meta = records[0]
    assert meta["workload"] == "meta" and meta["errors"] == []
    assert meta["machine"]["cpu_count"] and meta["versions"]
    engines_seen = {r["engine"] for r in records[1:]}
    assert "reference" in engines_seen
    assert {r["workload"] for r in records[1:]} <= {"op_add", "free", "deep_chain", "scaling"}
    assert all(r["run_id"] == meta["run_id"] for r in records[1:])
    assert "| workload |" in out_md.read_text()
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "deep chain" in proc.stdout

    # rendering again from the saved JSON runs nothing and gives the same table
    again = subprocess.run([*BENCHMARKS_CLI, "--from-json", str(out_json)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == proc.stdout
    assert report.render_text(records) == proc.stdout.rstrip("\n")


# -- rounds: engines taking turns ---------------------------------------------------

def test_rounds_keep_each_engines_median_round():
    from benchmarks.runner import _kept_round, _rotated

    def res(h):
        return {"records": [{"headline": h}]}

    runs = [res(3.0), res(1.0), res(2.0)]
    assert _kept_round(runs) is runs[2]
    assert _kept_round([res(4.0), res(1.0)])["records"][0]["headline"] == 1.0
    failed = {"error": "boom"}
    assert _kept_round([failed, res(5.0)])["records"][0]["headline"] == 5.0
    assert _kept_round([failed]) is failed
    words = [res("ok to 100"), res("ok to 10")]
    assert _kept_round(words) is words[0]
    assert _rotated(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert _rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert _rotated([], 2) == []


def test_run_suite_in_rounds():
    """Two rounds on two engines: one set of records per engine and
    workload, and the meta record says how many rounds ran."""
    from benchmarks.runner import run_suite

    records = run_suite(["reference", "micrograd"], ["op_add", "deep_chain"], "smoke",
                        timeout=120, progress=False, rounds=2)
    meta = records[0]
    assert meta["rounds"] == 2 and meta["errors"] == []
    seen = [(r["workload"], r["engine"]) for r in records[1:]]
    assert len(seen) == len(set(seen))
    assert ("op_add", "reference") in seen and ("deep_chain", "reference") in seen
    assert "median of 2 rounds" in report.render_text(records)


# -- which micrograd_fast is measured ------------------------------------------------

def _copy_source_tree(dest):
    """The repository's benchmarks/ and micrograd_fast/ without any built
    module: a checkout where nothing was compiled in place."""
    import shutil

    skip = shutil.ignore_patterns("*.so", "*.pyd", "*.c", "*.html", "__pycache__", "build")
    for name in ("benchmarks", "micrograd_fast"):
        shutil.copytree(os.path.join(ROOT, name), dest / name, ignore=skip)
    return dest


def _built_package_parent():
    """Directory holding a micrograd_fast whose compiled core imports."""
    import micrograd_fast

    if not micrograd_fast.COMPILED:
        pytest.skip("MICROGRAD_FAST_NO_EXTENSIONS is set: no compiled core to find")
    return os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))


def test_benchmarks_from_an_unbuilt_root_use_the_installed_package(tmp_path):
    """``pip install .`` then ``python -m benchmarks`` from the repository
    root: the root's micrograd_fast/ (no compiled core) must not shadow the
    installed one, and the command says which one it measures."""
    root = _copy_source_tree(tmp_path / "checkout")
    installed = _built_package_parent()
    env = dict(os.environ, PYTHONPATH=installed)
    env.pop("MICROGRAD_FAST_NO_EXTENSIONS", None)
    out_json = tmp_path / "b.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-progress",
         "--engines", "micrograd_fast,reference", "--workloads", "op_add",
         "--json", str(out_json)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    where = os.path.join(installed, "micrograd_fast")
    assert f"measuring micrograd_fast from {where} (installed)" in proc.stderr
    meta = json.loads(out_json.read_text())[0]
    assert meta["skipped"] == [] and meta["errors"] == []
    assert meta["micrograd_fast_package"] == {"path": where, "kind": "installed"}
    assert {r["engine"] for r in json.loads(out_json.read_text())[1:]} == {
        "micrograd_fast", "reference"}


# A sitecustomize that hides every installed micrograd_fast (sys.path entries
# that hold one, editable-install finders) from a process and its workers;
# the source tree comes back as the current directory of ``python -m``.
_HIDE_INSTALLED = """
import os, sys
sys.path[:] = [p for p in sys.path
               if not os.path.isdir(os.path.join(p or os.curdir, "micrograd_fast"))]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
"""


def test_benchmarks_without_any_built_core_name_the_fix(tmp_path):
    root = _copy_source_tree(tmp_path / "checkout")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(_HIDE_INSTALLED)
    env = dict(os.environ, PYTHONPATH=str(hide))
    env.pop("MICROGRAD_FAST_NO_EXTENSIONS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-progress",
         "--engines", "micrograd_fast,reference", "--workloads", "op_add"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"measuring micrograd_fast from {root / 'micrograd_fast'} (source tree)" in proc.stderr
    (note,) = [line for line in proc.stderr.splitlines() if "engine micrograd_fast skipped" in line]
    assert "compiled core is not built" in note
    assert f'`pip install -e "{root}"`' in note
    assert "a + b" in proc.stdout  # the pure twin was measured


def test_readme_table_is_replaced_between_its_markers():
    records = [
        {"workload": "meta", "engine": None, "size": "smoke", "created": "now",
         "machine": {"python_version": "3.x"}, "versions": {}, "skipped": [], "errors": []},
        {"workload": "demo_notebook", "engine": "micrograd_fast", "headline": 1.0,
         "unit": "ms/step", "nodes": 10},
        {"workload": "demo_notebook", "engine": "micrograd", "headline": 250.0,
         "unit": "ms/step", "nodes": 10},
    ]
    text = f"intro\n{report.README_START}\nold table\n{report.README_END}\nrest\n"
    new = report.replace_readme_table(text, records)
    assert "old table" not in new
    assert new.startswith(f"intro\n{report.README_START}\n| workload |")
    assert new.endswith(f"</sub>\n{report.README_END}\nrest\n")
    assert "demo.ipynb loop as written" in new and "| 250x |" in new
    assert report.replace_readme_table(new, records) == new
    with pytest.raises(ValueError, match="markers"):
        report.replace_readme_table("no markers here", records)


def test_readme_has_the_table_markers():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    table = text[text.index(report.README_START):text.index(report.README_END)]
    for workload in ("demo_notebook", "demo_notebook_native", "demo_step", "demo_step_native"):
        label = WORKLOADS[workload].rows[0].label
        assert f"| {label} |" in table, workload
