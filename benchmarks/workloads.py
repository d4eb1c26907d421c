"""The workloads.  Each is a function ``fn(engine, size) -> list of records``.

A record is a dict; the runner adds ``workload`` and ``engine``.  Timed
records carry ``median_s``, ``min_s``, ``max_s``, ``repeats`` and ``nodes``
(nodes of the graph one repeat builds or walks, ``None`` where that has no
meaning), plus ``headline`` and ``unit``: the one number the tables show for
that record, e.g. nanoseconds per node.  Memory workloads keep the time
fields at ``None`` and give bytes instead.

``size`` is one of the dicts in :data:`SIZES` (``smoke``, ``quick``,
``full``).  A workload that does not apply to an engine raises :class:`Skip`.
"""

import gc
import random
import sys
import time
import tracemalloc

from benchmarks.engines import EngineUnavailable, upstream_nn
from benchmarks.moons import demo_data
from benchmarks.timing import Samples, gc_clock

__all__ = ["Skip", "SIZES", "WORKLOADS", "DESCRIPTIONS", "build_graph", "count_nodes"]


class Skip(Exception):
    """The workload does not apply to this engine (reason in the message)."""


# --------------------------------------------------------------------------
# sizes per mode
# --------------------------------------------------------------------------
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
    ),
}

WEIGHT_SEED = 1337
DATA_SEED = 1


def _record(samples, nodes, headline, unit, **extra):
    rec = samples.summary() if samples is not None else dict(
        median_s=None, min_s=None, max_s=None, repeats=None, gc_s=None
    )
    rec.update(nodes=nodes, headline=headline, unit=unit)
    rec.update(extra)
    return rec


def _require_scalar(engine):
    if not engine.is_scalar:
        raise Skip("no tensor form of this workload")


def _collect():
    gc.collect()
    gc.collect()


# --------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------
def build_graph(Value, n):
    """A wide, shallow graph of about ``n`` nodes; returns ``(root, nodes)``.

    ``m = n // 3`` leaves, one product of each neighbouring pair (``m``
    products), and a pairwise tree of ``m - 1`` additions down to one root:
    ``3m - 1`` nodes, depth about ``log2(m)``, so every engine (including a
    recursive topological sort) can walk it.  The root is the only reference
    left to the graph when this returns.
    """
    m = max(2, n // 3)
    xs = [Value(0.5 + 0.25 * (i % 7)) for i in range(m)]
    level = [xs[i - 1] * xs[i] for i in range(m)]
    del xs
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0], 3 * m - 1


def build_chain(Value, depth):
    """``y = y + x`` repeated ``depth`` times: a graph as deep as it is long."""
    x = Value(1e-6)
    y = Value(0.0)
    for _ in range(depth):
        y = y + x
    return y, depth + 2


def count_nodes(root):
    """Nodes reachable from ``root`` through ``_prev`` (None if not exposed)."""
    if not hasattr(root, "_prev"):
        return None
    # keep every node object alive while counting: an engine may hand out
    # short-lived handles whose id() could otherwise be reused
    seen = {id(root): root}
    stack = [root]
    while stack:
        v = stack.pop()
        for c in v._prev:
            if id(c) not in seen:
                seen[id(c)] = c
                stack.append(c)
    return len(seen)


# --------------------------------------------------------------------------
# one binary op
# --------------------------------------------------------------------------
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
    return [_record(samples, None, ns, "ns/op", ops=count,
                    note="result dropped at once: create + free of one node")]


def op_add(engine, size):
    """``a + b`` on two Values (a 0-d autograd tensor for torch), ns per op."""
    return _binop(engine, size, "add")


def op_mul(engine, size):
    """``a * b`` on two Values (a 0-d autograd tensor for torch), ns per op."""
    return _binop(engine, size, "mul")


# --------------------------------------------------------------------------
# graph build, backward, free
# --------------------------------------------------------------------------
def build(engine, size):
    """Build a graph of N nodes from floats (leaves included), ns per node."""
    _require_scalar(engine)
    Value, n = engine.Value, size["graph_nodes"]
    build_graph(Value, min(n, 3_000))  # warm-up
    samples = Samples()
    nodes = None
    for _ in range(size["graph_repeats"]):
        _collect()
        root, nodes = samples.time(build_graph, Value, n)
        del root
    return [_record(samples, nodes, samples.median / nodes * 1e9, "ns/node")]


def backward(engine, size):
    """``root.backward()`` on a prebuilt graph of N nodes, ns per node."""
    _require_scalar(engine)
    Value, n = engine.Value, size["graph_nodes"]
    root, _ = build_graph(Value, min(n, 3_000))
    root.backward()  # warm-up
    del root
    samples = Samples()
    nodes = None
    for _ in range(size["graph_repeats"]):
        root, nodes = build_graph(Value, n)
        _collect()
        samples.time(root.backward)
        del root
    return [_record(samples, nodes, samples.median / nodes * 1e9, "ns/node")]


def free(engine, size):
    """Drop the last reference to a graph of N nodes, then ``gc.collect()``.

    ``del_s`` is the time of the ``del`` alone (what reference counting frees
    at once), ``collect_s`` the full collection after it (what only the cyclic
    GC frees: all of an upstream graph, whose nodes sit in reference cycles
    through their backward closures).  An engine with a node arena that is
    reclaimed lazily (the compiled core's ``compact()``) also gets
    ``compact_s``, the reclamation forced at once, which would otherwise be
    paid at a later allocation.  ``median_s`` is the sum.
    """
    _require_scalar(engine)
    Value, n = engine.Value, size["graph_nodes"]
    compact = getattr(engine.module, "compact", None)
    total, parts = Samples(), []
    nodes = None
    for _ in range(size["graph_repeats"]):
        root, nodes = build_graph(Value, n)
        _collect()
        if compact is not None:
            compact()
        t0 = time.perf_counter()
        del root
        t1 = time.perf_counter()
        gc.collect()
        t2 = time.perf_counter()
        if compact is not None:
            compact()
        t3 = time.perf_counter()
        parts.append((t1 - t0, t2 - t1, t3 - t2))
        total.add(t3 - t0, t2 - t1)
    med = sorted(range(len(parts)), key=lambda i: total.times[i])[len(parts) // 2]
    del_s, collect_s, compact_s = parts[med]
    return [_record(total, nodes, total.median / nodes * 1e9, "ns/node",
                    del_s=del_s, collect_s=collect_s,
                    compact_s=compact_s if compact is not None else None)]


# --------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------
def scaling(engine, size):
    """Build and backward cost per node for N over several decades.

    Sizes whose predicted time (from the per-node cost at the previous size)
    would pass the mode's budget are left out and listed in ``skipped_n``.
    """
    _require_scalar(engine)
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
            _collect()
            root, nodes = b_samples.time(build_graph, Value, n)
            w_samples.time(root.backward)
            spent += b_samples.times[-1] + w_samples.times[-1]
            del root
        per_node = (b_samples.median + w_samples.median) / nodes * 1.3  # + freeing
        for phase, s in (("build", b_samples), ("backward", w_samples)):
            records.append(_record(s, nodes, s.median / nodes * 1e9, "ns/node",
                                   phase=phase, n=n))
    for rec in records:
        rec["skipped_n"] = skipped
    return records


# --------------------------------------------------------------------------
# sums of many Values
# --------------------------------------------------------------------------
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
    return [_record(samples, None, samples.median / n * 1e9, "ns/term", terms=n)]


def sum_builtin(engine, size):
    """``sum(xs)`` of n existing Values, then backward: ns per term.

    A chain of n additions; n stays under 1000 so upstream's recursive sort
    copes."""
    _require_scalar(engine)
    return _sum_workload(engine, size, sum)


def vsum(engine, size):
    """The engine's n-ary ``vsum(xs)`` on the same terms, then backward."""
    _require_scalar(engine)
    if engine.vsum is None:
        raise Skip("the engine has no vsum")
    return _sum_workload(engine, size, engine.vsum)


# --------------------------------------------------------------------------
# deep chain
# --------------------------------------------------------------------------
def _try_chain(Value, depth):
    """Build, backward and free a chain; returns a dict, never raises."""
    out = dict(depth=depth, ok=False, error=None, phase=None,
               build_s=None, backward_s=None, free_s=None)
    phase = "build"
    try:
        t0 = time.perf_counter()
        y, _ = build_chain(Value, depth)
        out["build_s"] = time.perf_counter() - t0
        phase = "backward"
        t0 = time.perf_counter()
        y.backward()
        out["backward_s"] = time.perf_counter() - t0
        phase = "free"
        t0 = time.perf_counter()
        del y
        gc.collect()
        out["free_s"] = time.perf_counter() - t0
        out["ok"] = True
    except (RecursionError, MemoryError, OverflowError, ValueError) as exc:
        out["phase"] = phase
        text = str(exc).splitlines()[0] if str(exc) else ""
        out["error"] = f"{type(exc).__name__}: {text}"[:200]
    return out


def deep_chain(engine, size):
    """A chain ``y = y + x`` of growing depth: where (and how) does it break?

    Depths are tried in order; after the first failure the boundary between
    the last depth that worked and the first that failed is narrowed by
    bisection.  ``depth`` is the deepest chain that worked, ``failed_depth``
    the shallowest that failed (``None`` if none did), ``failure`` its error
    and ``failure_phase`` where it happened.  The timings are those of the
    deepest chain that worked.
    """
    _require_scalar(engine)
    Value = engine.Value
    tries = []
    good, bad = None, None
    for depth in size["chain_depths"]:
        t = _try_chain(Value, depth)
        tries.append(t)
        if t["ok"]:
            good = t
        else:
            bad = t
            break
    if bad is not None:
        lo = good["depth"] if good else 0
        for _ in range(size["bisect_steps"]):
            if bad["depth"] - lo <= max(1, lo // 100):
                break
            mid = (lo + bad["depth"]) // 2
            t = _try_chain(Value, mid)
            tries.append(t)
            if t["ok"]:
                good, lo = t, mid
            else:
                bad = t
    if good is None:
        good = dict(depth=0, build_s=None, backward_s=None, free_s=None)
    rec = dict(median_s=good["backward_s"], min_s=good["backward_s"],
               max_s=good["backward_s"], repeats=1, gc_s=None,
               nodes=good["depth"] + 2 if good["depth"] else None,
               headline=good["depth"], unit="max depth",
               depth=good["depth"], build_s=good["build_s"], free_s=good["free_s"],
               failed_depth=bad["depth"] if bad else None,
               failure=bad["error"] if bad else None,
               failure_phase=bad["phase"] if bad else None,
               recursion_limit=sys.getrecursionlimit(),
               tries=sorted(tries, key=lambda t: t["depth"]))
    return [rec]


# --------------------------------------------------------------------------
# the demo's training step
# --------------------------------------------------------------------------
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


def _load_weights(model, flat):
    params = model.parameters()
    if len(params) != len(flat):
        raise RuntimeError(f"model has {len(params)} parameters, expected {len(flat)}")
    for p, w in zip(params, flat):
        p.data = w


def hinge_step(model, Value, xs, ys, k, summer=None):
    """One step of the demo: hinge loss + L2, zero_grad, backward, SGD.

    ``summer`` replaces the builtin ``sum`` for the two sums of the loss
    (an engine's ``vsum``).  Returns ``(loss, accuracy, root)``.
    """
    total_of = sum if summer is None else summer
    inputs = [[Value(a) for a in row] for row in xs]
    scores = [model(x) for x in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
    data_loss = total_of(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * total_of([p * p for p in model.parameters()])
    total = data_loss + reg_loss
    accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(ys, scores)) / len(ys)
    model.zero_grad()
    total.backward()
    lr = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= lr * p.grad
    return total.data, accuracy, total


def _demo_setup(size):
    xs, ys = demo_data(size["demo_points"], noise=0.1, seed=DATA_SEED)
    sizes = [2] + list(size["demo_sizes"])
    return xs, ys, sizes, initial_weights(sizes)


def _run_steps(step, size):
    """Warm-up steps, then timed steps; returns (samples, first loss).

    Both phases run at least their step count and at least their time
    (``demo_warmup_s``, ``demo_measure_s``): a slow engine gets a few steps, a
    fast one many, and the compiled core is measured in its steady state
    (after its arena's first reclamation, when no step touches fresh
    memory).  The step number passed on cycles through the demo's 100-step
    learning-rate schedule, so long runs keep training sensibly."""
    first = step(0)
    k = 1
    for count, seconds, samples in ((size["demo_warmup"], size.get("demo_warmup_s", 0.0), None),
                                    (size["demo_steps"], size.get("demo_measure_s", 0.0), Samples())):
        end = time.perf_counter() + seconds
        n = 0
        while n < count or time.perf_counter() < end:
            if samples is None:
                step(k % 100)
            else:
                samples.time(step, k % 100)
            k += 1
            n += 1
    return samples, first


def _measure_demo(size, model_factory, sizes, flat, train_step, points, variant, vsum):
    """One record for a demo step: the model made and loaded with the demo's
    weights, ``train_step(model, k)`` (returning ``(loss, accuracy, root)``)
    run by _run_steps, the graph's node count taken from the first step."""
    model = model_factory(sizes)
    _load_weights(model, flat)
    state = {}

    def step(k):
        loss, acc, root = train_step(model, k)
        if "nodes" not in state:
            state["nodes"] = count_nodes(root)
        return loss, acc

    samples, (loss0, acc0) = _run_steps(step, size)
    return [_record(samples, state["nodes"], samples.median * 1e3, "ms/step",
                    model=f"MLP({sizes[0]}, {sizes[1:]})", points=points,
                    parameters=len(flat), loss_first=loss0, accuracy_first=acc0,
                    variant=variant, vsum=vsum)]


def _scalar_demo(engine, size, model_factory, variant, summer=None):
    Value = engine.Value
    xs, ys, sizes, flat = _demo_setup(size)
    return _measure_demo(size, model_factory, sizes, flat,
                         lambda model, k: hinge_step(model, Value, xs, ys, k, summer),
                         len(xs), variant, summer is not None)


def _torch_demo(size):
    import torch

    torch.set_num_threads(1)
    xs, ys, sizes, flat = _demo_setup(size)
    X = torch.tensor(xs, dtype=torch.float64)
    Y = torch.tensor(ys, dtype=torch.float64)
    params, layers, i = [], [], 0
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        block = torch.tensor(flat[i:i + nout * (nin + 1)], dtype=torch.float64)
        block = block.reshape(nout, nin + 1)
        W = block[:, :nin].clone().requires_grad_(True)
        b = block[:, nin].clone().requires_grad_(True)
        layers.append((W, b))
        params.extend((W, b))
        i += nout * (nin + 1)

    def step(k):
        h = X
        for j, (W, b) in enumerate(layers):
            h = h @ W.T + b
            if j < len(layers) - 1:
                h = torch.relu(h)
        scores = h[:, 0]
        data_loss = torch.relu(1 - Y * scores).mean()
        reg_loss = 1e-4 * sum((p * p).sum() for p in params)
        total = data_loss + reg_loss
        accuracy = ((Y > 0) == (scores > 0)).double().mean().item()
        for p in params:
            p.grad = None
        total.backward()
        lr = 1.0 - 0.9 * k / 100
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        return total.item(), accuracy

    samples, (loss0, acc0) = _run_steps(step, size)
    return [_record(samples, None, samples.median * 1e3, "ms/step",
                    model=f"MLP({sizes[0]}, {sizes[1:]})", points=len(xs),
                    parameters=len(flat), loss_first=loss0, accuracy_first=acc0,
                    variant="tensor", threads=torch.get_num_threads())]


def demo_step(engine, size):
    """The demo's training step with upstream's own nn.py on this engine's
    Value (drop-in use); torch does the same step on float64 tensors."""
    if engine.name == "torch":
        return _torch_demo(size)
    try:
        nn = upstream_nn(engine.Value, engine.name)
    except EngineUnavailable as exc:
        raise Skip(str(exc)) from exc
    return _scalar_demo(engine, size, lambda s: nn.MLP(s[0], s[1:]), "upstream nn.py")


def _native_factory(engine, fused=False):
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


def demo_step_native(engine, size):
    """The same step with micrograd_fast.nn.MLP as it comes (it builds
    upstream's graph, made in one engine call per model call) and, where the
    engine has it, ``vsum`` for the two sums of the loss; torch as in
    demo_step, for the comparison."""
    if engine.name == "torch":
        return _torch_demo(size)
    if engine.name == "micrograd":
        raise Skip("upstream's native step is demo_step")
    factory = _native_factory(engine)
    return _scalar_demo(engine, size, factory, "micrograd_fast.nn (upstream's graph)",
                        summer=engine.vsum)


def demo_step_fused(engine, size):
    """The same step with ``micrograd_fast.nn.MLP(..., fused=True)``: one
    node per neuron, a different graph from upstream's; torch as in
    demo_step, for the comparison."""
    if engine.name == "torch":
        return _torch_demo(size)
    if engine.name == "micrograd":
        raise Skip("upstream has no fused network")
    factory = _native_factory(engine, fused=True)
    return _scalar_demo(engine, size, factory, "micrograd_fast.nn fused=True (one node per neuron)",
                        summer=engine.vsum)


# --------------------------------------------------------------------------
# the demo notebook's loop as a user writes it
# --------------------------------------------------------------------------
def notebook_data(size):
    """The demo's data as demo.ipynb holds it: NumPy ``X`` (float64, shape
    (n, 2)) and ``y`` (int64 labels -1/+1, computed as ``y * 2 - 1``), from
    ``micrograd_fast.datasets.make_moons`` (the same points as
    :func:`benchmarks.moons.demo_data`)."""
    from micrograd_fast.datasets import make_moons

    X, y = make_moons(size["demo_points"], noise=0.1, random_state=DATA_SEED)
    return X, y * 2 - 1


def notebook_step(model, Value, X, y, k):
    """One step of demo.ipynb's loop as written there: ``list(map(Value,
    row))`` over the NumPy rows, ``list(map(model, inputs))``, the hinge
    loss with NumPy labels, the builtin ``sum`` for both sums (a generator
    for the L2 term), ``zero_grad``, ``backward`` and the SGD update with
    rate ``1.0 - 0.9*k/100`` (the notebook's per-step ``print`` left out).
    Returns ``(loss, accuracy, root)``."""
    rows = [list(map(Value, point)) for point in X]
    outs = list(map(model, rows))
    margins = [(1 + -label * out).relu() for label, out in zip(y, outs)]
    hinge = sum(margins) * (1.0 / len(margins))
    l2 = 1e-4 * sum((w * w for w in model.parameters()))
    total = hinge + l2
    right = [(label > 0) == (out.data > 0) for label, out in zip(y, outs)]
    accuracy = sum(right) / len(right)
    model.zero_grad()
    total.backward()
    rate = 1.0 - 0.9 * k / 100
    for w in model.parameters():
        w.data -= rate * w.grad
    return total.data, float(accuracy), total


def _notebook_demo(engine, size, model_factory, variant):
    Value = engine.Value
    X, y = notebook_data(size)
    sizes = [2] + list(size["demo_sizes"])
    flat = initial_weights(sizes)
    return _measure_demo(size, model_factory, sizes, flat,
                         lambda model, k: notebook_step(model, Value, X, y, k),
                         len(X), variant, False)


def _torch_usual(size):
    """The demo's model and loss in PyTorch written the usual way:
    ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` in float64, tensors from
    the NumPy data, ``optimizer.zero_grad()``, ``backward()``, the rate set
    in the optimizer's param group and ``optimizer.step()`` (SGD)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    X_np, y_np = notebook_data(size)
    sizes = [2] + list(size["demo_sizes"])
    flat = initial_weights(sizes)
    layers = []
    for j, (nin, nout) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(nin, nout))
        if j < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():  # the same initial weights as every other engine
        i = 0
        for lin in (m for m in model if isinstance(m, torch.nn.Linear)):
            nout, nin = lin.weight.shape
            block = np.array(flat[i:i + nout * (nin + 1)]).reshape(nout, nin + 1)
            lin.weight.copy_(torch.from_numpy(block[:, :nin]))
            lin.bias.copy_(torch.from_numpy(block[:, nin]))
            i += nout * (nin + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    X = torch.from_numpy(X_np)
    y = torch.from_numpy(y_np).double()

    def step(k):
        scores = model(X).squeeze(1)
        data_loss = torch.relu(1 - y * scores).mean()
        reg_loss = 1e-4 * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = ((y > 0) == (scores > 0)).double().mean().item()
        optimizer.zero_grad()
        total_loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = 1.0 - 0.9 * k / 100
        optimizer.step()
        return total_loss.item(), accuracy

    samples, (loss0, acc0) = _run_steps(step, size)
    return [_record(samples, None, samples.median * 1e3, "ms/step",
                    model=f"MLP({sizes[0]}, {sizes[1:]})", points=len(X_np),
                    parameters=len(flat), loss_first=loss0, accuracy_first=acc0,
                    variant="nn.Sequential + optim.SGD",
                    threads=torch.get_num_threads())]


def demo_notebook(engine, size):
    """demo.ipynb's training loop as written there (NumPy data, builtin
    ``sum``, ``map(model, inputs)``) with upstream's own nn.py on this
    engine's Value; torch: the same model written the usual way
    (``nn.Sequential``, ``zero_grad``, ``optimizer.step()``)."""
    if engine.name == "torch":
        return _torch_usual(size)
    try:
        nn = upstream_nn(engine.Value, engine.name)
    except EngineUnavailable as exc:
        raise Skip(str(exc)) from exc
    return _notebook_demo(engine, size, lambda s: nn.MLP(s[0], s[1:]),
                          "demo.ipynb loop, upstream nn.py")


def demo_notebook_native(engine, size):
    """demo.ipynb's loop as written with ``micrograd_fast.nn.MLP`` on this
    engine; torch as in demo_notebook."""
    if engine.name == "torch":
        return _torch_usual(size)
    if engine.name == "micrograd":
        raise Skip("upstream micrograd runs the notebook with its own nn.py (demo_notebook)")
    factory = _native_factory(engine)
    return _notebook_demo(engine, size, factory, "demo.ipynb loop, micrograd_fast.nn")


def gc_share(engine, size):
    """The demo step (upstream nn.py) with the cyclic GC on and off, alternately.

    ``gc_s`` is the time spent in collections per step with the GC on (timed
    through ``gc.callbacks``), ``gc_share`` its fraction of the step,
    ``median_s_gc_off`` the step with ``gc.disable()``.  Garbage is collected
    before every step, outside the clock, in both settings, which alternate.
    """
    _require_scalar(engine)
    try:
        nn = upstream_nn(engine.Value, engine.name)
    except EngineUnavailable as exc:
        raise Skip(str(exc)) from exc
    Value = engine.Value
    xs, ys, sizes, flat = _demo_setup(size)
    model = nn.MLP(sizes[0], sizes[1:])
    _load_weights(model, flat)
    gc_clock()
    hinge_step(model, Value, xs, ys, 0)
    on, off = Samples(), Samples()
    k = 1
    # alternate the two settings so a drift in machine load hits both alike
    for _ in range(max(1, size["demo_steps"])):
        for samples in (on, off):
            _collect()
            if samples is off:
                gc.disable()
            try:
                samples.time(hinge_step, model, Value, xs, ys, k)
            finally:
                gc.enable()
            k += 1
    share = on.summary()["gc_s"] / on.median
    return [_record(on, None, 100.0 * share, "% in GC",
                    gc_share=share, median_s_gc_off=off.median,
                    min_s_gc_off=min(off.times), slowdown=on.median / off.median - 1.0)]


# --------------------------------------------------------------------------
# a microgpt-shaped program
# --------------------------------------------------------------------------
def microgpt_step(engine, size):
    """A training step of a tiny GPT on names (benchmarks/microgpt.py), run
    with a pure-Python Value written in the children/local-gradients style
    and with this engine's Value in its place: ms per step with the engine's.

    Both runs take turns step by step and must print the same loss trail
    (4 decimals); a difference is an error, not a number.  The record
    carries both trails, ``own_ms_step`` (the pure class), ``speedup`` (its
    time over the engine's) and ``bit_identical``.
    """
    _require_scalar(engine)
    from benchmarks import microgpt

    if not microgpt.supports_node_form(engine.Value):
        raise Skip("Value(data, children, local_grads) is not supported by this "
                   "engine (the workload's squared ReLU is built in that form)")
    cfg = microgpt.CONFIGS[size["microgpt"]]
    res = microgpt.compare(engine.Value, cfg)
    if res["trail_own"] != res["trail_ours"]:
        raise RuntimeError(
            f"loss trails differ: own Value {res['trail_own']}, "
            f"{engine.name} {res['trail_ours']}")
    samples = Samples()
    for t in res["times_ours"]:
        samples.add(t)
    return [_record(samples, None, samples.median * 1e3, "ms/step",
                    own_ms_step=res["own_step_s"] * 1e3, speedup=res["speedup"],
                    trail=res["trail_ours"], bit_identical=res["bit_identical"],
                    max_abs_diff=res["max_abs_diff"],
                    model=("n_embd={n_embd} n_head={n_head} n_layer={n_layer} "
                           "block_size={block_size}").format(**cfg))]


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------
def _require_traced(engine):
    if not engine.is_scalar:
        raise Skip("tracemalloc does not see torch's allocator")


class _Arena:
    """The compiled core's arena account (``arena_stats``/``compact``), or
    nothing for engines without an arena."""

    def __init__(self, engine):
        self._stats = getattr(engine.module, "arena_stats", None)
        self._compact = getattr(engine.module, "compact", None)

    def compact(self):
        if self._compact is not None:
            self._compact()

    def stats(self):
        return self._stats() if self._stats is not None else None

    def prefilled_bytes(self, before):
        """Bytes of capacity reserved before ``before`` was taken (so not in
        a tracemalloc delta) that nodes created since then occupy."""
        if before is None:
            return 0
        after = self._stats()
        new_nodes = max(0, after["nodes"] - before["nodes"])
        if after["compactions"] != before["compactions"]:
            # slots were reclaimed on the way: count every new node
            # (an upper bound) rather than guess which slots were reused
            new_nodes = after["nodes"]
        free_before = before["capacity"] - before["nodes"]
        return min(new_nodes, free_before) * before["node_bytes"]


def _trace_start():
    """Start tracemalloc unless it already runs; True if we started it."""
    if tracemalloc.is_tracing():
        return False
    tracemalloc.start()
    return True


def memory_per_node(engine, size):
    """Bytes held per node by a built graph of N nodes (tracemalloc).

    Everything allocated counts, spare capacity included (an arena that
    doubles may hold up to twice what it uses).  For the compiled core,
    whose arena reserves room before it is needed (so tracemalloc saw it
    earlier), the reserved slots the graph filled are added:
    ``bytes = traced_bytes + arena_prefilled_bytes``.
    """
    _require_traced(engine)
    Value, n = engine.Value, size["memory_nodes"]
    arena = _Arena(engine)
    build_graph(Value, 3_000)
    _collect()
    arena.compact()
    started = _trace_start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        before = arena.stats()
        root, nodes = build_graph(Value, n)
        traced = tracemalloc.get_traced_memory()[0] - base
        prefilled = arena.prefilled_bytes(before)
        del root
        _collect()
        arena.compact()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        if started:
            tracemalloc.stop()
    held = traced + prefilled
    return [_record(None, nodes, held / nodes, "bytes/node", bytes=held,
                    traced_bytes=traced, arena_prefilled_bytes=prefilled,
                    bytes_after_free=left)]


def demo_peak_memory(engine, size):
    """Peak traced memory of one demo step (upstream nn.py), above the
    model and data already in memory (plus, for the compiled core, the
    reserved arena slots the step filled, as in memory_per_node)."""
    _require_traced(engine)
    try:
        nn = upstream_nn(engine.Value, engine.name)
    except EngineUnavailable as exc:
        raise Skip(str(exc)) from exc
    Value = engine.Value
    xs, ys, sizes, flat = _demo_setup(size)
    model = nn.MLP(sizes[0], sizes[1:])
    _load_weights(model, flat)
    hinge_step(model, Value, xs, ys, 0)
    arena = _Arena(engine)
    _collect()
    arena.compact()
    started = _trace_start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        before = arena.stats()
        tracemalloc.reset_peak()
        _, _, root = hinge_step(model, Value, xs, ys, 1)
        traced = tracemalloc.get_traced_memory()[1] - base
        prefilled = arena.prefilled_bytes(before)
        nodes = count_nodes(root)
        del root
    finally:
        if started:
            tracemalloc.stop()
    peak = traced + prefilled
    return [_record(None, nodes, peak / 2**20, "MiB peak", peak_bytes=peak,
                    traced_peak_bytes=traced, arena_prefilled_bytes=prefilled,
                    bytes_per_node=peak / nodes if nodes else None)]


# --------------------------------------------------------------------------
# memory of training loops whose Values carry Python state
# --------------------------------------------------------------------------
def _rss_bytes():
    """Resident set size of this process now (Linux /proc), else None."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _labelled_chain_step(Value, w, k):
    """A 30-deep chain of ops, a label on every node, backward (only what
    micrograd 0.1.0 has: no label argument, relu rather than tanh)."""
    h = Value(1.0 + 0.001 * (k % 7))
    h.label = "x"
    for j in range(30):
        h = h * w
        h.label = f"m{j}"
        h = h + 0.1
        h.label = f"a{j}"
        h = h.relu()
        h.label = f"r{j}"
    loss = h * h
    loss.label = "loss"
    loss.backward()
    w.data -= 1e-3 * w.grad
    w.grad = 0.0


def _attributed_chain_step(Value, w, k):
    """The same chain with an instance attribute on every node instead."""
    h = Value(1.0 + 0.001 * (k % 7))
    h.step = k
    for j in range(30):
        h = (h * w + 0.1).relu()
        h.depth = j
        h.meta = {"step": k}
    loss = h * h
    loss.backward()
    w.data -= 1e-3 * w.grad
    w.grad = 0.0


def _custom_tanh(Value, x):
    """tanh as a user-defined op: a Python _backward closure that refers to
    its own output (a reference cycle through the closure)."""
    e = 2.718281828459045 ** (2.0 * x.data)
    t = (e - 1.0) / (e + 1.0)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += (1.0 - t * t) * out.grad

    out._backward = _backward
    return out


def _custom_op_mlp(Value):
    """A 2-8-1 MLP built from Values by hand; its hidden activation is
    _custom_tanh.  Returns (params, step)."""
    rng = random.Random(WEIGHT_SEED)
    w1 = [[Value(rng.uniform(-1, 1)) for _ in range(2)] for _ in range(8)]
    b1 = [Value(0.0) for _ in range(8)]
    w2 = [Value(rng.uniform(-1, 1)) for _ in range(8)]
    b2 = Value(0.0)
    params = [p for row in w1 for p in row] + b1 + w2 + [b2]
    xs, ys = demo_data(4, noise=0.1, seed=DATA_SEED)

    def step(k):
        loss = Value(0.0)
        for (a, b), y in zip(xs, ys):
            hidden = [_custom_tanh(Value, r[0] * a + r[1] * b + c) for r, c in zip(w1, b1)]
            score = b2
            for wi, hi in zip(w2, hidden):
                score = score + wi * hi
            loss = loss + (score - y) ** 2
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad

    return params, step


def _state_memory(engine, size, make_step):
    """Run ``state_steps`` training steps; RSS and arena nodes after the
    ``state_warmup`` first.  headline: RSS growth after warm-up, MiB."""
    _require_scalar(engine)
    step = make_step(engine.Value)
    arena = _Arena(engine)
    steps, warmup = size["state_steps"], size["state_warmup"]
    for k in range(warmup):
        step(k)
    rss0 = _rss_bytes()
    s0 = arena.stats()
    rss_max = rss0
    nodes_max = s0["nodes"] if s0 else None
    t0 = time.perf_counter()
    for k in range(warmup, steps):
        step(k)
        if k % 50 == 0 or k == steps - 1:
            rss = _rss_bytes()
            if rss is not None and rss > rss_max:
                rss_max = rss
            st = arena.stats()
            if st is not None and st["nodes"] > nodes_max:
                nodes_max = st["nodes"]
    elapsed = time.perf_counter() - t0
    s1 = arena.stats()
    growth = None if rss0 is None else (rss_max - rss0) / 2**20
    return [_record(None, None, growth, "MiB growth", steps=steps, warmup=warmup,
                    rss_start_bytes=rss0, rss_max_bytes=rss_max,
                    arena_nodes_start=s0["nodes"] if s0 else None,
                    arena_nodes_max=nodes_max,
                    arena_nodes_end=s1["nodes"] if s1 else None,
                    seconds=elapsed)]


def memory_labels(engine, size):
    """RSS growth over a training loop with a label on every node (after
    warm-up; arena nodes too where there is an arena)."""
    def make(Value):
        w = Value(0.5)
        return lambda k: _labelled_chain_step(Value, w, k)

    return _state_memory(engine, size, make)


def memory_attributes(engine, size):
    """RSS growth over a training loop with instance attributes on every node."""
    def make(Value):
        w = Value(0.5)
        return lambda k: _attributed_chain_step(Value, w, k)

    return _state_memory(engine, size, make)


def memory_custom_op(engine, size):
    """RSS growth over training a hand-built MLP whose activation is a
    Python op with a closure _backward (reference cycles: the collector
    frees each step's graph)."""
    return _state_memory(engine, size, lambda Value: _custom_op_mlp(Value)[1])


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------
WORKLOADS = {
    "op_add": op_add,
    "op_mul": op_mul,
    "build": build,
    "backward": backward,
    "free": free,
    "sum_builtin": sum_builtin,
    "vsum": vsum,
    "deep_chain": deep_chain,
    "demo_notebook": demo_notebook,
    "demo_notebook_native": demo_notebook_native,
    "demo_step": demo_step,
    "demo_step_native": demo_step_native,
    "demo_step_fused": demo_step_fused,
    "gc_share": gc_share,
    "memory_per_node": memory_per_node,
    "demo_peak_memory": demo_peak_memory,
    "memory_labels": memory_labels,
    "memory_attributes": memory_attributes,
    "memory_custom_op": memory_custom_op,
    "scaling": scaling,
    "microgpt_step": microgpt_step,
}

# which engines each workload runs on (others are not even started)
TORCH_WORKLOADS = {"op_add", "op_mul", "demo_notebook", "demo_notebook_native",
                   "demo_step", "demo_step_native", "demo_step_fused"}

def _summary(doc):
    """First sentence of a docstring's first paragraph, on one line."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = para.find(". ")
    return para if end < 0 else para[:end + 1]


DESCRIPTIONS = {name: _summary(fn.__doc__) for name, fn in WORKLOADS.items()}


def applies(workload, engine_name):
    """Whether ``workload`` is meant to run on ``engine_name`` at all."""
    if engine_name == "torch":
        return workload in TORCH_WORKLOADS
    if engine_name == "micrograd" and workload in ("demo_step_native", "demo_step_fused",
                                                   "demo_notebook_native", "vsum",
                                                   "microgpt_step"):
        return False
    return True
