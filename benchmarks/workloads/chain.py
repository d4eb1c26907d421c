"""A chain ``y = y + x`` as deep as it is long: where, and how, does an
engine break?"""

import gc
import sys
import time

from benchmarks.workloads.graphs import build_chain
from benchmarks.workloads.registry import NO_TENSOR_FORM, record, workload


def _try_chain(Value, depth):
    """Build, backward and free a chain; returns a dict, never raises."""
    out = dict(depth=depth, ok=False, error=None, phase=None,
               build_s=None, backward_s=None, free_s=None)
    phase = "build"
    try:
        t0 = time.perf_counter()
        y, _ = build_chain(Value, depth)
        out["build_s"] = time.perf_counter() - t0
        phase = "backward"
        t0 = time.perf_counter()
        y.backward()
        out["backward_s"] = time.perf_counter() - t0
        phase = "free"
        t0 = time.perf_counter()
        del y
        gc.collect()
        out["free_s"] = time.perf_counter() - t0
        out["ok"] = True
    except (RecursionError, MemoryError, OverflowError, ValueError) as exc:
        out["phase"] = phase
        text = str(exc).splitlines()[0] if str(exc) else ""
        out["error"] = f"{type(exc).__name__}: {text}"[:200]
    return out


def _depth_text(rec):
    if rec.get("failed_depth") is None:
        return f"ok to {rec['depth']:,}"
    err = (rec.get("failure") or "error").split(":")[0]
    return f"{err} at {rec['failed_depth']:,}"


@workload("max depth", "deep chain y = y + x", text=_depth_text, excluded=NO_TENSOR_FORM)
def deep_chain(engine, size):
    """A chain ``y = y + x`` of growing depth: where (and how) does it break?

    Depths are tried in order; after the first failure the boundary between
    the last depth that worked and the first that failed is narrowed by
    bisection.  ``depth`` is the deepest chain that worked, ``failed_depth``
    the shallowest that failed (``None`` if none did), ``failure`` its error
    and ``failure_phase`` where it happened.  The timings are those of the
    deepest chain that worked.
    """
    Value = engine.Value
    tries = []
    good, bad = None, None
    for depth in size["chain_depths"]:
        t = _try_chain(Value, depth)
        tries.append(t)
        if t["ok"]:
            good = t
        else:
            bad = t
            break
    if bad is not None:
        lo = good["depth"] if good else 0
        for _ in range(size["bisect_steps"]):
            if bad["depth"] - lo <= max(1, lo // 100):
                break
            mid = (lo + bad["depth"]) // 2
            t = _try_chain(Value, mid)
            tries.append(t)
            if t["ok"]:
                good, lo = t, mid
            else:
                bad = t
    if good is None:
        good = dict(depth=0, build_s=None, backward_s=None, free_s=None)
    rec = record(None, good["depth"] + 2 if good["depth"] else None, good["depth"],
                 depth=good["depth"], build_s=good["build_s"], free_s=good["free_s"],
                 failed_depth=bad["depth"] if bad else None,
                 failure=bad["error"] if bad else None,
                 failure_phase=bad["phase"] if bad else None,
                 recursion_limit=sys.getrecursionlimit(),
                 tries=sorted(tries, key=lambda t: t["depth"]))
    # the timing fields are those of the deepest chain that worked
    rec.update(median_s=good["backward_s"], min_s=good["backward_s"],
               max_s=good["backward_s"], repeats=1)
    return [rec]
