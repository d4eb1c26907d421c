"""Build and backward cost per node over several decades of graph size (its
own table and plot, no row in the main table)."""

from benchmarks.timing import Samples, collect
from benchmarks.workloads.graphs import build_graph
from benchmarks.workloads.registry import NO_TENSOR_FORM, record, workload


@workload("ns/node", excluded=NO_TENSOR_FORM)
def scaling(engine, size):
    """Build and backward cost per node for N over several decades.

    Sizes whose predicted time (from the per-node cost at the previous size)
    would pass the mode's budget are left out and listed in ``skipped_n``.
    """
    Value = engine.Value
    budget = size["scaling_budget_s"]
    build_graph(Value, 3_000)[0].backward()  # warm-up
    records, skipped = [], []
    per_node = None
    for n in size["scaling"]:
        repeats = size["scaling_repeats"] if n <= 100_000 else 1
        if per_node is not None and per_node * n * repeats > budget:
            repeats = 1
            if per_node * n > budget:
                skipped.append(n)
                continue
        b_samples, w_samples = Samples(), Samples()
        nodes = None
        spent, done = 0.0, 0
        # at least `repeats`; more (up to 25) while they take under min_time
        while done < repeats or (spent < size["scaling_min_time_s"] and done < 25):
            done += 1
            collect()
            root, nodes = b_samples.time(build_graph, Value, n)
            w_samples.time(root.backward)
            spent += b_samples.times[-1] + w_samples.times[-1]
            del root
        per_node = (b_samples.median + w_samples.median) / nodes * 1.3  # + freeing
        for phase, s in (("build", b_samples), ("backward", w_samples)):
            records.append(record(s, nodes, s.median / nodes * 1e9,
                                  phase=phase, n=n))
    for rec in records:
        rec["skipped_n"] = skipped
    return records
