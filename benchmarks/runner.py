"""The command line: ``python -m benchmarks [options]``.

Starts one worker process per (engine, workload) pair, gathers their records,
prints the tables, and writes JSON, Markdown and a PNG plot on request.
See docs/benchmarks.md.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from benchmarks import engines as engines_mod
from benchmarks import report
from benchmarks.workloads import WORKLOADS, applies

__all__ = ["main", "machine_info", "run_suite"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORE_FIELDS = ("median_s", "min_s", "max_s", "repeats", "nodes")

TIMEOUTS = {"smoke": 120, "quick": 300, "full": 3600}


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _dist_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    """Machine and package facts recorded with every run."""
    return {
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "recursion_limit": sys.getrecursionlimit(),
        },
        "versions": {
            "micrograd_fast": _source_version(),
            "micrograd": _dist_version("micrograd"),
            "torch": _dist_version("torch"),
            "numpy": _dist_version("numpy"),
            "matplotlib": _dist_version("matplotlib"),
            "tqdm": _dist_version("tqdm"),
        },
        "git_commit": _git_commit(),
        "micrograd_fast_package": _measured_package(),
    }


def _measured_package():
    import benchmarks

    where, kind = benchmarks.measured_package()
    return {"path": where, "kind": kind}


def _source_version():
    """The version of the micrograd_fast that is measured."""
    where = _measured_package()["path"] or os.path.join(ROOT, "micrograd_fast")
    path = os.path.join(where, "_version.py")
    scope = {}
    try:
        with open(path, encoding="utf-8") as fh:
            exec(fh.read(), scope)
        return scope.get("__version__")
    except OSError:
        return _dist_version("micrograd-fast")


def _run_worker(engine, workload, size, timeout):
    """Run one worker; returns its result dict (records / skipped / error)."""
    fd, out = tempfile.mkstemp(prefix="mgf-bench-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-m", "benchmarks._worker", engine, workload,
           "--size", size, "--out", out]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=engines_mod.subprocess_env(engine),
                              capture_output=True, text=True, timeout=timeout)
        try:
            with open(out, encoding="utf-8") as fh:
                text = fh.read()
            result = json.loads(text) if text else None
        except (OSError, ValueError):
            result = None
        if result is None:
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            result = {"error": f"worker exited with status {proc.returncode}"
                               + (f": {' | '.join(tail)}" if tail else "")}
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {timeout} s"}
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
    return result


def _progress(total):
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="job", dynamic_ncols=True, file=sys.stderr)
    except ImportError:  # progress is a nicety
        return None


def _note(bar, text):
    if bar is not None:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _kept_round(results):
    """Of one job's results over the rounds, the one whose records are kept:
    among the rounds that gave records, the one with the median headline
    (the lower middle one for an even count); the first such round when a
    headline is not a number; the first result when no round gave records."""
    with_records = [r for r in results if "records" in r]
    if not with_records:
        return results[0]

    def headline(res):
        h = res["records"][0].get("headline") if res["records"] else None
        return h if isinstance(h, (int, float)) and not isinstance(h, bool) else None

    if any(headline(r) is None for r in with_records):
        return with_records[0]
    ordered = sorted(with_records, key=headline)
    return ordered[(len(ordered) - 1) // 2]


def _rotated(items, k):
    """``items`` starting at index ``k`` (mod its length), wrapping round."""
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def run_suite(engine_names, workload_names, size, timeout=None, progress=True, rounds=1):
    """Run the suite; returns the list of records, the meta record first.

    With ``rounds`` above 1 every workload runs that many times on each
    engine, the engines taking turns (each round starts with the next
    engine), and each engine keeps the round with its median headline: a
    machine whose speed drifts from one process to the next then weighs on
    every engine alike, and the ratios come from comparable processes."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    timeout = timeout or TIMEOUTS[size]
    created = datetime.datetime.now(datetime.timezone.utc)
    meta = {"workload": "meta", "engine": None}
    meta.update({k: None for k in CORE_FIELDS})
    meta.update(run_id=created.strftime("%Y%m%dT%H%M%SZ"),
                created=created.isoformat(timespec="seconds"),
                size=size, rounds=rounds, argv=sys.argv[1:], engines={}, skipped=[],
                errors=[])
    meta.update(machine_info())

    bar = _progress(len(engine_names) + rounds * sum(
        applies(w, e) for w in workload_names for e in engine_names)) if progress else None

    # probe each engine once: a missing engine is one note, not one per job
    available = []
    for e in engine_names:
        if bar is not None:
            bar.set_description(f"probe {e}")
        res = _run_worker(e, "probe", size, timeout)
        if bar is not None:
            bar.update(1)
        if "records" in res:
            available.append(e)
            meta["engines"][e] = res["records"][0].get("engine_version")
        else:
            reason = res.get("skipped") or res.get("error")
            meta["skipped"].append({"engine": e, "workload": None, "reason": reason})
            _note(bar, f"note: engine {e} skipped: {reason}")
            if bar is not None:
                bar.total -= rounds * sum(applies(w, e) for w in workload_names)
                bar.refresh()

    records = [meta]
    for w in workload_names:
        jobs = [e for e in available if applies(w, e)]
        results = {e: [] for e in jobs}
        for r in range(rounds):
            for e in _rotated(jobs, r):
                if bar is not None:
                    bar.set_description(f"{w} on {e}" + (f", round {r + 1}" if rounds > 1 else ""))
                t0 = time.perf_counter()
                res = _run_worker(e, w, size, timeout)
                res["seconds"] = round(time.perf_counter() - t0, 3)
                results[e].append(res)
                if bar is not None:
                    bar.update(1)
        for e in jobs:
            res = _kept_round(results[e])
            for r, other in enumerate(results[e]):
                if other is not res and "error" in other:
                    meta["errors"].append({"engine": e, "workload": w, "round": r + 1,
                                           "error": other["error"], "seconds": other["seconds"]})
                    _note(bar, f"error: {w} on {e}, round {r + 1}: {other['error']}")
            if "records" in res:
                for rec in res["records"]:
                    rec["run_id"] = meta["run_id"]
                records.extend(res["records"])
            elif "skipped" in res:
                meta["skipped"].append({"engine": e, "workload": w, "reason": res["skipped"]})
                _note(bar, f"note: {w} on {e} skipped: {res['skipped']}")
            else:
                meta["errors"].append({"engine": e, "workload": w, "error": res["error"],
                                       "seconds": res["seconds"]})
                _note(bar, f"error: {w} on {e}: {res['error']}")
    if bar is not None:
        bar.close()
    return records


def _split(text, allowed, what, aliases=None):
    if text is None:
        return list(allowed)
    aliases = aliases or {}
    names = [aliases.get(t.strip(), t.strip()) for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from "
                         f"{', '.join(list(allowed) + list(aliases))})")
    return names


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare micrograd_fast's engines with upstream micrograd and PyTorch.",
        epilog="workloads:\n" + "\n".join(
            f"  {k:<18} {w.description.replace('``', '')}" for k, w in WORKLOADS.items())
        + "\n\nDetails and the JSON schema: docs/benchmarks.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, a couple of minutes")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny sizes, checks that every workload runs (numbers meaningless)")
    p.add_argument("--engines", help="comma-separated subset of: "
                   + ",".join(engines_mod.ENGINE_NAMES + tuple(engines_mod.ALIASES)))
    p.add_argument("--workloads", help="comma-separated subset of: " + ",".join(WORKLOADS))
    p.add_argument("--json", metavar="PATH", help="write the records (a JSON list) here")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown tables here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG plot here")
    p.add_argument("--readme", metavar="PATH",
                   help="replace the speed table in this README (between its markers)")
    p.add_argument("--from-json", metavar="PATH",
                   help="do not run anything: render tables/plot from a saved run")
    p.add_argument("--timeout", type=float, help="seconds allowed per worker process")
    p.add_argument("--rounds", type=int, default=1, metavar="N",
                   help="run each workload N times per engine, the engines taking turns, "
                        "and keep each engine's median round (steadier ratios on a machine "
                        "whose speed drifts)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    size = "smoke" if args.smoke else "quick" if args.quick else "full"

    if args.from_json:
        with open(args.from_json, encoding="utf-8") as fh:
            records = json.load(fh)
    else:
        engine_names = _split(args.engines, engines_mod.ENGINE_NAMES, "engine",
                              engines_mod.ALIASES)
        workload_names = _split(args.workloads, list(WORKLOADS), "workload")
        package = _measured_package()
        if package["path"] is None:
            print("micrograd_fast: not found (only the other engines can run)",
                  file=sys.stderr)
        else:
            print(f"measuring micrograd_fast from {package['path']} ({package['kind']})",
                  file=sys.stderr)
        t0 = time.perf_counter()
        if args.rounds < 1:
            raise SystemExit("--rounds must be at least 1")
        records = run_suite(engine_names, workload_names, size, args.timeout,
                            progress=not args.no_progress, rounds=args.rounds)
        records[0]["suite_s"] = round(time.perf_counter() - t0, 3)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(records, fh, indent=1)
                fh.write("\n")

    print(report.render_text(records))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(report.render_markdown(records))
    if args.plot:
        report.plot(records, args.plot)
    if args.readme:
        with open(args.readme, encoding="utf-8") as fh:
            text = fh.read()
        with open(args.readme, "w", encoding="utf-8") as fh:
            fh.write(report.replace_readme_table(text, records))
    for what, path in (("JSON", None if args.from_json else args.json),
                       ("Markdown", args.markdown), ("plot", args.plot),
                       ("README table", args.readme)):
        if path:
            print(f"{what} written to {path}", file=sys.stderr)
    meta = records[0] if records and records[0].get("workload") == "meta" else {}
    return 1 if meta.get("errors") else 0
