"""What the demo workloads share: the data, the initial weights, the step
itself (``micrograd_fast.lab.demo.train_step``) on a model loaded with those
weights, running steps under the clock, and the record."""

import random
import time

from benchmarks.engines import EngineUnavailable, upstream_nn
from benchmarks.moons import demo_data
from benchmarks.timing import Samples
from benchmarks.workloads.registry import Skip, record
from benchmarks.workloads.sizes import DATA_SEED, WEIGHT_SEED

__all__ = ["initial_weights", "demo_sizes", "tuned_data", "notebook_data", "upstream_factory",
           "native_factory", "demo_stepper", "run_steps", "demo_record"]


def initial_weights(sizes, seed=WEIGHT_SEED):
    """Flat parameter list in MLP.parameters() order: per layer, per neuron,
    its weights drawn uniformly from [-1, 1), then a zero bias."""
    rng = random.Random(seed)
    flat = []
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        for _ in range(nout):
            flat.extend(rng.uniform(-1.0, 1.0) for _ in range(nin))
            flat.append(0.0)
    return flat


def demo_sizes(size):
    """The layer sizes of the demo's MLP in this mode, inputs first."""
    return [2] + list(size["demo_sizes"])


def tuned_data(size):
    """The demo's points as Python float lists, labels -1/+1 (ints)."""
    return demo_data(size["demo_points"], noise=0.1, seed=DATA_SEED)


def notebook_data(size):
    """The demo's data as demo.ipynb holds it: NumPy ``X`` (float64, shape
    (n, 2)) and ``y`` (int64 labels -1/+1, computed as ``y * 2 - 1``), from
    ``micrograd_fast.datasets.make_moons`` (the same points as
    :func:`tuned_data`)."""
    from micrograd_fast.datasets import make_moons

    X, y = make_moons(size["demo_points"], noise=0.1, random_state=DATA_SEED)
    return X, y * 2 - 1


def upstream_factory(engine):
    """A ``sizes -> model`` factory of upstream's own nn.py MLP built on the
    engine's Value (drop-in use); Skip when micrograd is not installed."""
    try:
        nn = upstream_nn(engine.Value, engine.name)
    except EngineUnavailable as exc:
        raise Skip(str(exc)) from exc
    return lambda sizes: nn.MLP(sizes[0], sizes[1:])


def native_factory(engine, fused=False):
    """A ``sizes -> model`` factory of micrograd_fast.nn.MLP on ``engine``
    (``fused=True``: its one-node-per-neuron graph)."""
    try:
        import micrograd_fast.nn as native
    except ImportError as exc:
        raise Skip(f"micrograd_fast.nn is not available ({exc})") from exc
    extra = {"fused": True} if fused else {}

    def factory(sizes):
        try:
            return native.MLP(sizes[0], sizes[1:], engine=engine.module, **extra)
        except TypeError:  # an MLP without the engine (or fused) argument
            if fused:
                raise Skip("this micrograd_fast.nn has no fused=True") from None
            return native.MLP(sizes[0], sizes[1:])

    probe = factory([1, 1])
    if type(probe.parameters()[0]) is not engine.Value:
        raise Skip("micrograd_fast.nn builds its parameters on another engine")
    return factory


def demo_stepper(engine, size, factory, data, summer=None):
    """The demo's training step ready to run: ``(step, sizes, flat)``.

    The model comes from ``factory`` loaded with :func:`initial_weights`;
    ``step(k)`` is ``micrograd_fast.lab.demo.train_step`` on it with
    ``data`` (``(X, labels)``) and ``summer`` for the two sums of the loss
    (the builtin ``sum`` when ``None``), returning ``(root, accuracy)``.
    """
    # imported here: the runner imports the workloads and must not need a
    # built micrograd_fast itself (its workers load the engines)
    from micrograd_fast.lab.demo import train_step

    Value = engine.Value
    X, labels = data
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    model = factory(sizes)
    params = model.parameters()
    if len(params) != len(flat):
        raise RuntimeError(f"model has {len(params)} parameters, expected {len(flat)}")
    for p, w in zip(params, flat):
        p.data = w
    total_of = sum if summer is None else summer

    def step(k):
        return train_step(model, Value, X, labels, k, total_of)

    return step, sizes, flat


#: Steps per timing sample.  A sample is the mean over a run of this many
#: steps, so that it spans whole fill-and-reclaim cycles of the compiled
#: arena: the median of single steps would leave out the steps in which the
#: arena reclaims, and with them the cost of reclamation.
STEPS_PER_SAMPLE = 8


def run_steps(step, size):
    """Warm-up steps, then timed steps; returns (samples, first result).

    Both phases run at least their step count and at least their time
    (``demo_warmup_s``, ``demo_measure_s``): a slow engine gets a few steps, a
    fast one many, and the compiled core is measured in its steady state
    (after its arena's first reclamation, when no step touches fresh
    memory).  Each sample is the time per step of a run of
    ``STEPS_PER_SAMPLE`` steps (single steps for a size with no minimum
    measuring time, the smoke run).  The step number passed on cycles
    through the demo's 100-step learning-rate schedule, so long runs keep
    training sensibly."""
    first = step(0)
    k = 1
    per = STEPS_PER_SAMPLE if size.get("demo_measure_s") else 1

    def steps(k0):
        for j in range(k0, k0 + per):
            step(j % 100)

    for count, seconds, samples in ((size["demo_warmup"], size.get("demo_warmup_s", 0.0), None),
                                    (size["demo_steps"], size.get("demo_measure_s", 0.0), Samples())):
        end = time.perf_counter() + seconds
        n = 0
        while n < count or time.perf_counter() < end:
            if samples is None:
                step(k % 100)
                k += 1
                n += 1
            else:
                samples.time(steps, k, per=per)
                k += per
                n += per
    return samples, first


def demo_record(samples, nodes, sizes, flat, points, first, variant, **extra):
    """The record of a demo workload: ms per step, the model, the first
    step's ``(loss, accuracy)``."""
    loss0, acc0 = first
    return record(samples, nodes, samples.median * 1e3,
                  model=f"MLP({sizes[0]}, {sizes[1:]})", points=points,
                  parameters=len(flat), loss_first=loss0, accuracy_first=acc0,
                  variant=variant, **extra)
