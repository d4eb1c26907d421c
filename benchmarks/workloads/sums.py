"""Sums of many existing Values: the builtin ``sum`` and the engine's n-ary
``vsum``."""

from benchmarks.timing import Samples
from benchmarks.workloads.registry import NO_TENSOR_FORM, Skip, record, workload


def _sum_workload(engine, size, summer):
    Value, n = engine.Value, size["sum_terms"]
    xs = [Value(0.001 * i) for i in range(n)]

    def run():
        s = summer(xs)
        s.backward()

    run()  # warm-up
    samples = Samples()
    for _ in range(size["sum_repeats"]):
        samples.time(run)
    return [record(samples, None, samples.median / n * 1e9, terms=n)]


@workload("ns/term", "sum(xs) + backward", excluded=NO_TENSOR_FORM)
def sum_builtin(engine, size):
    """``sum(xs)`` of n existing Values, then backward: ns per term.

    A chain of n additions; n stays under 1000 so upstream's recursive sort
    copes."""
    return _sum_workload(engine, size, sum)


@workload("ns/term", "vsum(xs) + backward",
          excluded={**NO_TENSOR_FORM, "micrograd": "upstream has no vsum"})
def vsum(engine, size):
    """The engine's n-ary ``vsum(xs)`` on the same terms, then backward."""
    if engine.vsum is None:
        raise Skip("the engine has no vsum")
    return _sum_workload(engine, size, engine.vsum)

