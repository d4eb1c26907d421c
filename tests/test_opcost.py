"""Smoke test of benchmarks/opcost.py: it runs at a tiny size and writes a
well-formed report (no timing is asserted)."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)

from benchmarks import opcost  # noqa: E402


def test_opcost_report(tmp_path, capsys):
    out = tmp_path / "opcost.json"
    assert opcost.main(["--items", "20", "--rounds", "1", "--model-calls", "2",
                        "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["op"] for r in report["ops"]] == [c[0] for c in opcost.OP_CASES]
    for row in report["ops"]:
        assert row["baseline"] in ("float", "__slots__ attribute")
        assert isinstance(row["value_ns"], float) and isinstance(row["baseline_ns"], float)
    assert [m["graph"] for m in report["model_call"]] == ["default", "fused=True"]
    for m in report["model_call"]:
        assert m["call_ns"] > 0 and m["engine_call_ns"] > 0
    assert "in-situ op costs" in capsys.readouterr().out


def test_opcost_runs_on_the_pure_engine():
    report = opcost.measure("reference", n=10, rounds=1, model_calls=1)
    assert report["engine"] == "reference"
    assert len(report["ops"]) == len(opcost.OP_CASES)
