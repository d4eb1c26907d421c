"""Runs one workload on one engine and writes its records as JSON.

    python -m benchmarks._worker ENGINE WORKLOAD --size quick --out FILE

(``WORKLOAD`` may be ``probe``: only check that the engine imports.)

The runner starts one such process per (engine, workload) pair, so each
measurement starts from a fresh interpreter: no garbage, arena or GC
generation left over from another engine or workload.  The output file holds
``{"records": [...]}`` on success or ``{"skipped": "reason"}``; an unexpected
exception is written as ``{"error": "..."}`` with exit status 1.
"""

import argparse
import json
import sys
import time
import traceback

from benchmarks import engines
from benchmarks.workloads import SIZES, WORKLOADS, Skip

__all__ = ["run", "main"]


def run(engine, workload, size_name):
    """Run ``workload`` on a loaded Engine in this process; list of records.

    Raises Skip when the workload does not apply to the engine (as
    declared, or as found when it runs).
    """
    declared = WORKLOADS[workload]
    if not declared.applies(engine.name):
        raise Skip(declared.excluded[engine.name])
    size = SIZES[size_name]
    t0 = time.perf_counter()
    records = declared.run(engine, size)
    wall = time.perf_counter() - t0
    for rec in records:
        if rec.get("unit") is None:
            rec["unit"] = declared.unit
        head = {"workload": workload, "engine": engine.name}
        head.update(rec)
        rec.clear()
        rec.update(head)
        rec["engine_version"] = engine.version
        rec["size"] = size_name
        rec["wall_s"] = wall
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks._worker")
    parser.add_argument("engine", choices=engines.ENGINE_NAMES)
    parser.add_argument("workload", choices=sorted(WORKLOADS) + ["probe"])
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    status = 0
    try:
        engine = engines.load(args.engine)
        if args.workload == "probe":  # is the engine importable here?
            result = {"records": [{"engine": engine.name, "engine_version": engine.version}]}
        else:
            result = {"records": run(engine, args.workload, args.size)}
    except (engines.EngineUnavailable, Skip) as exc:
        result = {"skipped": str(exc)}
    except Exception as exc:  # reported by the runner, never hidden
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        status = 1
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return status


if __name__ == "__main__":
    sys.exit(main())
