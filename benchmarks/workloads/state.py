"""Memory over training loops whose Values carry Python state: labels,
instance attributes, a custom op with a closure ``_backward``."""

import os
import random
import time

from benchmarks.moons import demo_data
from benchmarks.workloads.memory import Arena
from benchmarks.workloads.registry import NO_TENSOR_FORM, record, workload
from benchmarks.workloads.sizes import DATA_SEED, WEIGHT_SEED


def _rss_bytes():
    """Resident set size of this process now (Linux /proc), else None."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
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
    step = make_step(engine.Value)
    arena = Arena(engine)
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
    return [record(None, None, growth, steps=steps, warmup=warmup,
                   rss_start_bytes=rss0, rss_max_bytes=rss_max,
                   arena_nodes_start=s0["nodes"] if s0 else None,
                   arena_nodes_max=nodes_max,
                   arena_nodes_end=s1["nodes"] if s1 else None,
                   seconds=elapsed)]


def _chain_memory(engine, size, chain_step):
    """_state_memory of ``chain_step(Value, w, k)`` on one weight ``w``."""
    def make(Value):
        w = Value(0.5)
        return lambda k: chain_step(Value, w, k)

    return _state_memory(engine, size, make)


@workload("MiB growth", "RSS growth in training, labels on every node", excluded=NO_TENSOR_FORM)
def memory_labels(engine, size):
    """RSS growth over a training loop with a label on every node (after
    warm-up; arena nodes too where there is an arena)."""
    return _chain_memory(engine, size, _labelled_chain_step)


@workload("MiB growth", "RSS growth in training, attributes on every node", excluded=NO_TENSOR_FORM)
def memory_attributes(engine, size):
    """RSS growth over a training loop with instance attributes on every node."""
    return _chain_memory(engine, size, _attributed_chain_step)


@workload("MiB growth", "RSS growth in training, custom-op MLP", excluded=NO_TENSOR_FORM)
def memory_custom_op(engine, size):
    """RSS growth over training a hand-built MLP whose activation is a
    Python op with a closure _backward (reference cycles: the collector
    frees each step's graph)."""
    return _state_memory(engine, size, lambda Value: _custom_op_mlp(Value)[1])
