"""Graphs of N nodes: how they are built, and building, walking and freeing
one."""

import gc
import time

from benchmarks.timing import Samples, collect
from benchmarks.workloads.registry import NO_TENSOR_FORM, Row, record, workload

__all__ = ["build_graph", "build_chain", "count_nodes"]


def build_graph(Value, n):
    """A wide, shallow graph of about ``n`` nodes; returns ``(root, nodes)``.

    ``m = n // 3`` leaves, one product of each neighbouring pair (``m``
    products), and a pairwise tree of ``m - 1`` additions down to one root:
    ``3m - 1`` nodes, depth about ``log2(m)``, so every engine (including a
    recursive topological sort) can walk it.  The root is the only reference
    left to the graph when this returns.
    """
    m = max(2, n // 3)
    xs = [Value(0.5 + 0.25 * (i % 7)) for i in range(m)]
    level = [xs[i - 1] * xs[i] for i in range(m)]
    del xs
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0], 3 * m - 1


def build_chain(Value, depth):
    """``y = y + x`` repeated ``depth`` times: a graph as deep as it is long."""
    x = Value(1e-6)
    y = Value(0.0)
    for _ in range(depth):
        y = y + x
    return y, depth + 2


def count_nodes(root):
    """Nodes reachable from ``root`` through ``_prev`` (None if not exposed)."""
    if not hasattr(root, "_prev"):
        return None
    # keep every node object alive while counting: an engine may hand out
    # short-lived handles whose id() could otherwise be reused
    seen = {id(root): root}
    stack = [root]
    while stack:
        v = stack.pop()
        for c in v._prev:
            if id(c) not in seen:
                seen[id(c)] = c
                stack.append(c)
    return len(seen)



@workload("ns/node", "build graph", nodes_in_label=True, excluded=NO_TENSOR_FORM)
def build(engine, size):
    """Build a graph of N nodes from floats (leaves included), ns per node."""
    Value, n = engine.Value, size["graph_nodes"]
    build_graph(Value, min(n, 3_000))  # warm-up
    samples = Samples()
    nodes = None
    for _ in range(size["graph_repeats"]):
        collect()
        root, nodes = samples.time(build_graph, Value, n)
        del root
    return [record(samples, nodes, samples.median / nodes * 1e9)]


@workload("ns/node", "backward", nodes_in_label=True, excluded=NO_TENSOR_FORM)
def backward(engine, size):
    """``root.backward()`` on a prebuilt graph of N nodes, ns per node."""
    Value, n = engine.Value, size["graph_nodes"]
    root, _ = build_graph(Value, min(n, 3_000))
    root.backward()  # warm-up
    del root
    samples = Samples()
    nodes = None
    for _ in range(size["graph_repeats"]):
        root, nodes = build_graph(Value, n)
        collect()
        samples.time(root.backward)
        del root
    return [record(samples, nodes, samples.median / nodes * 1e9)]


def _del_only(rec):
    """ns per node of the ``del`` alone (and the compiled core's compact)."""
    return (rec["del_s"] + (rec.get("compact_s") or 0.0)) / rec["nodes"] * 1e9


@workload("ns/node", rows=(Row("free: del (+ arena compact)", value=_del_only, ratio=False),
                           Row("free: del + gc.collect() (+ compact)")),
          excluded=NO_TENSOR_FORM,
          note="`free: del` frees nothing for engines whose nodes sit in reference "
               "cycles (upstream micrograd, the pure twin): their graph goes only at "
               "the `gc.collect()` of the next row.")
def free(engine, size):
    """Drop the last reference to a graph of N nodes, then ``gc.collect()``.

    ``del_s`` is the time of the ``del`` alone (what reference counting frees
    at once), ``collect_s`` the full collection after it (what only the cyclic
    GC frees: all of an upstream graph, whose nodes sit in reference cycles
    through their backward closures).  An engine with a node arena that is
    reclaimed lazily (the compiled core's ``compact()``) also gets
    ``compact_s``, the reclamation forced at once, which would otherwise be
    paid at a later allocation.  ``median_s`` is the sum.
    """
    Value, n = engine.Value, size["graph_nodes"]
    compact = getattr(engine.module, "compact", None)
    total, parts = Samples(), []
    nodes = None
    for _ in range(size["graph_repeats"]):
        root, nodes = build_graph(Value, n)
        collect()
        if compact is not None:
            compact()
        t0 = time.perf_counter()
        del root
        t1 = time.perf_counter()
        gc.collect()
        t2 = time.perf_counter()
        if compact is not None:
            compact()
        t3 = time.perf_counter()
        parts.append((t1 - t0, t2 - t1, t3 - t2))
        total.add(t3 - t0, t2 - t1)
    med = sorted(range(len(parts)), key=lambda i: total.times[i])[len(parts) // 2]
    del_s, collect_s, compact_s = parts[med]
    return [record(total, nodes, total.median / nodes * 1e9,
                  del_s=del_s, collect_s=collect_s,
                  compact_s=compact_s if compact is not None else None)]

