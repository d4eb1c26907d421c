"""The moons demo's training step (``micrograd_fast.lab.demo.train_step``):
as demo.ipynb's loop writes it (NumPy data) and in a tuned form (float
lists), with upstream's own nn.py or micrograd_fast.nn on each engine; torch
beside each (torch_demo.py); and the share of the step spent in the GC."""

import gc

from benchmarks.timing import Samples, collect, gc_clock
from benchmarks.workloads.graphs import count_nodes
from benchmarks.workloads.registry import NO_TENSOR_FORM, record, workload
from benchmarks.workloads.torch_demo import tensor_step, usual_step
from benchmarks.workloads.training import (demo_record, demo_stepper, native_factory,
                                           notebook_data, run_steps, tuned_data,
                                           upstream_factory)

NOTEBOOK_TORCH = "torch: nn.Sequential, zero_grad, optimizer.step()"
TUNED_TORCH = "torch: hand-written tensor step"
NATIVE_ONLY = {"micrograd": "upstream micrograd runs the demo with its own nn.py"}
NO_FUSED = {"micrograd": "upstream has no fused network"}


def _scalar_demo(engine, size, factory, data, variant, summer=None):
    """One record: the step run by run_steps, the graph's node count taken
    from the first step."""
    step, sizes, flat = demo_stepper(engine, size, factory, data, summer)
    nodes = []

    def counted(k):
        root, accuracy = step(k)
        if not nodes:
            nodes.append(count_nodes(root))
        return root.data, accuracy

    samples, first = run_steps(counted, size)
    return [demo_record(samples, nodes[0], sizes, flat, len(data[0]), first, variant,
                        vsum=summer is not None)]


@workload("ms/step", "demo step, demo.ipynb loop as written (NumPy X and y, builtin sum, "
          f"map(model, inputs)), upstream nn.py MLP; {NOTEBOOK_TORCH}")
def demo_notebook(engine, size):
    """demo.ipynb's training loop as written there (NumPy data, builtin
    ``sum``, ``map(model, inputs)``) with upstream's own nn.py on this
    engine's Value; torch: the same model written the usual way
    (``nn.Sequential``, ``zero_grad``, ``optimizer.step()``)."""
    if engine.name == "torch":
        return usual_step(size)
    return _scalar_demo(engine, size, upstream_factory(engine), notebook_data(size),
                        "demo.ipynb loop, upstream nn.py")


@workload("ms/step", "demo step, demo.ipynb loop as written, micrograd_fast.nn MLP; "
          + NOTEBOOK_TORCH, excluded=NATIVE_ONLY)
def demo_notebook_native(engine, size):
    """demo.ipynb's loop as written with ``micrograd_fast.nn.MLP`` on this
    engine; torch as in demo_notebook."""
    if engine.name == "torch":
        return usual_step(size)
    return _scalar_demo(engine, size, native_factory(engine), notebook_data(size),
                        "demo.ipynb loop, micrograd_fast.nn")


class _ModelAtNoCost:
    """Stands in for the demo's model in :func:`demo_notebook_floor`: the
    parameters of a real ``micrograd_fast.nn.MLP`` (so the L2 term, zero_grad
    and the update loop are the real ones), and a call that returns one
    fixed leaf Value whatever the point, with no work of its own."""

    def __init__(self, model, Value):
        self._model = model
        self._score = Value(0.5)

    def __call__(self, x):
        return self._score

    def parameters(self):
        return self._model.parameters()

    def zero_grad(self):
        self._model.zero_grad()


@workload("ms/step", "demo step, demo.ipynb loop as written, the model replaced by one that "
          "costs nothing; " + NOTEBOOK_TORCH, excluded=NATIVE_ONLY)
def demo_notebook_floor(engine, size):
    """demo.ipynb's loop as written (as in demo_notebook_native) with the
    model's calls taken out: each ``model(x)`` returns the same leaf Value at
    no cost, the parameters are still the real MLP's.  What remains is the
    loop's own work, which any scalar engine pays whatever its model costs:
    NumPy rows to scalars, the hinge loss and accuracy with NumPy labels, the
    two sums, the backward pass of the loss above the scores, the update.
    torch as in demo_notebook, for the comparison."""
    if engine.name == "torch":
        return usual_step(size)

    def factory(sizes):
        return _ModelAtNoCost(native_factory(engine)(sizes), engine.Value)

    return _scalar_demo(engine, size, factory, notebook_data(size),
                        "demo.ipynb loop, model at no cost")


@workload("ms/step", "demo step tuned: float lists, builtin sum, upstream nn.py MLP; "
          + TUNED_TORCH)
def demo_step(engine, size):
    """The demo's training step with upstream's own nn.py on this engine's
    Value (drop-in use); torch does the same step on float64 tensors."""
    if engine.name == "torch":
        return tensor_step(size)
    return _scalar_demo(engine, size, upstream_factory(engine), tuned_data(size),
                        "upstream nn.py")


@workload("ms/step", "demo step tuned: float lists, micrograd_fast.sum, micrograd_fast.nn MLP; "
          + TUNED_TORCH, excluded=NATIVE_ONLY)
def demo_step_native(engine, size):
    """The same step with micrograd_fast.nn.MLP as it comes (it builds
    upstream's graph, made in one engine call per model call) and, where the
    engine has it, ``vsum`` for the two sums of the loss; torch as in
    demo_step, for the comparison."""
    if engine.name == "torch":
        return tensor_step(size)
    return _scalar_demo(engine, size, native_factory(engine), tuned_data(size),
                        "micrograd_fast.nn (upstream's graph)", summer=engine.vsum)


@workload("ms/step", "demo step tuned: float lists, micrograd_fast.sum, micrograd_fast.nn MLP "
          f"fused=True (one node per neuron); {TUNED_TORCH}", excluded=NO_FUSED)
def demo_step_fused(engine, size):
    """The same step with ``micrograd_fast.nn.MLP(..., fused=True)``: one
    node per neuron, a different graph from upstream's; torch as in
    demo_step, for the comparison."""
    if engine.name == "torch":
        return tensor_step(size)
    return _scalar_demo(engine, size, native_factory(engine, fused=True), tuned_data(size),
                        "micrograd_fast.nn fused=True (one node per neuron)",
                        summer=engine.vsum)


def upstream_demo_step(engine, size):
    """demo_step's step (upstream nn.py, float lists) ready to run, its
    first step done: ``step(k) -> (root, accuracy)``."""
    step, _, _ = demo_stepper(engine, size, upstream_factory(engine), tuned_data(size))
    step(0)
    return step


def _gc_text(rec):
    return f"{rec['headline']:.0f}% in GC, {rec['slowdown'] * 100:+.0f}% vs gc off"


@workload("% in GC", "demo step: GC share", text=_gc_text, excluded=NO_TENSOR_FORM)
def gc_share(engine, size):
    """The demo step (upstream nn.py) with the cyclic GC on and off, alternately.

    ``gc_s`` is the time spent in collections per step with the GC on (timed
    through ``gc.callbacks``), ``gc_share`` its fraction of the step,
    ``median_s_gc_off`` the step with ``gc.disable()``.  Garbage is collected
    before every step, outside the clock, in both settings, which alternate.
    """
    gc_clock()
    step = upstream_demo_step(engine, size)
    on, off = Samples(), Samples()
    k = 1
    # alternate the two settings so a drift in machine load hits both alike
    for _ in range(max(1, size["demo_steps"])):
        for samples in (on, off):
            collect()
            if samples is off:
                gc.disable()
            try:
                samples.time(step, k)
            finally:
                gc.enable()
            k += 1
    share = on.summary()["gc_s"] / on.median
    return [record(on, None, 100.0 * share,
                   gc_share=share, median_s_gc_off=off.median,
                   min_s_gc_off=min(off.times), slowdown=on.median / off.median - 1.0)]
