"""grad(): gradients as Values, and gradients of gradients (create_graph=True).

Both engines give the same doubles; backward() is the oracle for the first
derivatives (bit for bit) and PyTorch's autograd.grad(create_graph=True) for
higher ones (relative 1e-9)."""

import gc
import math
import random
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import micrograd_fast
from micrograd_fast import _engine_py, nn

TORCH = "torch is not installed (pip install torch)"


def bits(x):
    return struct.pack("<d", x)


def _checked(engine):
    return engine._check_invariants() if engine.COMPILED else True


# -- the call -------------------------------------------------------------------------------------


def test_grad_is_the_selected_engine_s():
    assert micrograd_fast.grad is micrograd_fast.engine.grad
    assert "grad" in micrograd_fast.__all__


def test_first_derivatives_are_backward_s_numbers_and_touch_no_grad(engine):
    Value = engine.Value
    x, y, unused = Value(1.5), Value(-0.7), Value(3.0)
    f = (x * y).tanh() + x ** 3 + (x * 2.0).exp() * y + (x + 1.0).log() + x ** y.exp()
    for v in (x, y, f, unused):
        v.grad = 0.25  # left as they are
    for create_graph in (False, True):
        gx, gy, gu = engine.grad(f, [x, y, unused], create_graph=create_graph)
        assert (x.grad, y.grad, f.grad, unused.grad) == (0.25, 0.25, 0.25, 0.25)
        assert type(gx) is Value and gu.data == 0.0 and gu._prev == set()
        numbers = (gx.data, gy.data)
    for v in (x, y, f):
        v.grad = 0.0
    f.backward()
    assert numbers == (x.grad, y.grad)
    assert _checked(engine)


def test_grad_outputs_and_several_outputs(engine):
    Value = engine.Value
    x, y = Value(2.0), Value(3.0)
    a, b = x * y, x + y
    assert [g.data for g in engine.grad([a, b], [x, y])] == [4.0, 3.0]
    assert [g.data for g in engine.grad([a, b], [x, y], [2.0, -1.0])] == [5.0, 3.0]
    assert [g.data for g in engine.grad(a, [x], 0.5)] == [1.5]
    # an output below another: its seed and what it gets from above add up
    c = a * 2.0
    assert [g.data for g in engine.grad([c, a], [x])] == [9.0]
    # a Value seed: the gradient depends on it
    v = Value(4.0)
    (gx,) = engine.grad(a, [x], v, create_graph=True)
    (dv,) = engine.grad(gx, [v])
    assert gx.data == 12.0 and dv.data == 3.0
    # a single Value for inputs, and the same output twice
    assert [g.data for g in engine.grad([a, a], x)] == [6.0]


def test_bad_arguments(engine):
    Value = engine.Value
    x = Value(1.0)
    with pytest.raises(TypeError, match="must be a Value"):
        engine.grad(x * 2.0, [1.0])
    with pytest.raises(TypeError, match="must be a Value"):
        engine.grad([1.0], [x])
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        engine.grad(x * 2.0, [x], [1.0, 2.0])
    with pytest.raises(TypeError):
        engine.grad(x * 2.0, [x], ["a"])
    with pytest.raises(RuntimeError, match="never initialized"):
        engine.grad(Value.__new__(Value), [x])


def test_python_rules_work_without_create_graph_and_are_refused_with_it(engine):
    """A custom op (a Python _backward) and microgpt's fixed local gradients
    have no derivative of their rule: with create_graph=True the graph is
    refused with a message naming the node's _op; without it they run as in
    backward()."""
    Value = engine.Value
    x = Value(2.0)
    sq = Value(x.data ** 2, (x,), "square")

    def rule():
        x.grad += 2.0 * x.data * sq.grad

    sq._backward = rule
    f = sq * 3.0
    assert [g.data for g in engine.grad(f, [x])] == [12.0]
    assert x.grad == 0.0
    with pytest.raises(RuntimeError, match=r"_op 'square': its rule is a Python _backward"):
        engine.grad(f, [x], create_graph=True)
    local = Value(5.0, (x,), (7.0,))
    assert [g.data for g in engine.grad(local * 1.0, [x])] == [7.0]
    with pytest.raises(RuntimeError, match=r"_op '': its local gradients are fixed"):
        engine.grad(local * 1.0, [x], create_graph=True)
    with pytest.raises(RuntimeError, match=r"_op 'gelu': its rule is not written as nodes"):
        engine.grad(x.gelu(), [x], create_graph=True)
    # nothing was made: the next call still works
    (g,) = engine.grad(x * x, [x], create_graph=True)
    assert g.data == 4.0 and _checked(engine)


def test_the_refusal_is_the_same_on_both_engines():
    C = pytest.importorskip("micrograd_fast._engine")
    messages = []
    for E in (C, _engine_py):
        x = E.Value(1.0)
        y = E.Value(0.5, (x,), "mine")
        y._backward = lambda: None
        with pytest.raises(RuntimeError) as info:
            E.grad((y * x).tanh(), [x], create_graph=True)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# -- higher derivatives ---------------------------------------------------------------------------


def test_third_derivative_of_x_to_the_fourth(engine):
    x = engine.Value(2.0)
    d1, = engine.grad(x ** 4, [x], create_graph=True)
    d2, = engine.grad(d1, [x], create_graph=True)
    d3, = engine.grad(d2, [x], create_graph=True)
    d4, = engine.grad(d3, [x])
    assert (d1.data, d2.data, d3.data, d4.data) == (32.0, 48.0, 48.0, 24.0)
    d3.backward()  # backward() from a gradient graph: the fourth derivative
    assert x.grad == 24.0


def test_a_gradient_graph_is_an_ordinary_graph(engine):
    x = engine.Value(0.5, label="x")
    y = (x * x).tanh()
    g, = engine.grad(y, [x], create_graph=True)
    ops = {v._op for v in _walk(g)}
    assert {"*", "+", "tanh", "**2.0"} <= ops
    assert any(v.label == "x" for v in _walk(g))  # the original x, label and all


def _walk(root):
    stack, seen = [root], {}
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen[id(v)] = v
            stack.extend(v._prev)
    return list(seen.values())


@pytest.mark.parametrize("depth", [200_000])
def test_a_deep_chain(compiled_engine, depth):
    """No recursion: second derivatives through a 200,000-deep chain."""
    Value = compiled_engine.Value
    x = Value(0.3)
    y = x
    for i in range(depth):
        y = y * 0.99999 + 0.001 if i % 2 else (y * 1.00001).tanh()
    g, = compiled_engine.grad(y, [x], create_graph=True)
    h, = compiled_engine.grad(g, [x])
    y.backward()
    assert g.data == x.grad and math.isfinite(h.data)


def test_a_deep_chain_on_the_pure_engine(pure_engine):
    Value = pure_engine.Value
    x = Value(0.3)
    y = x
    for i in range(5000):
        y = y * 0.99999 + 0.001 if i % 2 else (y * 1.00001).tanh()
    g, = pure_engine.grad(y, [x], create_graph=True)
    h, = pure_engine.grad(g, [x])
    assert math.isfinite(g.data) and math.isfinite(h.data)


def test_a_loop_of_gradient_graphs_stays_flat(compiled_engine):
    """grad(create_graph=True) over one loss, again and again, nothing kept:
    its room is had by reclaiming, so the arena keeps its size."""
    Value = compiled_engine.Value
    w = [Value(0.1 * k) for k in range(10)]
    loss = sum((wi * wi).tanh() for wi in w)
    gc.collect()
    before = compiled_engine.compact()
    for _ in range(3000):
        gs = compiled_engine.grad(loss, w, create_graph=True)
        hv = compiled_engine.grad(gs, w, [1.0] * len(w))
    after = compiled_engine.arena_stats()
    assert len(hv) == 10 and after["compactions"] > before["compactions"]
    assert after["capacity"] == before["capacity"]
    del gs, hv
    assert compiled_engine.compact()["nodes"] == before["nodes"]


# -- against PyTorch ------------------------------------------------------------------------------

UNARY = ["neg", "relu", "tanh", "exp", "log", "sigmoid", "square", "cube", "inv", "sqrt"]
BINARY = ["add", "mul", "sub", "div", "powv"]


def _apply(lib, op, a, b=None, eng=None):
    """One op on Values (lib None) or on torch tensors (lib = torch)."""
    if op == "neg":
        return -a
    if op in ("relu", "tanh", "exp", "log", "sigmoid"):
        return getattr(lib, op)(a) if lib is not None else getattr(a, op)()
    if op == "square":
        return a ** 2
    if op == "cube":
        return a ** 3
    if op == "inv":
        return a ** -1
    if op == "sqrt":
        return a ** 0.5
    if op == "add":
        return a + b
    if op == "mul":
        return a * b
    if op == "sub":
        return a - b
    if op == "div":
        return a / b
    if op == "powv":
        return a ** b
    if op == "sum":
        return lib.stack(list(a)).sum() if lib is not None else eng.vsum(a)
    raise AssertionError(op)


def _domain_ok(op, a, b=None):
    if op in ("log", "sqrt"):
        return a > 1e-3
    if op in ("inv", "div"):
        return abs(b if op == "div" else a) > 1e-3
    if op == "powv":
        # (PyTorch's pow masks its derivative where the exponent is 0, so
        # its second derivatives there are not the function's)
        return a > 1e-3 and 1e-3 < abs(b) < 4
    if op == "exp":
        return a < 30
    return True


PROGRAMS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(UNARY), st.integers(0, 50)),
        st.tuples(st.sampled_from(BINARY), st.integers(0, 50), st.integers(0, 50)),
        st.tuples(st.just("sum"), st.lists(st.integers(0, 50), min_size=3, max_size=5)),
    ),
    min_size=1, max_size=12,
)
INPUTS = st.lists(st.floats(-2.0, 2.0, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
                  min_size=2, max_size=3)


def _run_numbers(program, xs):
    """The program on floats, to check the domain first (None: outside it)."""
    vals = list(xs)
    for ins in program:
        op = ins[0]
        if op == "sum":
            vals.append(sum(vals[k % len(vals)] for k in ins[1]))
            continue
        a = vals[ins[1] % len(vals)]
        b = vals[ins[2] % len(vals)] if op in BINARY else None
        if not _domain_ok(op, a, b):
            return None
        try:
            v = _apply(math_lib, op, a, b)
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        if not math.isfinite(v) or abs(v) > 1e6:
            return None
        vals.append(v)
    return vals


class _MathLib:
    """The unary ops on floats, for the domain check."""

    @staticmethod
    def relu(a):
        return max(a, 0.0)

    tanh = staticmethod(math.tanh)
    exp = staticmethod(math.exp)
    log = staticmethod(math.log)

    @staticmethod
    def sigmoid(a):
        return 1.0 / (1.0 + math.exp(-a))


math_lib = _MathLib()


def _build(program, xs, lib, eng=None):
    vals = list(xs)
    for ins in program:
        op = ins[0]
        if op == "sum":
            items = [vals[k % len(vals)] for k in ins[1]]
            vals.append(_apply(lib, op, items, eng=eng))
            continue
        a = vals[ins[1] % len(vals)]
        b = vals[ins[2] % len(vals)] if op in BINARY else None
        vals.append(_apply(lib, op, a, b))
    return vals[-1] + vals[-2] * 0.5 if len(vals) > 1 else vals[-1]


def _ours(engine, program, xs):
    leaves = [engine.Value(x) for x in xs]
    f = _build(program, leaves, None, eng=engine)
    g = engine.grad(f, leaves, create_graph=True)
    plain = engine.grad(f, leaves)
    hess = [engine.grad(gi, leaves) for gi in g]
    f.backward()  # the first derivatives are backward()'s numbers, either way
    assert [bits(v.data) for v in g] == [bits(x.grad) for x in leaves]
    assert [bits(v.data) for v in plain] == [bits(x.grad) for x in leaves]
    return [v.data for v in g], [[h.data for h in row] for row in hess]


def _torch(program, xs):
    import torch

    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    f = _build(program, leaves, torch)
    g = torch.autograd.grad(f, leaves, create_graph=True, allow_unused=True)
    g = [gi if gi is not None else torch.zeros((), dtype=torch.float64) for gi in g]
    hess = []
    for gi in g:
        if gi.requires_grad:
            row = torch.autograd.grad(gi, leaves, allow_unused=True, retain_graph=True)
            hess.append([0.0 if h is None else h.item() for h in row])
        else:
            hess.append([0.0] * len(leaves))
    return [gi.item() for gi in g], hess


def _close(a, b, scale):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=PROGRAMS, xs=INPUTS)
def test_random_programs_gradients_and_hessians(program, xs):
    """Every op, gradients and full Hessians: the compiled core and the pure
    engine give the same bits, and PyTorch float64 the same numbers."""
    assume(_run_numbers(program, xs) is not None)
    results = [_ours(_engine_py, program, xs)]
    if not micrograd_fast.engine.NO_EXTENSIONS:
        from micrograd_fast import _engine as C

        results.append(_ours(C, program, xs))
        (g0, h0), (g1, h1) = results
        assert [bits(v) for v in g0] == [bits(v) for v in g1]
        assert [[bits(v) for v in r] for r in h0] == [[bits(v) for v in r] for r in h1]
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    g, h = results[0]
    tg, th = _torch(program, xs)
    scale = max([1.0] + [abs(v) for v in tg] + [abs(v) for r in th for v in r])
    assert all(_close(a, b, scale) for a, b in zip(g, tg)), (g, tg)
    for row, trow in zip(h, th):
        assert all(_close(a, b, scale) for a, b in zip(row, trow)), (h, th)


@pytest.mark.parametrize("fused", [False, True], ids=["graph", "fused"])
def test_hessian_vector_product_of_an_mlp(engine, fused):
    """H v of MLP(2, [16, 16, 1]) with tanh, by grad of (grad . v), against
    PyTorch's double backward on the same weights."""
    torch = pytest.importorskip("torch", reason=TORCH)
    random.seed(3)
    model = nn.MLP(2, [16, 16, 1], act="tanh", engine=engine)
    model.fused = fused
    params = model.parameters()
    xs = [[0.5, -1.2], [1.5, 0.3], [-0.7, 0.9]]
    loss = engine.vsum([model(x) ** 2 for x in xs]) * (1.0 / len(xs))
    v = [random.uniform(-1, 1) for _ in params]
    gs = engine.grad(loss, params, create_graph=True)
    hv = engine.grad(gs, params, v)

    seq = model.to_torch()
    tp = list(seq.parameters())
    tloss = sum(seq(torch.tensor(x, dtype=torch.float64)).squeeze() ** 2 for x in xs) / len(xs)
    tg = torch.autograd.grad(tloss, tp, create_graph=True)
    tv = [torch.tensor(v[k], dtype=torch.float64) for k in range(len(v))]
    flat_g = torch.cat([g.reshape(-1) for g in tg])
    flat_v = _torch_order(model, seq, tv)
    thv = torch.autograd.grad(flat_g @ flat_v, tp)
    ours = _torch_order(model, seq, [h.data for h in hv])
    theirs = torch.cat([t.reshape(-1) for t in thv])
    ours_t = torch.tensor([float(x) for x in ours], dtype=torch.float64)
    assert torch.allclose(ours_t, theirs, rtol=1e-9, atol=1e-12), (ours_t - theirs).abs().max()
    loss.backward()
    assert [g.data for g in gs] == [p.grad for p in params]


def _torch_order(model, seq, values):
    """values, one per parameter in parameters() order, laid out as torch's
    flattened parameters (per layer: the weight matrix row by row, then
    the biases)."""
    import torch

    out, k = [], 0
    for layer in model.layers:
        nout, nin = len(layer.neurons), len(layer.neurons[0].w)
        rows = []
        biases = []
        for _ in range(nout):
            rows.append(values[k:k + nin])
            biases.append(values[k + nin])
            k += nin + 1
        out += [x for r in rows for x in r] + biases
    if out and isinstance(out[0], torch.Tensor):
        return torch.stack(out)
    return out


def test_draw_dot_of_a_gradient_graph(engine):
    pytest.importorskip("graphviz")
    x = engine.Value(0.5, label="x")
    g, = engine.grad((x * x).tanh(), [x], create_graph=True)
    dot = micrograd_fast.viz.draw_dot(g)
    assert "tanh" in dot.source and "x" in dot.source
