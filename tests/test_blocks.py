"""Layer blocks: nn's batch call (``model(X)``) and ``linear`` build one block
per layer, and must give the outputs and every gradient (parameters and
Value inputs) of the same model called row by row, bit for bit, on both
engines, with the default graph and with ``fused=True``.  See
csrc/mgf_block.h for the order each sum is taken in."""

import gc
import math
import random
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import micrograd_fast
from micrograd_fast import _engine_py, datasets, nn, optim


def bits(xs):
    return [struct.pack("<d", x) for x in xs]


def _engines():
    engines = [_engine_py]
    if not micrograd_fast.engine.NO_EXTENSIONS:
        from micrograd_fast import _engine

        engines.insert(0, _engine)
    return engines


# -- the losses people write -----------------------------------------------------------------

def _rows(outs):
    return [o if isinstance(o, list) else [o] for o in outs]


def loss_sum(E, outs, params):
    return sum(o.tanh() for row in _rows(outs) for o in row)


def loss_mean_l2(E, outs, params):
    terms = [o * o for row in _rows(outs) for o in row]
    return sum(terms) * (1.0 / len(terms)) + 1e-4 * sum(p * p for p in params)


def loss_hinge(E, outs, params):
    rows = _rows(outs)
    ys = [1.0 if k % 3 else -1.0 for k in range(len(rows))]
    data = E.vsum([(1 + -y * row[0]).relu() for y, row in zip(ys, rows)])
    return data * (1.0 / len(rows)) + 1e-4 * sum(p * p for p in params)


def loss_cross_entropy(E, outs, params):
    """Softmax cross-entropy, the row's largest logit subtracted as a number
    (so that exp cannot overflow, whatever the random network gives)."""
    total = []
    for k, row in enumerate(_rows(outs)):
        top = max(o.data for o in row)
        exps = [(o - top).exp() for o in row]
        total.append(E.vsum(exps).log() + (top - row[k % len(row)]))
    return E.vsum(total) * (1.0 / len(total))


LOSSES = [loss_sum, loss_mean_l2, loss_hinge, loss_cross_entropy]


def run(E, nin, nouts, act, fused, X, batch, loss, seed=0, value_inputs=False):
    """Outputs' data, parameter grads and input grads of one step."""
    random.seed(seed)
    model = nn.MLP(nin, nouts, act=act, fused=fused, engine=E)
    if value_inputs:
        X = [[E.Value(float(v)) for v in row] for row in X]
    outs = model(X) if batch else [model(list(row)) for row in X]
    L = loss(E, outs, model.parameters())
    L.backward()
    xg = [v.grad for row in X for v in row] if value_inputs else []
    return (bits([o.data for row in _rows(outs) for o in row] + [L.data]),
            bits([p.grad for p in model.parameters()]), bits(xg))


shapes = st.tuples(
    st.integers(1, 70),                                  # nin
    st.lists(st.integers(1, 70), min_size=1, max_size=4),  # layer sizes
    st.integers(1, 300),                                 # batch
)


@pytest.mark.compiled_core
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(shape=shapes, act=st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "linear"]),
       fused=st.booleans(), loss=st.sampled_from(LOSSES), seed=st.integers(0, 2**16),
       value_inputs=st.booleans())
def test_batch_is_row_by_row_bit_for_bit_compiled(shape, act, fused, loss, seed, value_inputs):
    """Random shapes (1..70 wide, 1..4 layers, batches 1..300)."""
    E = _engines()[0]
    nin, nouts, N = shape
    if loss is loss_hinge:
        nouts = nouts[:-1] + [1]
    X = np.random.default_rng(seed).standard_normal((N, nin))
    batch = run(E, nin, nouts, act, fused, X, True, loss, seed, value_inputs)
    rows = run(E, nin, nouts, act, fused, X, False, loss, seed, value_inputs)
    assert batch == rows


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(nin=st.integers(1, 9), nouts=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       N=st.integers(1, 12), act=st.sampled_from(["relu", "tanh", "sigmoid", "gelu", "linear"]),
       fused=st.booleans(), loss=st.sampled_from(LOSSES), seed=st.integers(0, 2**16),
       value_inputs=st.booleans())
def test_batch_is_row_by_row_on_both_engines(nin, nouts, N, act, fused, loss, seed,
                                              value_inputs):
    """Small shapes: both engines, batch and row by row, all the same bits."""
    if loss is loss_hinge:
        nouts = nouts[:-1] + [1]
    X = np.random.default_rng(seed).standard_normal((N, nin))
    results = [run(E, nin, nouts, act, fused, X, batch, loss, seed, value_inputs)
               for E in _engines() for batch in (True, False)]
    assert all(r == results[0] for r in results)


@pytest.mark.compiled_core
def test_every_kernel_variant_gives_the_same_doubles():
    from micrograd_fast import _engine

    best = _engine._block_isa()
    levels = {_engine._block_isa(k) for k in range(4)}
    X = np.random.default_rng(3).standard_normal((37, 29))
    try:
        results = []
        for name in sorted(levels):
            _engine._block_isa(["scalar", "baseline", "avx2", "avx512"].index(name))
            results.append(run(_engine, 29, [33, 17, 3], "tanh", False, X, True,
                               loss_cross_entropy, 5, True))
        assert len(results) >= 2 and all(r == results[0] for r in results)
    finally:
        _engine._block_isa(["scalar", "baseline", "avx2", "avx512"].index(best))


def test_graph_of_a_block(engine):
    random.seed(1)
    model = nn.MLP(2, [3, 1], engine=engine)
    outs = model(np.array([[0.5, -1.0], [2.0, 0.25]]))
    assert len(outs) == 2 and all(isinstance(o, engine.Value) for o in outs)
    o = outs[1]
    assert o._op == "layer_linear"
    kids = o._children
    w = model.layers[1].neurons[0].w
    assert kids[:3] == tuple(w) and kids[-1] is model.layers[1].neurons[0].b
    hidden = kids[3:6]
    assert all(h._op == "layer_relu" for h in hidden)
    assert [k.data for k in hidden[0]._children[2:4]] == [2.0, 0.25]
    assert o._prev == set(kids)
    # its local gradients are a fused neuron's: x_i, w_i, 1 (linear)
    assert o._local_grads == tuple([h.data for h in hidden] + [v.data for v in w] + [1.0])


def test_draw_dot_of_a_batch(engine):
    pytest.importorskip("graphviz")
    from micrograd_fast import viz

    random.seed(1)
    model = nn.MLP(2, [3, 1], engine=engine)
    loss = sum(model([[0.5, -1.0], [2.0, 0.25]]))
    dot = viz.draw_dot(loss)
    assert "layer_relu" in dot.source and "layer_linear" in dot.source


def test_by_hand_backward_of_an_output_is_a_fused_neurons(engine):
    random.seed(2)
    layer = nn.Layer(2, 1, act="tanh", engine=engine)
    x = [engine.Value(0.3), engine.Value(-0.8)]
    out = layer([x])[0]
    out.grad = 1.0
    out._backward()
    neuron = layer.neurons[0]
    s = 1 - out.data ** 2
    assert [w.grad for w in neuron.w] == [0.0 + 0.3 * s, 0.0 + -0.8 * s]
    assert [v.grad for v in x] == [0.0 + neuron.w[0].data * s, 0.0 + neuron.w[1].data * s]
    assert neuron.b.grad == s


def test_outputs_reached_in_part(engine):
    """A loss over some outputs only: the same as row by row."""
    X = np.random.default_rng(0).standard_normal((9, 4))

    def part(E, outs, params):
        return sum(row[1] * row[0] for row in _rows(outs)[::2])

    a = run(engine, 4, [5, 3], "relu", False, X, True, part)
    b = run(engine, 4, [5, 3], "relu", False, X, False, part)
    assert a == b


def test_reclamation_between_forward_and_backward(engine):
    """Nodes move (a compaction) while a block waits for backward."""
    compact = getattr(engine, "compact", None)
    X = np.random.default_rng(4).standard_normal((20, 6))
    expected = run(engine, 6, [7, 2], "tanh", True, X, False, loss_mean_l2)
    random.seed(0)
    model = nn.MLP(6, [7, 2], act="tanh", fused=True, engine=engine)
    junk = [engine.Value(1.0) * 2 for _ in range(1000)]
    outs = model(X)
    del junk
    gc.collect()
    if compact is not None:
        compact()
    L = loss_mean_l2(engine, outs, model.parameters())
    if compact is not None:
        compact()
    L.backward()
    got = (bits([o.data for row in _rows(outs) for o in row] + [L.data]),
           bits([p.grad for p in model.parameters()]), bits([]))
    assert got == expected


def test_a_node_twice_builds_row_by_row(engine):
    """The same input Value in two rows, or a parameter as an input: the
    rows are built one by one (the same numbers by definition)."""
    random.seed(5)
    model = nn.MLP(2, [3, 1], engine=engine)
    x = engine.Value(0.5)
    w = model.parameters()[0]
    for rows in ([[x, 1.0], [x, -2.0]], [[w, 1.0], [0.5, 0.25]]):
        outs = model(rows)
        assert outs[0]._op == "+"  # micrograd's graph, row by row
        loss = sum(outs)
        loss.backward()


def test_a_parameter_in_two_places_of_one_row_is_not_the_rows_order(engine):
    """The limit of the promise: a model applied to its own outputs uses
    each parameter twice in every row.  Row by row, backward alternates
    between the two uses row after row; the batch call finishes the second
    call's block before the first's.  The sums then take their terms in
    another order, so the last bits may differ (docs/nn.md says so)."""
    random.seed(11)
    model = nn.MLP(3, [3], act="tanh", engine=engine)
    X = np.random.default_rng(11).standard_normal((40, 3))
    params = model.parameters()
    batch = model(model(X))
    sum(o * o for row in batch for o in row).backward()
    g_batch = [p.grad for p in params]
    model.zero_grad()
    rows = [model(model(list(x))) for x in X]
    sum(o * o for row in rows for o in row).backward()
    g_rows = [p.grad for p in params]
    assert all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) for a, b in zip(g_batch, g_rows))
    assert g_batch != g_rows  # this seed shows the difference


def test_linear_is_microgpts_sum(engine):
    random.seed(7)
    V = engine.Value
    for nin, nout in ((1, 1), (5, 3), (17, 9)):
        w = [[V(random.gauss(0, 1)) for _ in range(nin)] for _ in range(nout)]
        x1 = [V(random.gauss(0, 1)) for _ in range(nin)]
        x2 = [V(v.data) for v in x1]
        a = micrograd_fast.linear(x1, w) if engine is micrograd_fast.engine else engine.linear(
            x1, w)
        sum(o * o for o in a).backward()
        ga = [p.grad for row in w for p in row]
        for row in w:
            for p in row:
                p.grad = 0.0
        b = [sum(wi * xi for wi, xi in zip(row, x2)) for row in w]
        sum(o * o for o in b).backward()
        assert bits([o.data for o in a]) == bits([o.data for o in b])
        assert bits(ga) == bits([p.grad for row in w for p in row])
        assert bits([v.grad for v in x1]) == bits([v.grad for v in x2])
        assert a[0]._op == "layer_linear"


def test_linear_errors(engine):
    V = engine.Value
    with pytest.raises(ValueError, match="row 0 has 1 weights, expected 2"):
        engine.linear([V(1.0), V(2.0)], [[V(1.0)]])
    with pytest.raises(TypeError, match="a weight must be a Value"):
        engine.linear([V(1.0)], [[1.0]])
    with pytest.raises(TypeError):
        engine.linear(["a"], [[V(1.0)]])


def test_batch_errors(engine):
    model = nn.MLP(3, [2], engine=engine)
    with pytest.raises(ValueError, match="rows of 3 inputs, got 2"):
        model([[1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="rows of 3 inputs, got 2"):
        model(np.zeros((4, 2)))
    with pytest.raises(TypeError):
        model([[1.0, 2.0, "x"]])
    assert model(np.zeros((0, 3))) == []
    assert len(model(np.zeros((2, 3), dtype=np.int64))) == 2


def test_gradient_graphs_refuse_a_block_by_name(engine):
    random.seed(3)
    model = nn.MLP(2, [2, 1], engine=engine)
    loss = sum(model([[1.0, 2.0], [0.5, -1.0]]))
    with pytest.raises(RuntimeError, match="_op 'layer_"):
        engine.grad([loss], model.parameters(), create_graph=True)
    # without a graph of the gradients, grad() is backward()'s sweep
    g = engine.grad([loss], model.parameters())
    loss.backward()
    assert bits([v.data for v in g]) == bits([p.grad for p in model.parameters()])


@pytest.mark.parametrize("fused", [False, True])
def test_training_by_replay_is_the_rebuilding_loop(engine, fused):
    """A batch-call graph built once and replayed (recompute) for 30 SGD
    steps: the same doubles as building it again every step; outputs of a
    block outside the replayed graph keep their numbers."""
    X = np.random.default_rng(8).standard_normal((23, 5))
    ys = [1.0 if k % 2 else -1.0 for k in range(23)]

    def loss_of(E, outs, params):
        return E.vsum([(1 + -y * o).relu() for y, o in zip(ys, outs[:20])]) * 0.05

    results = []
    for replay in (False, True):
        random.seed(9)
        model = nn.MLP(5, [7, 6, 1], act="tanh", fused=fused, engine=engine)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5, weight_decay=1e-3)
        trace = []
        outs = model(X)
        loss = loss_of(engine, outs, model.parameters())
        kept = outs[21].data
        for step in range(30):
            if step and replay:
                loss.recompute()
            elif step:
                outs = model(X)
                loss = loss_of(engine, outs, model.parameters())
            opt.zero_grad()
            loss.backward()
            opt.step()
            trace.append(loss.data)
        if replay:
            assert outs[21].data == kept  # not in the replayed graph
        results.append(bits(trace + [p.data for p in model.parameters()]))
    assert results[0] == results[1]


def test_training_loop_memory_stays_flat(engine):
    """2000 steps of a batch-call training loop (compiled) or 200 (pure):
    the arena's node count and traced memory do not grow."""
    import tracemalloc

    steps = 2000 if engine.COMPILED else 200
    random.seed(0)
    model = nn.MLP(2, [8, 8, 1], engine=engine)
    X, y = datasets.make_moons(20, noise=0.1, random_state=0)
    y = y * 2 - 1
    opt = optim.SGD(model.parameters(), lr=0.05)
    stats = getattr(engine, "arena_stats", None)

    def step():
        outs = model(X)
        loss = engine.vsum([(1 + -yi * o).relu() for yi, o in zip(y, outs)])
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(steps // 4):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    nodes = stats()["capacity"] if stats else None
    for _ in range(steps - steps // 4):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 2_000_000
    if stats:
        assert stats()["capacity"] <= nodes


def test_batches_of_every_form_agree(engine):
    """A float64 array, an int array, an object array of Values, a list of
    lists, a list of 1-D arrays: the same outputs."""
    random.seed(12)
    model = nn.MLP(3, [4, 2], engine=engine)
    rows = [[1, 2, 3], [0, -1, 5]]
    forms = [np.array(rows, dtype=np.float64), np.array(rows), rows,
             [np.array(r, dtype=np.float64) for r in rows], [tuple(r) for r in rows],
             np.array([[engine.Value(v) for v in r] for r in rows], dtype=object)]
    results = [[o.data for row in model(X) for o in row] for X in forms]
    assert all(r == results[0] for r in results)
