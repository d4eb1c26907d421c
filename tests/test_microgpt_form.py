"""Value(data, children, local_grads): the node form of the microgpt script.

A node made this way carries its own local derivatives; its backward adds
``local_grad * out.grad`` to each child.  Every node, built-in ones too,
exposes ``_children`` (a tuple, in order) and ``_local_grads``.
"""

import copy
import math
import os
import pickle
import sys

import pytest


# --- a small Value class written the microgpt way, as a reference: the one the
# microgpt-shaped benchmark is written against (its nodes keep their children
# and local derivatives; backward walks a topological order and applies
# child.grad += local_grad * v.grad; walk_backward does that walk on any
# graph exposing _children and _local_grads) ---------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    # benchmarks/ is not installed with the package: import it from the
    # source tree, after anything installed (an installed micrograd_fast wins)
    sys.path.append(ROOT)

from benchmarks.microgpt import ScalarValue as MiniValue  # noqa: E402
from benchmarks.microgpt import walk_backward  # noqa: E402


# --- ops written in that style, for any class with the (data, children,
# local_grads) constructor ---------------------------------------------------------


def as_node(V, x):
    return x if isinstance(x, V) else V(x)


def m_add(a, b):
    V = type(a)
    b = as_node(V, b)
    return V(a.data + b.data, (a, b), (1, 1))


def m_mul(a, b):
    V = type(a)
    b = as_node(V, b)
    return V(a.data * b.data, (a, b), (b.data, a.data))


def m_pow(a, k):
    return type(a)(a.data**k, (a,), (k * a.data ** (k - 1),))


def m_log(a):
    return type(a)(math.log(a.data), (a,), (1 / a.data,))


def m_exp(a):
    return type(a)(math.exp(a.data), (a,), (math.exp(a.data),))


def m_relu(a):
    return type(a)(max(0, a.data), (a,), (float(a.data > 0),))


def m_sum(items):
    out = items[0]
    for it in items[1:]:
        out = m_add(out, it)
    return out


def tiny_program(V):
    """A two-layer net with a softmax cross-entropy loss, every op in the
    microgpt style.  Returns (loss, parameters)."""
    xs = [V(0.5), V(-1.25), V(2.0)]
    W1 = [[V(0.1 * (i + 1) - 0.25 * j) for i in range(3)] for j in range(4)]
    W2 = [[V(0.3 - 0.05 * (i * j)) for i in range(4)] for j in range(3)]
    h = [m_relu(m_sum([m_mul(w, x) for w, x in zip(row, xs)])) for row in W1]
    logits = [m_sum([m_mul(w, x) for w, x in zip(row, h)]) for row in W2]
    mx = max(v.data for v in logits)
    exps = [m_exp(m_add(v, -mx)) for v in logits]
    total = m_sum(exps)
    probs = [m_mul(e, m_pow(total, -1)) for e in exps]
    loss = m_mul(m_log(probs[1]), -1.0)
    # a node used twice, and a square
    loss = m_add(loss, m_mul(m_pow(h[0], 2), 0.01))
    return loss, xs + [w for row in W1 + W2 for w in row]


def operator_program(V):
    """The same kind of program written with operators and methods."""
    a, b, c = V(1.5), V(-0.75), V(2.25)
    d = (a * b + c) ** 2
    e = (d / (a + 4.0)).exp() - (c * 0.5).log()
    f = (e * a - b).relu() + 3 * d
    return f, [a, b, c]


# --- tests ---------------------------------------------------------------------------


def test_microgpt_program_same_data_and_grads(Value):
    ref_loss, ref_params = tiny_program(MiniValue)
    ref_loss.backward()
    loss, params = tiny_program(Value)
    assert loss.data == ref_loss.data
    loss.backward()
    for p, r in zip(params, ref_params):
        assert p.data == r.data
        assert p.grad == pytest.approx(r.grad, rel=1e-12, abs=1e-15)
    # the same topological walk over our nodes, through _children and
    # _local_grads, accumulates in the same order: bit for bit
    loss2, params2 = tiny_program(Value)
    walk_backward(loss2)
    for p, r in zip(params2, ref_params):
        assert p.grad == r.grad


def test_builtin_ops_expose_local_grads_a_topological_walk_can_use(Value):
    ref, ref_leaves = operator_program(MiniValue)
    ref.backward()
    out, leaves = operator_program(Value)
    assert out.data == ref.data
    walk_backward(out)
    for v, r in zip(leaves, ref_leaves):
        assert v.grad == r.grad
    out2, leaves2 = operator_program(Value)
    out2.backward()
    for v, r in zip(leaves2, ref_leaves):
        assert v.grad == pytest.approx(r.grad, rel=1e-12)


def test_positional_and_keyword_forms(Value):
    a, b = Value(2.0), Value(-3.0)
    c = Value(a.data * b.data, (a, b), (b.data, a.data))
    d = Value(c.data + 1.0, children=(c,), local_grads=[1])
    e = Value(d.data, children=[d], local_grads=(2.5,))
    assert c._op == "" and d._op == "" and e._op == ""
    assert c._children == (a, b)
    assert c._children[0] is a and c._children[1] is b
    assert c._local_grads == (-3.0, 2.0)
    assert d._local_grads == (1.0,) and type(d._local_grads[0]) is float
    assert c._prev == {a, b}
    e.backward()
    assert d.grad == 2.5
    assert c.grad == 2.5
    assert a.grad == -7.5
    assert b.grad == 5.0


def test_an_op_label_and_local_grads_together(Value):
    a = Value(4.0)
    out = Value(2.0, (a,), "sqrt", local_grads=(0.25,))
    assert out._op == "sqrt"
    out.backward()
    assert a.grad == 0.25


def test_the_issue_reproducer_is_no_longer_silently_wrong(Value):
    a, b = Value(1.5), Value(-2.0)
    ga, gb = b.data, a.data
    d = Value(a.data * b.data, (a, b), (ga, gb))
    assert d._op == ""
    d.backward()
    assert (a.grad, b.grad) == (-2.0, 1.5)


def test_repeated_children_and_many_children(Value):
    a = Value(3.0)
    sq = Value(9.0, (a, a), (3.0, 3.0))
    sq.backward()
    assert a.grad == 6.0
    xs = [Value(float(i)) for i in range(7)]
    lgs = [0.5 * i - 1.0 for i in range(7)]
    s = Value(1.0, xs + [a], lgs + [10.0])
    assert s._children == (*xs, a)
    assert s._local_grads == (*lgs, 10.0)
    a.grad = 0.0
    s.backward()
    assert [x.grad for x in xs] == lgs
    assert a.grad == 10.0


def test_local_grads_of_builtin_ops(engine, Value):
    a, b = Value(2.0), Value(-3.0)
    assert a._local_grads == () and a._children == ()
    assert (a * b)._local_grads == (-3.0, 2.0)
    assert (a + b)._local_grads == (1.0, 1.0)
    assert (a * 5)._local_grads == (5.0, 2.0)
    assert a.relu()._local_grads == (1.0,)
    assert b.relu()._local_grads == (0.0,)
    t = a.tanh()
    assert t._local_grads == (1 - t.data**2,)
    assert a.exp()._local_grads == (math.exp(2.0),)
    assert a.log()._local_grads == (1 / 2.0,)
    assert (a**3)._local_grads == (3 * 2.0**2,)
    assert (a**-1)._local_grads == (-1 * 2.0**-2,)
    p = a**b
    assert p._local_grads == (-3.0 * 2.0**-4.0, p.data * math.log(2.0))
    s = a.sigmoid()
    assert s._local_grads == (s.data * (1.0 - s.data),)
    v = engine.vsum([a, b, a])
    assert v._children == (a, b, a)
    assert v._local_grads == (1.0, 1.0, 1.0)
    # a fused neuron: d/dw = x * act', d/dx = w * act', d/db = act'
    w0, w1, bias = Value(0.5), Value(-0.25), Value(0.1)
    x0, x1 = Value(1.5), Value(2.0)
    (n,) = engine.layer([[w0, w1]], [bias], [x0, x1], "tanh")
    slope = 1 - n.data**2
    assert n._children == (w0, w1, x0, x1, bias)
    assert n._local_grads == (1.5 * slope, 2.0 * slope, 0.5 * slope, -0.25 * slope, slope)


def test_local_grads_follow_the_current_data(Value):
    a, b = Value(2.0), Value(5.0)
    m = a * b
    assert m._local_grads == (5.0, 2.0)
    b.data = 7.0
    assert m._local_grads == (7.0, 2.0)


def test_custom_python_rule_has_no_local_grads(Value):
    a = Value(0.3)
    out = Value(math.sin(0.3), (a,), "sin")

    def _backward():
        a.grad += math.cos(a.data) * out.grad

    out._backward = _backward
    assert out._children == (a,)
    assert out._local_grads == ()
    out.backward()
    assert a.grad == math.cos(0.3)


def test_bad_third_argument_is_a_type_error(Value):
    a = Value(1.0)
    for bad in (5, 2.5, None, object(), [a], ["x"], [1.0, "2"], {1: 2}.items()):
        with pytest.raises(TypeError):
            Value(1.0, (a,), bad)
    with pytest.raises(TypeError):
        Value(1.0, (a,), local_grads="1")
    with pytest.raises(TypeError):
        Value(1.0, (a,), local_grads=3)


def test_a_child_that_is_not_a_value_is_named(Value):
    """Both engines refuse a child that is not a Value with the same words,
    in either form of the call."""
    for kids in ((1.0,), [Value(1.0), "x"]):
        want = type(kids[-1]).__name__
        with pytest.raises(TypeError, match=f"^Value children must be a Value, not {want}$"):
            Value(1.0, kids, (1.0,) * len(kids))
        with pytest.raises(TypeError, match=f"^Value children must be a Value, not {want}$"):
            Value(1.0, children=kids, local_grads=(1.0,) * len(kids))


def test_lengths_must_match(Value):
    a, b = Value(1.0), Value(2.0)
    with pytest.raises(ValueError):
        Value(1.0, (a, b), (1.0,))
    with pytest.raises(ValueError):
        Value(1.0, (a,), (1.0, 2.0))
    with pytest.raises(ValueError):
        Value(1.0, (), (1.0,))
    with pytest.raises(ValueError):
        Value(1.0, children=(a, b), local_grads=[1.0, 2.0, 3.0])


def test_arguments_given_twice(Value):
    a = Value(1.0)
    with pytest.raises(TypeError):
        Value(1.0, (a,), children=(a,), local_grads=(1.0,))
    with pytest.raises(TypeError):
        Value(1.0, (a,), (1.0,), local_grads=(1.0,))


def test_empty_forms_make_leaves(Value):
    for v in (Value(1.0, (), ()), Value(1.0, children=(), local_grads=()), Value(1.0, [], [])):
        assert v._children == () and v._local_grads == () and v._op == ""
        v.backward()
        assert v.grad == 1.0


def test_numbers_of_every_kind_are_accepted(Value):
    np = pytest.importorskip("numpy")
    a, b, c = Value(1.0), Value(2.0), Value(3.0)
    out = Value(0.0, (a, b, c), (1, np.float64(0.5), True))
    assert out._local_grads == (1.0, 0.5, 1.0)
    out.backward()
    assert (a.grad, b.grad, c.grad) == (1.0, 0.5, 1.0)


def test_local_form_mixes_with_builtin_ops_and_python_rules(Value):
    a, b = Value(0.7), Value(-1.1)
    s = Value(math.sin(a.data), (a,), (math.cos(a.data),))
    t = (s * b + a).tanh()
    u = Value(t.data**2, (t,), (2 * t.data,))
    out = u + s
    out.backward()
    dt = (1 - t.data**2) * (2 * t.data)
    assert b.grad == pytest.approx(dt * s.data, rel=1e-12)
    assert a.grad == pytest.approx(dt * (b.data * math.cos(0.7) + 1) + math.cos(0.7), rel=1e-12)


def test_local_nodes_survive_reclamation(engine, Value):
    if not hasattr(engine, "compact"):
        pytest.skip("the pure engine has no arena")
    keep = []
    for k in range(200):
        x = Value(float(k))
        junk = Value(x.data * 2, (x, x), (1.0, 1.0))
        junk = Value(1.0, [x] * 5, [0.1] * 5)  # an out-of-line list, then garbage
        if k % 3 == 0:
            keep.append(Value(x.data + 1, (x, Value(2.0)), (float(k), 0.5)))
        del junk
    wide = Value(0.0, keep[:6], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    engine.compact()
    assert engine._check_invariants()
    assert wide._local_grads == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    for k, v in zip(range(0, 200, 3), keep):
        assert v._local_grads == (float(k), 0.5)
        assert v._children[0].data == float(k)
    wide.backward()
    for i, v in enumerate(keep[:6]):
        assert v.grad == float(i + 1)
        assert v._children[0].grad == float(i + 1) * float(3 * i)
    assert engine.arena_stats()["local_grads"] >= 6 + 2 * len(keep)


def test_pickle_and_copy_of_local_nodes_give_leaves(Value):
    a = Value(2.0)
    out = Value(4.0, (a,), (4.0,))
    out.grad = 0.5
    for clone in (pickle.loads(pickle.dumps(out)), copy.deepcopy(out), copy.copy(out)):
        assert (clone.data, clone.grad) == (4.0, 0.5)
        assert clone._children == () and clone._local_grads == ()


def test_reinitialising_a_value_into_the_local_form(Value):
    a = Value(3.0)
    v = Value(1.0)
    v.__init__(6.0, (a,), (2.0,))
    assert v._children == (a,) and v._local_grads == (2.0,)
    v.backward()
    assert a.grad == 2.0


def test_children_and_prev_reuse_the_handles_the_user_holds(Value):
    a, b = Value(1.0), Value(2.0)
    out = Value(3.0, (a, b), (1.0, 1.0))
    assert out._children[0] is a
    assert out._children[1] is b
    inner = a * b
    top = Value(0.0, (inner,), (1.0,))
    del inner
    first = top._children[0]
    assert top._children[0] is first
    assert next(iter(top._prev)) is first


def random_mixed_program(V, seed, compact=None):
    """Built-in ops and local-form nodes interleaved, with garbage and
    (compiled core) reclamations in between; returns (root, leaves)."""
    import random

    rng = random.Random(seed)
    leaves = [V(rng.uniform(0.5, 2.0)) for _ in range(4)]
    pool = list(leaves)
    for step in range(60):
        k = rng.randrange(7)
        a, b = rng.choice(pool), rng.choice(pool)
        if k == 0:
            v = a * b
        elif k == 1:
            v = (a + b).tanh()
        elif k == 2:
            v = V(a.data * b.data, (a, b), (b.data, a.data))
        elif k == 3:
            kids = [rng.choice(pool) for _ in range(rng.randrange(1, 6))]
            lgs = tuple(rng.uniform(-1.0, 1.0) for _ in kids)
            v = V(sum(c.data for c in kids) * 0.5, kids, lgs)
        elif k == 4:
            v = V(a.data**2, children=[a], local_grads=[2 * a.data])
        elif k == 5:
            v = a.relu() + 1
        else:
            V(1.0, (a, b), (1.0, 1.0))  # garbage at once
            v = a.sigmoid()
        pool.append(v)
        if len(pool) > 12:
            pool.pop(rng.randrange(4, len(pool)))  # drop a handle
        if compact is not None and step % 15 == 14:
            compact()
    root = pool[4]
    for v in pool[5:]:
        root = root + v
    return root, leaves


@pytest.mark.parametrize("seed", range(6))
def test_random_mixed_programs_match_between_engines(seed, compiled_engine, pure_engine):
    _engine, _engine_py = compiled_engine, pure_engine
    ref, ref_leaves = random_mixed_program(_engine_py.Value, seed)
    ref.backward()
    out, leaves = random_mixed_program(_engine.Value, seed, _engine.compact)
    assert out.data == ref.data
    out.backward()
    assert [v.grad for v in leaves] == [v.grad for v in ref_leaves]
    assert _engine._check_invariants()
