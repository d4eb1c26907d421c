"""The workloads: one module per subject, every workload declared once in the
registry (:mod:`benchmarks.workloads.registry`).

A workload is a function ``fn(engine, size) -> list of records``.  A record
is a dict; the worker adds ``workload``, ``engine`` and the declared
``unit``.  Timed records carry ``median_s``, ``min_s``, ``max_s``,
``repeats`` and ``nodes`` (nodes of the graph one repeat builds or walks,
``None`` where that has no meaning), plus ``headline``: the one number the
tables show for that record, e.g. nanoseconds per node.  Memory workloads
keep the time fields at ``None`` and give bytes instead.

``size`` is one of the dicts in :data:`SIZES` (``smoke``, ``quick``,
``full``).  A workload that does not apply to an engine is declared so
(``excluded``), or raises :class:`Skip` when only running it tells.

The modules, in the order of the run and of the tables:

``ops``        one binary op (``op_add``, ``op_mul``)
``graphs``     the graph of N nodes: ``build``, ``backward``, ``free``
``sums``       ``sum_builtin``, ``vsum``
``chain``      ``deep_chain``
``demo``       the moons demo's step, five ways, and ``gc_share``
               (with ``training``, what they share, and ``torch_demo``)
``memory``     ``memory_per_node``, ``demo_peak_memory``
``state``      ``memory_labels``, ``memory_attributes``, ``memory_custom_op``
``scaling``    ``scaling``
``gpt``        ``microgpt_step``
``higher``     ``hessian_vector``
``replay``     ``demo_replay``, ``demo_replay_fused``, ``replay_program``, ``replay_ops``
``blocks``     ``demo_step_batch``, ``digits_step`` (the batch call)
"""

from benchmarks.workloads.registry import (WORKLOADS, Row, Skip, Workload, applies,
                                           workload)
from benchmarks.workloads.sizes import DATA_SEED, SIZES, WEIGHT_SEED

# imported for their declarations, in the order of the run and of the tables
from benchmarks.workloads import ops, graphs, sums, chain  # noqa: E402,F401  isort: skip
from benchmarks.workloads import demo, memory, state, scaling, gpt, higher, replay, blocks  # noqa: E402,F401  isort: skip

from benchmarks.workloads.graphs import build_graph, count_nodes  # noqa: E402
from benchmarks.workloads.training import notebook_data  # noqa: E402

__all__ = ["Skip", "SIZES", "WORKLOADS", "Workload", "Row", "workload", "applies",
           "build_graph", "count_nodes", "notebook_data", "WEIGHT_SEED", "DATA_SEED"]
