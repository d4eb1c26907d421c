"""Very deep graphs, and memory over many rebuilt graphs."""

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc
import weakref

import micrograd_fast
import pytest

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))

# a chain this long would blow any recursive topological sort
COMPILED_CHAIN = 2_000_000
PURE_CHAIN = 20_000  # still far deeper than the recursion limit


def chain_length(engine):
    return COMPILED_CHAIN if engine.COMPILED else PURE_CHAIN


DEEP_CHAIN_SCRIPT = """
    import gc, importlib, sys
    Value = importlib.import_module(sys.argv[1]).Value
    n = int(sys.argv[2])
    assert n > 10 * sys.getrecursionlimit()

    x0 = Value(0.0)
    one = Value(1.0)  # shared, so it collects one contribution per link
    x = x0
    for _ in range(n):
        x = x + one
    x.backward()
    print(x.data, x.grad, x0.grad, one.grad)

    # a chain of products and tanh, too
    w = Value(0.5)
    y = Value(0.25)
    for _ in range(n // 2):
        y = (y * w).tanh() + 0.25
    y.backward()
    print(y.data > 0, w.grad > 0)

    # dropping such a chain must not recurse either
    del x, y
    gc.collect()
    z = Value(2.0)
    (z * z).backward()
    print(z.grad)
"""


def test_deep_chain_backward(engine):
    n = chain_length(engine)
    assert n > 1000
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEEP_CHAIN_SCRIPT),
         engine.__name__, str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # a crash (e.g. a C stack overflow) shows up as a negative return code
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    lines = r.stdout.split("\n")
    assert lines[0].split() == [repr(float(n)), "1.0", "1.0", repr(float(n))]
    assert lines[1].split() == ["True", "True"]
    assert lines[2] == "4.0"


def test_chain_deeper_than_the_recursion_limit_in_process(Value):
    n = 3 * sys.getrecursionlimit()
    x0 = Value(1.0)
    x = x0
    for _ in range(n):
        x = x * 1.0
    x.backward()
    assert x.data == 1.0
    assert x0.grad == 1.0


# --- memory -------------------------------------------------------------------

N_PARAMS = 14


def make_params(Value):
    return [Value(0.1 * (k - N_PARAMS / 2)) for k in range(N_PARAMS)]


def training_step(Value, params, k):
    """Build a ~100-node graph from persistent params, backprop, update."""
    loss = Value(0.0)
    for i, p in enumerate(params):
        loss = loss + ((p * (0.3 + 0.01 * ((i + k) % 7)) + 0.5).tanh()) ** 2
    loss.backward()
    for p in params:
        p.data -= 0.01 * p.grad
        p.grad = 0.0
    return loss.data


STEPS = 3000
FIRST_SAMPLE = 500
GROWTH_LIMIT = 100_000  # bytes; a leak of one pointer per node is ~2 MB here


def traced_growth(Value, collect_before_sampling):
    params = make_params(Value)
    samples = {}
    tracemalloc.start()
    try:
        for k in range(STEPS + 1):
            training_step(Value, params, k)
            if k in (FIRST_SAMPLE, STEPS):
                if collect_before_sampling:
                    gc.collect()
                samples[k] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    for p in params:  # the training did something sensible
        assert abs(p.data) < 10.0
    return samples[STEPS] - samples[FIRST_SAMPLE]


def test_memory_is_flat_over_rebuilt_graphs(Value):
    growth = traced_growth(Value, collect_before_sampling=True)
    assert growth < GROWTH_LIMIT, f"traced memory grew by {growth} bytes"


def test_compiled_core_needs_no_cyclic_gc(engine):
    if not engine.COMPILED:
        pytest.skip("the pure engine's closures form cycles by design")
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        growth = traced_growth(engine.Value, collect_before_sampling=False)
    finally:
        if was_enabled:
            gc.enable()
    assert growth < GROWTH_LIMIT, f"traced memory grew by {growth} bytes"


def build_kept_graph(Value):
    a, b = Value(0.8), Value(-1.1)
    loss = ((a * b).tanh() + a**2 - b / a + (a + b).relu()).exp()
    return a, b, loss


def test_an_old_loss_kept_alive_stays_correct(Value):
    a, b, loss = build_kept_graph(Value)
    loss.backward()
    data, ga, gb = loss.data, a.grad, b.grad

    params = make_params(Value)
    for k in range(1500):
        training_step(Value, params, k)
    gc.collect()

    assert loss.data == data
    assert loss.grad == 1.0
    assert (a.grad, b.grad) == (ga, gb)
    loss.backward()

    # the same as backward twice in a row on a fresh copy
    a2, b2, loss2 = build_kept_graph(Value)
    loss2.backward()
    loss2.backward()
    assert loss2.data == loss.data
    assert (a.grad, b.grad) == (a2.grad, b2.grad)
    assert a.grad != ga


def test_leaves_outlive_their_graphs(Value):
    params = make_params(Value)
    first = [p.data for p in params]
    for k in range(200):
        training_step(Value, params, k)
    gc.collect()
    assert [p.data for p in params] != first
    assert all(p.grad == 0.0 for p in params)
    assert all(type(p.data) is float for p in params)


class Payload:
    """Something a user hangs on a node; weakref-able so we can watch it."""


def test_attributes_of_a_dropped_graph_are_released(engine):
    """Python state on an inner node lives as long as its graph.  The
    compiled core keeps it until its next reclamation pass (which runs by
    itself when the arena fills; compact() runs one now)."""
    Value = engine.Value
    p = Value(1.0)

    def build():
        t = p * 2.0
        t.label = "t"
        t.payload = Payload()
        return weakref.ref(t.payload), t + 1.0

    ref, out = build()
    gc.collect()
    assert ref() is not None  # alive while its graph is
    out.backward()
    del out
    if engine.COMPILED:
        engine.compact()
    gc.collect()
    assert ref() is None
