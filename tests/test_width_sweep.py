"""Smoke test of the width-sweep benchmark: tiny widths, one timed step."""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    # benchmarks/ is not installed with the package: import it from the
    # source tree, after anything installed (an installed micrograd_fast wins)
    sys.path.append(ROOT)

from benchmarks import width_sweep  # noqa: E402

HAVE_TORCH = importlib.util.find_spec("torch") is not None
COMPILED = "micrograd_fast fused, compiled"
PURE = "micrograd_fast fused, pure engine"
TORCH = "torch nn.Sequential float64, 1 thread"


def test_rows_for_tiny_widths():
    rows = width_sweep.run_sweep(widths=[2, 3], quick=True, pure_max=2, steps=1)
    kinds = {(r["width"], r["variant"]) for r in rows}
    assert (2, COMPILED) in kinds and (3, COMPILED) in kinds
    assert (2, PURE) in kinds and (3, PURE) not in kinds  # pure only up to pure_max
    assert ((2, TORCH) in kinds) == HAVE_TORCH
    for r in rows:
        assert r["steps"] >= 1 and r["ms_per_step"] > 0 and r["mmac_per_s"] > 0
        assert r["macs_per_step"] == 3 * 100 * (2 * r["width"] + r["width"] ** 2 + r["width"])
    # the same model and weights: both engines start from the same loss
    # exactly, torch from the same loss up to rounding
    first = {(r["width"], r["variant"]): r["loss_first"] for r in rows}
    assert first[(2, COMPILED)] == first[(2, PURE)]
    if HAVE_TORCH:
        assert first[(2, TORCH)] == pytest.approx(first[(2, COMPILED)], rel=1e-9)


def test_main_writes_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json = tmp_path / "sweep.json"
    out_png = tmp_path / "sweep.png"
    assert width_sweep.main(["--quick", "--widths", "2", "--steps", "1", "--pure-max", "2",
                             "--json", str(out_json), "--plot", str(out_png)]) == 0
    data = json.loads(out_json.read_text())
    assert data["benchmark"] == "width_sweep"
    assert {r["variant"] for r in data["rows"]} >= {COMPILED, PURE}
    assert out_png.stat().st_size > 0
    assert "ms/step" in capsys.readouterr().out
