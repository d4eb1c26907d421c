"""One binary op on two existing Values, its result dropped at once."""

from benchmarks.timing import Samples
from benchmarks.workloads.registry import record, workload


def _binop(engine, size, op):
    if engine.name == "torch":
        import torch

        torch.set_num_threads(1)
        a = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        count = size["torch_ops"]
    else:
        a, b = engine.Value(1.5), engine.Value(0.5)
        count = size["ops"]
    # ten operations per loop turn keep the loop's own cost small
    turns = range(max(1, count // 10))
    count = len(turns) * 10
    if op == "add":
        def run():
            for _ in turns:
                a + b; a + b; a + b; a + b; a + b  # noqa: E702
                a + b; a + b; a + b; a + b; a + b  # noqa: E702
    else:
        def run():
            for _ in turns:
                a * b; a * b; a * b; a * b; a * b  # noqa: E702
                a * b; a * b; a * b; a * b; a * b  # noqa: E702

    run()  # warm-up
    samples = Samples()
    for _ in range(size["op_repeats"]):
        samples.time(run)
    ns = samples.median / count * 1e9
    return [record(samples, None, ns, ops=count,
                   note="result dropped at once: create + free of one node")]


@workload("ns/op", "a + b")
def op_add(engine, size):
    """``a + b`` on two Values (a 0-d autograd tensor for torch), ns per op."""
    return _binop(engine, size, "add")


@workload("ns/op", "a * b")
def op_mul(engine, size):
    """``a * b`` on two Values (a 0-d autograd tensor for torch), ns per op."""
    return _binop(engine, size, "mul")
