"""Engine-level primitives: vsum, layer, mlp, parameter arrays, pickling."""

import copy
import math
import pickle
import random

import numpy as np
import pytest

from micrograd_fast._vocab import ACTIVATIONS as ACTS


def _apply_act(z, act):
    """The activation's op node on z (each is the Value method of its name),
    none when linear."""
    return z if act == "linear" else getattr(z, act)()


def _reference_neuron(w, x, b, act):
    z = b
    for wi, xi in zip(w, x):
        z = z + wi * xi
    return _apply_act(z, act)


# -- vsum ------------------------------------------------------------------------


def test_vsum_forward_and_graph(engine, Value):
    a, b, c = Value(1.5), Value(-2.25), Value(0.125)
    s = engine.vsum([a, 2, b, c, a], start=0.5)
    assert s._op == "sum"
    assert s.data == (((((0.5 + 1.5) + 2.0) + -2.25) + 0.125) + 1.5)
    assert s._prev == {a, b, c}
    s.backward()
    assert (a.grad, b.grad, c.grad) == (2.0, 1.0, 1.0)


def test_vsum_start_value_and_empty(engine, Value):
    st = Value(3.0)
    s = engine.vsum([], start=st)
    assert s.data == 3.0 and s._prev == {st} and s._op == "sum"
    s.backward()
    assert st.grad == 1.0
    e = engine.vsum([])
    assert e.data == 0.0 and e._prev == set() and type(e.data) is float
    assert engine.vsum(iter([Value(1.0), Value(2.0)])).data == 3.0


def test_vsum_matches_builtin_sum(engine, Value):
    rng = random.Random(5)
    xs = [Value(rng.uniform(-3, 3)) for _ in range(50)]
    ys = [Value(x.data) for x in xs]
    s1 = engine.vsum(v * v for v in xs)
    s2 = sum(v * v for v in ys)
    assert s1.data == s2.data
    s1.backward()
    s2.backward()
    assert [v.grad for v in xs] == [v.grad for v in ys]


def test_vsum_rejects_non_numbers(engine, Value):
    with pytest.raises(TypeError):
        engine.vsum([Value(1.0), "2"])
    with pytest.raises(TypeError):
        engine.vsum([Value(1.0)], start="x")


# -- layer / mlp -------------------------------------------------------------------


def _params(Value, nout, nin, seed):
    rng = random.Random(seed)
    W = [[Value(rng.uniform(-1, 1)) for _ in range(nin)] for _ in range(nout)]
    B = [Value(rng.uniform(-0.5, 0.5)) for _ in range(nout)]
    return W, B


@pytest.mark.parametrize("act", ACTS)
def test_layer_matches_ordinary_ops(engine, Value, act):
    W, B = _params(Value, 4, 3, 1)
    W2 = [[Value(w.data) for w in row] for row in W]
    B2 = [Value(b.data) for b in B]
    x = [Value(0.3), Value(-1.2), Value(2.0)]
    x2 = [Value(v.data) for v in x]
    out = engine.layer(W, B, x, act)
    ref = [_reference_neuron(W2[j], x2, B2[j], act) for j in range(4)]
    assert [o.data for o in out] == [r.data for r in ref]
    for j, o in enumerate(out):
        assert o._op == "neuron_" + act
        assert o._prev == {*W[j], *x, B[j]}
        if hasattr(o, "_children"):  # the pure engine shows the order too
            assert o._children == (*W[j], *x, B[j])
    loss = engine.vsum(o * o for o in out)
    loss.backward()
    sum(r * r for r in ref).backward()
    got = [w.grad for row in W for w in row] + [b.grad for b in B] + [v.grad for v in x]
    exp = [w.grad for row in W2 for w in row] + [b.grad for b in B2] + [v.grad for v in x2]
    assert got == pytest.approx(exp, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("act", ACTS)
def test_mlp_gradients_vs_finite_differences(engine, Value, act):
    W1, B1 = _params(Value, 3, 2, 2)
    W2, B2 = _params(Value, 2, 3, 3)
    x = [Value(0.7), Value(-0.4)]
    spec = [(W1, B1, act), (W2, B2, "linear")]

    def f():
        out = engine.mlp(spec, x)
        return engine.vsum(o * o for o in out)

    loss = f()
    loss.backward()
    leaves = [w for row in W1 + W2 for w in row] + B1 + B2 + x
    h = 1e-6
    for p in leaves:
        old = p.data
        p.data = old + h
        up = f().data
        p.data = old - h
        down = f().data
        p.data = old
        assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-7)


def test_layer_numbers_become_shared_leaves(engine, Value):
    W, B = _params(Value, 2, 2, 4)
    out = engine.layer(W, B, [1.0, 2], "tanh")
    shared = out[0]._prev & out[1]._prev
    assert sorted(v.data for v in shared) == [1.0, 2.0]


def test_layer_nin_zero(engine, Value):
    b = Value(-0.5)
    (o,) = engine.layer([[]], [b], [], "relu")
    assert o.data == 0.0
    (o,) = engine.layer([[]], [b], [], "linear")
    assert o.data == -0.5
    o.backward()
    assert b.grad == 1.0


def test_layer_errors(engine, Value):
    W, B = _params(Value, 2, 3, 5)
    with pytest.raises(ValueError):
        engine.layer(W, B, [1.0, 2.0], "relu")
    with pytest.raises(ValueError):
        engine.layer(W, B[:1], [1.0, 2.0, 3.0], "relu")
    with pytest.raises(ValueError):
        engine.layer([W[0], W[1][:2]], B, [1.0, 2.0, 3.0], "relu")
    with pytest.raises(ValueError, match="activation"):
        engine.layer(W, B, [1.0, 2.0, 3.0], "not an activation")
    with pytest.raises(TypeError):
        engine.layer([[1.0, 2.0, 3.0], W[1]], B, [1.0, 2.0, 3.0], "relu")
    with pytest.raises(TypeError):
        engine.layer(W, [0.0, B[1]], [1.0, 2.0, 3.0], "relu")
    with pytest.raises(TypeError):
        engine.layer(W, B, [1.0, "a", 3.0], "relu")
    with pytest.raises(ValueError):
        engine.mlp([], [1.0])


# -- optimizer updates and arrays -------------------------------------------------


def test_sgd_update_plain_is_the_manual_update(engine, Value):
    ps = [Value(random.Random(i).uniform(-1, 1)) for i in range(10)]
    qs = [Value(p.data) for p in ps]
    for i, (p, q) in enumerate(zip(ps, qs)):
        p.grad = q.grad = math.sin(i + 1.0)
    engine.sgd_update(ps, 0.37, 0.0, np.zeros(len(ps)), True)
    for q in qs:
        q.data -= 0.37 * q.grad
    assert [p.data for p in ps] == [q.data for q in qs]


def test_gather_scatter_zero_grad(engine, Value):
    vs = [Value(float(i)) for i in range(5)]
    for v in vs:
        v.grad = v.data * 2
    assert engine.gather(vs, "data").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    g = engine.gather(vs, "grad")
    assert g.dtype == np.float64 and g.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    engine.scatter(vs, np.arange(5.0) + 0.5, "data")
    assert [v.data for v in vs] == [0.5, 1.5, 2.5, 3.5, 4.5]
    engine.scatter(vs, [1, 2, 3, 4, 5], "grad")
    assert [v.grad for v in vs] == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError):
        engine.scatter(vs, np.zeros(4), "data")
    with pytest.raises(ValueError):
        engine.gather(vs, "value")
    engine.zero_grad(vs)
    assert all(v.grad == 0.0 for v in vs)


# -- pickling and copying -----------------------------------------------------------


def test_value_pickle_copy_deepcopy_give_leaves(engine, Value):
    a = Value(2.0, label="a")
    b = a * 3.0
    b.label = "b"
    b.backward()
    b.note = {"k": [1, 2]}
    for c in (pickle.loads(pickle.dumps(b)), copy.copy(b), copy.deepcopy(b)):
        assert type(c) is Value
        assert c is not b
        assert (c.data, c.grad, c.label) == (6.0, 1.0, "b")
        assert c.note == {"k": [1, 2]}
        assert c._prev == set() and c._op == ""
    assert copy.deepcopy(b).note is not b.note
    assert copy.copy(b).note is b.note
    a2 = pickle.loads(pickle.dumps(a))
    assert (a2.data, a2.grad, a2.label) == (2.0, 3.0, "a")


def test_value_pickle_keeps_sharing_and_self_reference(Value):
    a = Value(1.0)
    a.me = a
    lst = pickle.loads(pickle.dumps([a, a]))
    assert lst[0] is lst[1] and lst[0].me is lst[0]
