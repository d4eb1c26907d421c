"""Vocabularies written once for Python: the compiled core, the pure engine
and ``nn`` all read them from here.  The C side has its own lists in
``csrc/mgf_core.h`` (``MGF_OPS``, ``MGF_ACTS``); ``tests/test_tables.py``
fails when the two drift apart (see docs/architecture.md, "How to add an
activation")."""

#: The activations a layer or neuron takes, in the order error messages
#: list them.
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
