"""The micrograd lecture, cell by cell: what a student types must work."""

import gc
import math

import pytest

B_NEURON = 6.8813735870195432


def test_first_expression_forward(lecture_expression):
    a, b, c, e, d, f, L = lecture_expression()
    assert (e.data, d.data, L.data) == (-6.0, 4.0, -8.0)
    assert [n.label for n in (a, b, c, e, d, f, L)] == list("abcedfL")
    assert L._prev == {d, f}
    assert d._prev == {e, c}
    assert e._prev == {a, b}
    assert (L._op, d._op, e._op) == ("*", "+", "*")


def test_manual_backprop_node_by_node(lecture_expression):
    a, b, c, e, d, f, L = lecture_expression()
    L.grad = 1.0
    L._backward()
    assert (d.grad, f.grad) == (-2.0, 4.0)
    d._backward()
    assert (e.grad, c.grad) == (-2.0, -2.0)
    e._backward()
    assert (a.grad, b.grad) == (6.0, -4.0)
    # leaves have a _backward too, and it does nothing
    for leaf in (a, b, c, f):
        assert leaf._backward() is None
    assert (a.grad, b.grad, c.grad, f.grad) == (6.0, -4.0, -2.0, 4.0)


def test_nudging_the_leaves_along_the_gradient_raises_L(lecture_expression):
    a, b, c, e, d, f, L = lecture_expression()
    L.backward()
    for leaf in (a, b, c, f):
        leaf.data += 0.01 * leaf.grad
    e = a * b
    d = e + c
    L2 = d * f
    assert L2.data == pytest.approx(-7.286496, abs=1e-12)
    assert L2.data > L.data


def build_neuron(Value):
    x1 = Value(2.0, label="x1")
    x2 = Value(0.0, label="x2")
    w1 = Value(-3.0, label="w1")
    w2 = Value(1.0, label="w2")
    b = Value(B_NEURON, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    return (x1, x2, w1, w2, b), (x1w1, x2w2, x1w1x2w2, n)


def check_neuron_grads(o, x1, x2, w1, w2):
    assert o.data == pytest.approx(0.7071, abs=1e-4)
    assert o.data == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert x1.grad == pytest.approx(-1.5)
    assert w1.grad == pytest.approx(1.0)
    assert x2.grad == pytest.approx(0.5)
    assert w2.grad == pytest.approx(0.0)


def test_neuron_with_tanh(Value):
    (x1, x2, w1, w2, b), (*_, n) = build_neuron(Value)
    o = n.tanh()
    o.label = "o"
    o.backward()
    check_neuron_grads(o, x1, x2, w1, w2)
    assert b.grad == pytest.approx(0.5)
    assert n.grad == pytest.approx(0.5)


def test_neuron_manual_backward_in_lecture_order(Value):
    (x1, x2, w1, w2, b), (x1w1, x2w2, x1w1x2w2, n) = build_neuron(Value)
    o = n.tanh()
    o.grad = 1.0
    o._backward()
    n._backward()
    b._backward()
    x1w1x2w2._backward()
    x2w2._backward()
    x1w1._backward()
    check_neuron_grads(o, x1, x2, w1, w2)


def test_hand_written_topological_sort(Value):
    (x1, x2, w1, w2, b), (*_, n) = build_neuron(Value)
    o = n.tanh()

    topo = []
    visited = set()

    def visit(v):
        if v not in visited:
            visited.add(v)
            for child in v._prev:
                visit(child)
            topo.append(v)

    visit(o)
    assert len(topo) == 10
    assert topo[-1] is o
    position = {id(v): i for i, v in enumerate(topo)}
    for v in topo:
        for child in v._prev:
            assert position[id(child)] < position[id(v)]

    o.grad = 1.0
    for v in reversed(topo):
        v._backward()
    check_neuron_grads(o, x1, x2, w1, w2)

    # same numbers as the engine's own backward on a fresh copy
    (y1, y2, v1, v2, c), (*_, m) = build_neuron(Value)
    m.tanh().backward()
    assert [x1.grad, x2.grad, w1.grad, w2.grad, b.grad] == [
        y1.grad,
        y2.grad,
        v1.grad,
        v2.grad,
        c.grad,
    ]


def test_neuron_with_tanh_spelled_out(Value):
    (x1, x2, w1, w2, b), (*_, n) = build_neuron(Value)
    e = (2 * n).exp()
    o = (e - 1) / (e + 1)
    o.backward()
    check_neuron_grads(o, x1, x2, w1, w2)


# --- a custom op, written in Python the lecture way ---------------------------


def custom_sin(Value, x):
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward():
        x.grad += math.cos(x.data) * out.grad

    out._backward = _backward
    return out


def build_loss_with_custom_ops(Value, a, b):
    """exp(sin(a*b) * a + tanh(sin(b))); only the loss is returned."""
    left = custom_sin(Value, a * b) * a
    right = custom_sin(Value, b).tanh()
    return (left + right).exp()


def test_custom_op_mixed_with_native_ops(Value):
    a, b = Value(0.7), Value(-1.3)
    loss = build_loss_with_custom_ops(Value, a, b)
    gc.collect()  # intermediates only live on through the graph
    loss.backward()

    av, bv = 0.7, -1.3
    L = math.exp(math.sin(av * bv) * av + math.tanh(math.sin(bv)))
    assert loss.data == pytest.approx(L, rel=1e-14)
    da = L * (math.cos(av * bv) * bv * av + math.sin(av * bv))
    db = L * (
        math.cos(av * bv) * av * av
        + (1 - math.tanh(math.sin(bv)) ** 2) * math.cos(bv)
    )
    assert a.grad == pytest.approx(da, rel=1e-12)
    assert b.grad == pytest.approx(db, rel=1e-12)


def test_custom_op_node_keeps_its_op_and_children(Value):
    x = Value(0.5)
    s = custom_sin(Value, x)
    assert s._op == "sin"
    assert s._prev == {x}
    assert s.data == math.sin(0.5)


def test_exception_in_a_custom_backward_propagates(Value):
    class Boom(Exception):
        pass

    x = Value(1.5)
    bad = Value(x.data * 2, (x,), "bad")

    def _backward():
        raise Boom("inside backward")

    bad._backward = _backward
    loss = (bad + x) * 3
    with pytest.raises(Boom):
        loss.backward()

    # a leaf of the failed graph is still usable
    x.grad = 0.0
    (x * 2).backward()
    assert x.grad == 2.0

    # the engine still works: a fresh graph backprops fine
    a, b = Value(2.0), Value(-3.0)
    out = (a * b + a).tanh() + custom_sin(Value, b)
    out.backward()
    t = math.tanh(-4.0)
    assert a.grad == pytest.approx((1 - t * t) * (b.data + 1), rel=1e-12)
    assert b.grad == pytest.approx((1 - t * t) * a.data + math.cos(-3.0), rel=1e-12)


# --- nodes used more than once, backward more than once ---------------------------


def test_node_used_twice_gets_both_contributions(Value):
    a = Value(3.0, label="a")
    b = a + a
    b.backward()
    assert a.grad == 2.0

    a = Value(-2.0, label="a")
    b = Value(3.0, label="b")
    d = a * b
    e = a + b
    f = d * e
    f.backward()
    assert f.data == -6.0
    assert a.grad == -3.0
    assert b.grad == -8.0


def twice_expression(a, b):
    c = a * b
    d = c + a
    e = d * d
    return c, d, e, e + d.relu() + b**2 + (c * 0.5)


def test_a_pass_stopped_by_a_raising_rule_leaves_nothing_for_the_next(Value):
    """A rule that raises stops backward() after its node's children were
    reached but before they were handled: a later pass over another graph
    that shares the leaves does not go through them."""
    a, b = Value(2.0), Value(-3.0)
    x = a * b

    def boom():
        raise KeyError("stop")

    bad = Value(x.data, (x,), "bad")
    bad._backward = boom
    with pytest.raises(KeyError):
        bad.backward()
    x.grad = 5.0  # would reach a and b if x were visited again
    a.grad = b.grad = 0.0
    c = a + 1.0
    c.backward()
    assert (a.grad, b.grad, x.grad) == (1.0, 0.0, 5.0)


def test_a_rule_set_to_none_or_a_number_fails_when_backward_calls_it(Value):
    """`v._backward = None` (or any non-callable) is stored as given and
    fails with TypeError when backward() reaches the node, as upstream's
    attribute does; giving the node its own rule back restores it, and
    another node's rule runs as that node's rule."""
    for stored in (None, 3):
        a, b = Value(2.0), Value(-3.0)
        c = a * b
        loss = c + 1.0
        c._backward = stored
        assert c._backward is stored
        with pytest.raises(TypeError, match="not callable"):
            loss.backward()
        # a leaf too (upstream's leaves call their no-op rule)
        leaf = Value(1.0)
        leaf._backward = stored
        with pytest.raises(TypeError, match="not callable"):
            (leaf * 2).backward()

    a, b = Value(2.0), Value(-3.0)
    c = a * b
    own = c._backward
    c._backward = None
    c._backward = own
    (c + 1.0).backward()
    assert (a.grad, b.grad) == (-3.0, 2.0)

    # d's rule is c's: backward through d pushes c's grad into a and b
    a, b = Value(2.0), Value(-3.0)
    c = a * b
    x = Value(5.0)
    d = x * 4.0
    d._backward = c._backward
    c.grad = 0.5
    d.backward()
    assert (a.grad, b.grad, x.grad) == (-1.5, 1.0, 0.0)


def test_backward_twice_matches_upstream(Value):
    upstream = pytest.importorskip("micrograd.engine")

    ours = [Value(3.0), Value(-2.0)]
    theirs = [upstream.Value(3.0), upstream.Value(-2.0)]
    our_nodes = ours + list(twice_expression(*ours))
    their_nodes = theirs + list(twice_expression(*theirs))
    for root in (our_nodes[-1], their_nodes[-1]):
        root.backward()
        root.backward()
    # every number here is a small dyadic rational: exact in any order
    assert [n.data for n in our_nodes] == [n.data for n in their_nodes]
    assert [n.grad for n in our_nodes] == [n.grad for n in their_nodes]


def test_backward_twice_compiled_equals_pure_exactly(compiled_engine, pure_engine):
    results = []
    for module in (compiled_engine, pure_engine):
        V = module.Value
        a, b = V(0.3), V(-1.7)
        c = a * b
        d = (c + a).tanh()
        e = d * d + c.exp() / b
        root = e * a + d.sigmoid()
        root.backward()
        root.backward()
        nodes = [a, b, c, d, e, root]
        results.append(([n.data for n in nodes], [n.grad for n in nodes]))
    assert results[0] == results[1]
