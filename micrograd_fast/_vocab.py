"""Vocabularies written once for Python: the compiled core, the pure engine,
``engine`` and ``nn`` all read them from here (activations, the engine interface).  The C side has its own lists in
``csrc/mgf_core.h`` (``MGF_OPS``, ``MGF_ACTS``); ``tests/test_tables.py``
fails when the two drift apart (see docs/architecture.md, "How to add an
activation")."""

#: The activations a layer or neuron takes, in the order error messages
#: list them.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "linear")

#: The names every engine module exports, in its ``__all__`` order (the
#: interface ``micrograd_fast.engine`` selects and forwards).
ENGINE_API = (
    "Value",
    "COMPILED",
    "vsum",
    "layer",
    "mlp",
    "mlp_plan",
    "MLPPlan",
    "sgd_update",
    "adam_update",
    "gather",
    "scatter",
    "zero_grad",
    "grad",
    "mlp_rows",
    "linear",
)

#: The compiled core's arena names, after ``ENGINE_API`` in its ``__all__``.
ARENA_API = ("compact", "arena_stats")
