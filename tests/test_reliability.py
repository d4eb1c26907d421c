"""Long runs, threads and huge graphs.

* thousands of training steps keep traced memory flat, both for the
  drop-in style (an upstream-style MLP of plain Value ops) and the native
  one (``mlp`` + ``vsum``), and an old loss kept alive stays correct;
* graphs built and backpropagated in several threads at once give the
  numbers a sequential run gives (the GIL guards the arena);
* 10 million nodes build and backpropagate (only with
  ``MICROGRAD_FAST_SLOW=1``), and running out of memory is a MemoryError,
  not a crash.
"""

import gc
import os
import random
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import micrograd_fast
import pytest

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(micrograd_fast.__file__)))
SLOW = os.environ.get("MICROGRAD_FAST_SLOW", "") not in ("", "0")


# --- a small MLP, two ways -----------------------------------------------------------

def make_params(Value, sizes, seed):
    rng = random.Random(seed)
    layers = []
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        W = [[Value(rng.uniform(-1, 1)) for _ in range(nin)] for _ in range(nout)]
        B = [Value(0.0) for _ in range(nout)]
        layers.append((W, B))
    return layers


def all_params(layers):
    return [p for W, B in layers for row in W for p in row] + [b for _, B in layers for b in B]


def forward_plain(layers, x):
    """Upstream micrograd's way: every neuron is sum(w*x) + b from plain ops."""
    for k, (W, B) in enumerate(layers):
        out = []
        for row, b in zip(W, B):
            act = sum((wi * xi for wi, xi in zip(row, x)), b)
            out.append(act.relu() if k < len(layers) - 1 else act)
        x = out
    return x


def forward_native(engine, layers, x):
    spec = [(W, B, "relu" if k < len(layers) - 1 else "linear") for k, (W, B) in enumerate(layers)]
    return engine.mlp(spec, x)


DATA = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -1.0), ([1.2, 0.1], 1.0), ([-0.7, -0.4], -1.0)]


def train_step(engine, layers, params, native):
    losses = []
    for x, y in DATA:
        out = (forward_native(engine, layers, x) if native else forward_plain(layers, x))[0]
        losses.append((out - y) ** 2)
    loss = engine.vsum(losses) if native else sum(losses)
    loss = loss * (1.0 / len(DATA))
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= 0.05 * p.grad
    return loss


# (warm-up, window, total) steps.  The compiled arena needs a full cycle of
# filling and reclaiming before its arrays reach their steady size (about
# 500 native steps here), so its warm-up spans two; the pure engine is
# slower and has no such cycle.
SCHEDULE = {True: (1000, 500, 4000), False: (50, 75, 300)}


def peak_in_window(engine, layers, params, native, steps):
    tracemalloc.reset_peak()
    for k in range(steps):
        train_step(engine, layers, params, native)
        if not engine.COMPILED and k % 10 == 0:
            gc.collect()  # the pure engine's closures form cycles by design
    return tracemalloc.get_traced_memory()[1]


@pytest.mark.parametrize("native", [False, True], ids=["plain-ops", "native-mlp"])
def test_training_memory_stays_flat(engine, native):
    """Peak traced memory over a late window of steps is no higher than over
    an early one (plus slack).  The compiled arena saw-tooths: it fills up to
    its capacity (at least 65536 nodes) and then reclaims, so the warm-up and
    each window span whole fill-and-reclaim cycles."""
    if native and not hasattr(engine, "mlp"):
        pytest.skip(f"{engine.__name__} has no mlp")
    warmup, window, total = SCHEDULE[engine.COMPILED]
    layers = make_params(engine.Value, [2, 8, 8, 1], seed=1)
    params = all_params(layers)
    gc.collect()
    if engine.COMPILED:
        engine.compact()  # start from an arena fitted to what is live, whatever ran before
    tracemalloc.start()
    try:
        peak_in_window(engine, layers, params, native, warmup)
        early = peak_in_window(engine, layers, params, native, window)
        peak_in_window(engine, layers, params, native, total - warmup - 2 * window)
        late = peak_in_window(engine, layers, params, native, window)
    finally:
        tracemalloc.stop()
    assert late <= early * 1.10 + 200_000, (early, late)
    final = train_step(engine, layers, params, native)
    assert final.data < 1.0  # it learned something, too


def test_a_kept_loss_stays_correct_across_thousands_of_steps(engine):
    Value = engine.Value
    a, b = Value(0.7), Value(-1.3)
    old = (a * b + a.tanh()) ** 2
    old.backward()
    snapshot = (old.data, old.grad, a.grad, b.grad)
    layers = make_params(Value, [2, 8, 1], seed=2)
    params = all_params(layers)
    for _ in range(1500):  # the arena fills and reclaims many times meanwhile
        train_step(engine, layers, params, native=False)
    if engine.COMPILED:
        assert engine.arena_stats()["compactions"] > 0
        assert engine._check_invariants()
    assert (old.data, old.grad, a.grad, b.grad) == snapshot
    old.backward()  # accumulates once more, as a second backward would
    a2, b2 = Value(0.7), Value(-1.3)
    ref = (a2 * b2 + a2.tanh()) ** 2
    ref.backward()
    ref.backward()
    assert (a.grad, b.grad) == (a2.grad, b2.grad)


# --- threads -------------------------------------------------------------------------

def build_and_backprop(Value, seed):
    """A random-ish graph from a seed; returns its numbers."""
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(-2, 2)) for _ in range(6)]
    nodes = list(leaves)
    for _ in range(60):
        a, b = rng.choice(nodes), rng.choice(nodes)
        k = rng.randrange(6)
        if k == 0:
            nodes.append(a + b)
        elif k == 1:
            nodes.append(a * b)
        elif k == 2:
            nodes.append(a.tanh())
        elif k == 3:
            nodes.append(a.relu() - b)
        elif k == 4:
            nodes.append(a * 0.5 + 1.0)
        else:
            nodes.append((a.sigmoid() + b.tanh()) * 0.7)
    loss = nodes[-1] + nodes[-2] * nodes[-3]
    loss.backward()
    # repr, so that a NaN compares equal to itself
    return repr((loss.data,) + tuple(v.grad for v in leaves))


GRAPHS = 400
THREADS = 8


def test_threads_give_the_sequential_results(engine):
    Value = engine.Value
    expected = {s: build_and_backprop(Value, s) for s in range(GRAPHS)}
    results = {}
    errors = []
    barrier = threading.Barrier(THREADS)

    def worker(tid):
        try:
            barrier.wait()
            for s in range(tid, GRAPHS, THREADS):
                results[s] = build_and_backprop(Value, s)
                if s % 50 == 0 and engine.COMPILED:
                    engine.compact()  # reclamation while other threads build
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert results == expected
    if engine.COMPILED:
        assert engine._check_invariants()


def test_free_threading_marker(engine):
    """The compiled core declares itself not free-threading compatible, so a
    free-threaded interpreter turns the GIL back on when it is imported."""
    if not engine.COMPILED:
        pytest.skip("compiled core only")
    if hasattr(sys, "_is_gil_enabled"):
        assert sys._is_gil_enabled()
    src = os.path.join(os.path.dirname(engine.__file__), "_engine.pyx")
    if os.path.exists(src):
        with open(src) as f:
            assert f.readline().strip() == "# cython: freethreading_compatible = False"


# --- huge graphs and running out of memory --------------------------------------------

HUGE_SCRIPT = """
    import resource, sys, time
    import importlib
    E = importlib.import_module("micrograd_fast._engine")
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    x = E.Value(1.0)
    one = E.Value(1.0)
    w = E.Value(0.999999)
    for _ in range(n // 2):
        x = x * w + one  # two nodes a step, plus no leaves
    t1 = time.perf_counter()
    x.backward()
    t2 = time.perf_counter()
    s = E.arena_stats()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(s["nodes"], s["node_bytes"], s["bytes"], rss, f"{t1 - t0:.2f}", f"{t2 - t1:.2f}",
          repr(x.data), repr(one.grad), repr(w.grad > 0))
"""


def run_script(script, *args, env_extra=None, timeout=900):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not SLOW, reason="set MICROGRAD_FAST_SLOW=1 to run")
def test_ten_million_nodes(engine):
    if not engine.COMPILED:
        pytest.skip("compiled core only")
    n = 10_000_000
    r = run_script(HUGE_SCRIPT, n)
    assert r.returncode == 0, r.stderr[-2000:]
    nodes, node_bytes, arena_bytes, rss, build_s, backward_s, data, one_grad, w_pos = (
        r.stdout.split())
    print(f"\n10M nodes: {nodes} nodes, {node_bytes} B/node, arena {int(arena_bytes) / 2**20:.0f} MiB,"
          f" max RSS {int(rss) / 2**20:.0f} MiB, build {build_s} s, backward {backward_s} s")
    assert int(nodes) >= n
    assert int(rss) < 8 * 2**30
    assert float(one_grad) > 1.0 and w_pos == "True"


OOM_SCRIPT = """
    import resource, sys
    limit = int(sys.argv[1])
    import importlib
    E = importlib.import_module("micrograd_fast._engine")
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    x = E.Value(1.0)
    try:
        while True:  # grows the arena until an allocation fails
            x = x + 1.0
    except MemoryError as exc:
        print("MemoryError", E.arena_stats()["nodes"] > 1_000_000)
    x = None
    E.compact()
    a = E.Value(3.0)
    (a * a).backward()
    print("after", a.grad, E._check_invariants())
"""


def test_running_out_of_memory_is_a_memory_error(engine):
    if not engine.COMPILED:
        pytest.skip("compiled core only: the arena's growth")
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS as a memory cap is Linux behaviour")
    if os.environ.get("LD_PRELOAD"):
        pytest.skip("a sanitizer runtime reserves address space; RLIMIT_AS would break it")
    # the interpreter, numpy-free import and a few hundred MB of arena
    r = run_script(OOM_SCRIPT, 600 * 2**20, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
    lines = r.stdout.split("\n")
    assert lines[0] == "MemoryError True", r.stdout
    assert lines[1] == "after 6.0 True", r.stdout
