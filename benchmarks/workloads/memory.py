"""Memory held by a graph and at the peak of a demo step (tracemalloc, plus
the compiled core's arena account)."""

import contextlib
import tracemalloc

from benchmarks.timing import collect
from benchmarks.workloads.demo import upstream_demo_step
from benchmarks.workloads.graphs import build_graph, count_nodes
from benchmarks.workloads.registry import record, workload

__all__ = ["Arena"]

UNTRACED = {"torch": "tracemalloc does not see torch's allocator"}


class Arena:
    """The compiled core's arena account (``arena_stats``/``compact``), or
    nothing for engines without an arena."""

    def __init__(self, engine):
        self._stats = getattr(engine.module, "arena_stats", None)
        self._compact = getattr(engine.module, "compact", None)

    def compact(self):
        if self._compact is not None:
            self._compact()

    def stats(self):
        return self._stats() if self._stats is not None else None

    def prefilled_bytes(self, before):
        """Bytes of capacity reserved before ``before`` was taken (so not in
        a tracemalloc delta) that nodes created since then occupy."""
        if before is None:
            return 0
        after = self._stats()
        new_nodes = max(0, after["nodes"] - before["nodes"])
        if after["compactions"] != before["compactions"]:
            # slots were reclaimed on the way: count every new node
            # (an upper bound) rather than guess which slots were reused
            new_nodes = after["nodes"]
        free_before = before["capacity"] - before["nodes"]
        return min(new_nodes, free_before) * before["node_bytes"]


@contextlib.contextmanager
def _traced(arena):
    """Garbage collected and the arena compacted, then tracemalloc on (unless
    it runs already, then left on): yields ``(base, before)``, the traced
    bytes and the arena's stats at the start."""
    collect()
    arena.compact()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield tracemalloc.get_traced_memory()[0], arena.stats()
    finally:
        if started:
            tracemalloc.stop()


@workload("bytes/node", "memory per node", excluded=UNTRACED)
def memory_per_node(engine, size):
    """Bytes held per node by a built graph of N nodes (tracemalloc).

    Everything allocated counts, spare capacity included (an arena that
    doubles may hold up to twice what it uses).  For the compiled core,
    whose arena reserves room before it is needed (so tracemalloc saw it
    earlier), the reserved slots the graph filled are added:
    ``bytes = traced_bytes + arena_prefilled_bytes``.
    """
    Value, n = engine.Value, size["memory_nodes"]
    arena = Arena(engine)
    build_graph(Value, 3_000)
    with _traced(arena) as (base, before):
        root, nodes = build_graph(Value, n)
        traced = tracemalloc.get_traced_memory()[0] - base
        prefilled = arena.prefilled_bytes(before)
        del root
        collect()
        arena.compact()
        left = tracemalloc.get_traced_memory()[0] - base
    held = traced + prefilled
    return [record(None, nodes, held / nodes, bytes=held,
                   traced_bytes=traced, arena_prefilled_bytes=prefilled,
                   bytes_after_free=left)]


@workload("MiB peak", "demo step peak memory", excluded=UNTRACED)
def demo_peak_memory(engine, size):
    """Peak traced memory of one demo step (upstream nn.py), above the
    model and data already in memory (plus, for the compiled core, the
    reserved arena slots the step filled, as in memory_per_node)."""
    step = upstream_demo_step(engine, size)
    arena = Arena(engine)
    with _traced(arena) as (base, before):
        tracemalloc.reset_peak()
        root, _ = step(1)
        traced = tracemalloc.get_traced_memory()[1] - base
        prefilled = arena.prefilled_bytes(before)
        nodes = count_nodes(root)
        del root
    peak = traced + prefilled
    return [record(None, nodes, peak / 2**20, peak_bytes=peak,
                   traced_peak_bytes=traced, arena_prefilled_bytes=prefilled,
                   bytes_per_node=peak / nodes if nodes else None)]
