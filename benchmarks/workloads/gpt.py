"""A microgpt-shaped program (benchmarks/microgpt.py) with the engine's Value
in place of the program's own."""

from benchmarks.timing import Samples
from benchmarks.workloads.registry import NO_TENSOR_FORM, Skip, record, workload

NO_NODE_FORM = {"micrograd": "upstream's Value has no Value(data, children, local_grads) form"}


def _microgpt(engine, size, swap_linear):
    from benchmarks import microgpt

    if not microgpt.supports_node_form(engine.Value):
        raise Skip("Value(data, children, local_grads) is not supported by this "
                   "engine (the workload's squared ReLU is built in that form)")
    cfg = microgpt.CONFIGS[size["microgpt"]]
    res = microgpt.compare(engine.Value, cfg, apart=True, swap_linear=swap_linear)
    if res["trail_own"] != res["trail_ours"]:
        raise RuntimeError(
            f"loss trails differ: own Value {res['trail_own']}, "
            f"{engine.name} {res['trail_ours']}")
    samples = Samples()
    for t in res["times_ours"]:
        samples.add(t)
    return [record(samples, None, samples.median * 1e3,
                   own_ms_step=res["own_step_s"] * 1e3, speedup=res["speedup"],
                   phases_ms={k: v * 1e3 for k, v in res["phases_ours"].items()},
                   own_phases_ms={k: v * 1e3 for k, v in res["phases_own"].items()},
                   trail=res["trail_ours"], bit_identical=res["bit_identical"],
                   max_abs_diff=res["max_abs_diff"], swap_linear=swap_linear,
                   model=("n_embd={n_embd} n_head={n_head} n_layer={n_layer} "
                          "block_size={block_size}").format(**cfg))]


@workload("ms/step", "microgpt-shaped step", excluded={**NO_TENSOR_FORM, **NO_NODE_FORM})
def microgpt_step(engine, size):
    """A training step of a tiny GPT on names (benchmarks/microgpt.py), run
    with a pure-Python Value written in the children/local-gradients style
    and with this engine's Value in its place: ms per step with the engine's.

    Each class trains in a fresh process of its own, the pure class first
    (microgpt.compare with ``apart``), and the two must print the same loss
    trail (4 decimals); a difference is an error, not a number.  The record
    carries both trails, ``own_ms_step`` (the pure class), ``speedup`` (its
    time over the engine's), ``bit_identical``, and the median milliseconds
    of each phase of a step (forward, backward, update: the program's own
    Adam loop) for the engine (``phases_ms``) and the pure class
    (``own_phases_ms``).
    """
    return _microgpt(engine, size, False)


@workload("ms/step", "microgpt-shaped step, its linear replaced by micrograd_fast.linear",
          excluded={**NO_TENSOR_FORM, **NO_NODE_FORM})
def microgpt_step_linear(engine, size):
    """microgpt_step with the program's ``linear`` replaced by
    ``micrograd_fast.linear`` (one block per matrix-vector product) in the
    engine's runs; the pure class runs the program as it is, and the two
    must print the same loss trail."""
    return _microgpt(engine, size, True)
