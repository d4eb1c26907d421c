"""The sizes of each mode (``smoke``, ``quick``, ``full``) and the seeds."""

__all__ = ["SIZES", "WEIGHT_SEED", "DATA_SEED"]

SIZES = {
    # tiny: exercises every code path in well under a second per workload
    "smoke": dict(
        ops=2_000, torch_ops=500, op_repeats=1,
        graph_nodes=600, graph_repeats=1, sum_terms=100, sum_repeats=1,
        scaling=[300, 1_000], scaling_budget_s=5.0, scaling_repeats=1,
        scaling_min_time_s=0.0,
        chain_depths=[100, 3_000], bisect_steps=4,
        demo_sizes=[4, 1], demo_points=10, demo_steps=1, demo_warmup=0,
        demo_warmup_s=0.0, demo_measure_s=0.0,
        memory_nodes=600, microgpt="smoke",
        state_steps=20, state_warmup=5,
        replay_steps=50, replay_op_nodes=300,
    ),
    # under two minutes for the whole suite on two cores
    "quick": dict(
        ops=200_000, torch_ops=20_000, op_repeats=5,
        graph_nodes=60_000, graph_repeats=3, sum_terms=900, sum_repeats=200,
        scaling=[1_000, 10_000, 100_000], scaling_budget_s=10.0, scaling_repeats=3,
        scaling_min_time_s=0.3,
        chain_depths=[100, 1_000, 10_000, 100_000], bisect_steps=7,
        demo_sizes=[16, 16, 1], demo_points=100, demo_steps=3, demo_warmup=0,
        demo_warmup_s=0.3, demo_measure_s=0.5,
        memory_nodes=150_000, microgpt="quick",
        state_steps=2_000, state_warmup=200,
        replay_steps=2_000, replay_op_nodes=20_000,
    ),
    # the numbers for the README
    "full": dict(
        ops=1_000_000, torch_ops=100_000, op_repeats=7,
        graph_nodes=300_000, graph_repeats=5, sum_terms=900, sum_repeats=1_000,
        scaling=[1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000],
        scaling_budget_s=60.0, scaling_repeats=5,
        scaling_min_time_s=1.0,
        chain_depths=[100, 1_000, 10_000, 100_000, 1_000_000], bisect_steps=10,
        demo_sizes=[16, 16, 1], demo_points=100, demo_steps=10, demo_warmup=1,
        demo_warmup_s=1.0, demo_measure_s=2.0,
        memory_nodes=1_000_000, microgpt="full",
        state_steps=2_000, state_warmup=200,
        replay_steps=10_000, replay_op_nodes=100_000,
    ),
}

WEIGHT_SEED = 1337
DATA_SEED = 1
