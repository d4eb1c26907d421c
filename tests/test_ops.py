"""Every operator of Value, its graph shape and its gradient.

Gradients are checked against central finite differences computed with the
engine's own forward pass; forward values against plain float arithmetic.
"""

import math

import numpy as np
import pytest

H = 1e-6

# Scalars of every kind a user may mix with a Value.
SCALAR_KINDS = {
    "int": lambda x: int(x),
    "float": lambda x: float(x),
    "np.float64": lambda x: np.float64(x),
    "np.int64": lambda x: np.int64(int(x)),
    "np.float32": lambda x: np.float32(x),
}
SCALAR_IDS = list(SCALAR_KINDS)


def finite_difference(Value, fn, xs, i):
    def at(shift):
        args = [Value(x + (shift if k == i else 0.0)) for k, x in enumerate(xs)]
        return fn(*args).data

    return (at(H) - at(-H)) / (2 * H)


def check_gradients(Value, fn, xs, reference=None):
    """Build fn on fresh leaves, backprop, compare with finite differences."""
    leaves = [Value(x) for x in xs]
    out = fn(*leaves)
    assert isinstance(out, Value)
    assert type(out.data) is float
    if reference is not None:
        assert out.data == pytest.approx(reference(*xs), rel=1e-12, abs=1e-12)
    out.backward()
    assert out.grad == 1.0
    for i, leaf in enumerate(leaves):
        assert type(leaf.grad) is float
        expected = finite_difference(Value, fn, xs, i)
        assert leaf.grad == pytest.approx(expected, rel=1e-5, abs=1e-6), (
            f"d/dx{i} at {xs}"
        )
    return out, leaves


# --- Value op Value ----------------------------------------------------------

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, (1.3, -0.7)),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, (1.3, -0.7)),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, (1.3, -0.7)),
    "truediv": (lambda a, b: a / b, lambda a, b: a / b, (1.3, -0.7)),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, (1.3, 0.7)),
    "pow_negative_exponent": (lambda a, b: a**b, lambda a, b: a**b, (2.1, -1.6)),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_value_value(Value, name):
    fn, ref, xs = BINARY[name]
    check_gradients(Value, fn, xs, ref)


def test_same_value_on_both_sides(Value):
    check_gradients(Value, lambda a: a * a, (1.7,), lambda a: a * a)
    check_gradients(Value, lambda a: a + a, (1.7,), lambda a: a + a)
    check_gradients(Value, lambda a: a - a, (1.7,), lambda a: 0.0)
    check_gradients(Value, lambda a: a / a, (1.7,), lambda a: 1.0)
    check_gradients(Value, lambda a: a**a, (1.7,), lambda a: a**a)


# --- unary ops -----------------------------------------------------------------

UNARY = {
    "neg": (lambda a: -a, lambda a: -a, [1.25, -0.5]),
    "relu": (lambda a: a.relu(), lambda a: max(a, 0.0), [0.8, -0.8]),
    "tanh": (lambda a: a.tanh(), lambda x: (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1), [0.4, -1.9]),
    "exp": (lambda a: a.exp(), math.exp, [0.4, -1.9]),
    "log": (lambda a: a.log(), math.log, [0.4, 3.5]),
    "sigmoid": (
        lambda a: a.sigmoid(),
        lambda a: 1.0 / (1.0 + math.exp(-a)),
        [0.3, -2.5, 7.0, -30.0],
    ),
    "pow2": (lambda a: a**2, lambda a: a**2, [1.5, -0.75]),
    "pow3": (lambda a: a**3, lambda a: a**3, [1.5, -0.75]),
    "pow_minus1": (lambda a: a**-1, lambda a: a**-1, [1.5, -0.75]),
    "pow_half": (lambda a: a**0.5, lambda a: a**0.5, [1.5, 0.2]),
    "pow_minus2.5": (lambda a: a**-2.5, lambda a: a**-2.5, [1.5, 0.7]),
    "pow_zero": (lambda a: a**0, lambda a: 1.0, [1.5, -0.75]),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(Value, name):
    fn, ref, points = UNARY[name]
    for x in points:
        check_gradients(Value, fn, (x,), ref)


def test_relu_at_zero_and_below_passes_no_gradient(Value):
    for x in (0.0, -3.0):
        a = Value(x)
        out = a.relu()
        assert out.data == 0.0
        out.backward()
        assert a.grad == 0.0


def test_tanh_saturates_exactly(Value):
    assert Value(1000.0).tanh().data == 1.0
    assert Value(-1000.0).tanh().data == -1.0
    a = Value(1000.0)
    out = a.tanh()
    out.backward()
    assert a.grad == 0.0


def test_sigmoid_is_stable_far_from_zero(Value):
    assert Value(800.0).sigmoid().data == 1.0
    assert Value(-800.0).sigmoid().data == 0.0
    assert Value(0.0).sigmoid().data == 0.5


# --- Value op scalar and scalar op Value -----------------------------------------

RIGHT = {  # Value on the left, scalar on the right
    "add": (lambda v, c: v + c, lambda x, c: x + c),
    "sub": (lambda v, c: v - c, lambda x, c: x - c),
    "mul": (lambda v, c: v * c, lambda x, c: x * c),
    "truediv": (lambda v, c: v / c, lambda x, c: x / c),
    "pow": (lambda v, c: v**c, lambda x, c: x**c),
}
LEFT = {  # scalar on the left: radd, rsub, rmul, rtruediv, rpow
    "radd": (lambda v, c: c + v, lambda x, c: c + x),
    "rsub": (lambda v, c: c - v, lambda x, c: c - x),
    "rmul": (lambda v, c: c * v, lambda x, c: c * x),
    "rtruediv": (lambda v, c: c / v, lambda x, c: c / x),
    "rpow": (lambda v, c: c**v, lambda x, c: c**x),
}


@pytest.mark.parametrize("kind", SCALAR_IDS)
@pytest.mark.parametrize("name", list(RIGHT))
@pytest.mark.parametrize("raw", [3.0, -2.0])
def test_value_op_scalar(Value, name, kind, raw):
    fn, ref = RIGHT[name]
    c = SCALAR_KINDS[kind](raw)
    x = 1.6
    out, (leaf,) = check_gradients(
        Value, lambda v: fn(v, c), (x,), lambda x: ref(x, float(c))
    )
    assert type(out.data) is float


@pytest.mark.parametrize("kind", SCALAR_IDS)
@pytest.mark.parametrize("name", list(LEFT))
@pytest.mark.parametrize("raw", [3.0, -2.0])
def test_scalar_op_value(Value, name, kind, raw):
    fn, ref = LEFT[name]
    c = SCALAR_KINDS[kind](raw)
    x = 1.6 if name != "rpow" else 0.5
    if name == "rpow" and raw < 0:
        # a negative base with a fractional exponent is refused
        with pytest.raises(ValueError):
            fn(Value(x), c)
        x = 2.0  # an integral exponent is fine
        out = fn(Value(x), c)
        assert out.data == float(c) ** 2.0
        return
    out, (leaf,) = check_gradients(
        Value, lambda v: fn(v, c), (x,), lambda x: ref(x, float(c))
    )
    assert type(out.data) is float


@pytest.mark.parametrize("kind", ["np.float64", "np.int64", "np.float32"])
def test_numpy_scalar_on_the_left_gives_a_value(Value, kind):
    c = SCALAR_KINDS[kind](3.0)
    v = Value(2.0)
    for result, expected in [
        (c + v, 5.0),
        (c - v, 1.0),
        (c * v, 6.0),
        (c / v, 1.5),
        (c**v, 9.0),
    ]:
        assert isinstance(result, Value), type(result)
        assert type(result.data) is float
        assert result.data == expected


def test_numpy_examples_from_the_spec(Value):
    v = Value(5.0)
    p = np.float64(2.0) * v
    assert isinstance(p, Value) and p.data == 10.0
    q = np.int64(3) - v
    assert isinstance(q, Value) and q.data == -2.0
    (p + q).backward()
    assert v.grad == 1.0


def test_float32_scalar_is_read_at_full_precision(Value):
    c = np.float32(0.1)
    out = Value(1.0) * c
    assert out.data == float(c)  # 0.10000000149011612, not 0.1


# --- _op strings and graph shapes ---------------------------------------------


def prev_ops(v):
    return sorted(child._op for child in v._prev)


def test_op_strings(Value):
    a, b = Value(2.0), Value(3.0)
    assert a._op == ""
    assert (a + b)._op == "+"
    assert (a * b)._op == "*"
    assert (a**2)._op == "**2"
    assert (a**-1)._op == "**-1"
    assert (a**0.5)._op == "**0.5"
    assert a.relu()._op == "ReLU"
    assert a.tanh()._op == "tanh"
    assert a.exp()._op == "exp"
    assert a.log()._op == "log"
    assert a.sigmoid()._op == "sigmoid"
    assert (a**b)._op == "**"
    assert (2**a)._op == "**"


def test_op_string_spells_the_exponent_as_given(Value):
    a = Value(2.0)
    assert (a ** np.int64(2))._op == "**2"
    assert (a ** np.float64(2.0))._op == f"**{np.float64(2.0)}"
    assert (a**2.0)._op == "**2.0"


def test_sub_is_add_of_a_negation(Value):
    a, b = Value(2.0), Value(3.0)
    out = a - b
    assert out._op == "+"
    assert a in out._prev
    (neg,) = [c for c in out._prev if c is not a]
    assert neg._op == "*"
    assert b in neg._prev
    minus_one = [c for c in neg._prev if c is not b]
    assert [m.data for m in minus_one] == [-1.0]


def test_sub_negates_an_int_as_an_int(Value):
    """a - 0 adds -0, which is the int 0 (+0.0), as upstream's self + (-other):
    a -0.0 sum stays -0.0 only when a float -0.0 is added."""
    for other, sign in ((0, 1.0), (False, 1.0), (0.0, -1.0)):
        a = Value(-0.0)
        out = a - other
        (const,) = [c for c in out._prev if c is not a]
        assert math.copysign(1.0, out.data) == sign, other
        assert math.copysign(1.0, const.data) == sign, other


def test_power_rule_at_a_negative_base_is_nan(Value):
    """d(x ** -0.5)/dx at a negative x is nan, as C's pow gives it, however
    large the power would be (Python's own pow goes complex there)."""
    for x in (-2.0, -7.727771472435112e-286):
        v = Value(1.0)
        y = v ** -0.5
        v.data = x
        y.backward()
        assert math.isnan(v.grad), x


def test_log_rule_at_zero_is_infinite(Value):
    """d(log x)/dx at an x set to +-0 after the op is 1 / x as C computes it:
    +-inf, never ZeroDivisionError; _local_grads says the same."""
    for x, want in ((0.0, math.inf), (-0.0, -math.inf)):
        v = Value(1.0)
        y = v.log()
        v.data = x
        assert list(y._local_grads) == [want]
        y.backward()
        assert v.grad == want


def test_tanh_rule_at_a_huge_output_is_minus_infinity(Value):
    """The lecture's 1 - t**2 at an output whose data was set to 1e300 after
    the op: t**2 overflows to inf as C's pow gives it, so the gradient is
    -inf, never OverflowError; _local_grads says the same."""
    x = Value(0.5)
    t = x.tanh()
    t.data = 1e300
    assert list(t._local_grads) == [-math.inf]
    t.backward()
    assert x.grad == -math.inf


def test_neg_is_multiplication_by_minus_one(Value):
    a = Value(2.0)
    out = -a
    assert out._op == "*"
    assert a in out._prev
    assert sorted(c.data for c in out._prev) == [-1.0, 2.0]


def test_div_is_mul_by_a_power_minus_one(Value):
    a, b = Value(2.0), Value(4.0)
    out = a / b
    assert out._op == "*"
    assert prev_ops(out) == ["", "**-1"]
    (inv,) = [c for c in out._prev if c is not a]
    assert inv._op == "**-1"
    assert inv._prev == {b}
    assert out.data == 0.5


def test_div_by_a_number_multiplies_by_its_reciprocal_leaf(Value):
    # upstream computes other**-1 on the plain number, so a / 2 is a * 0.5
    # with 0.5 a leaf; there is no **-1 node in the graph
    a = Value(3.0)
    out = a / 2
    assert out._op == "*"
    assert a in out._prev
    (half,) = [c for c in out._prev if c is not a]
    assert half._op == "" and half._prev == set()
    assert half.data == 0.5
    assert out.data == 1.5


def test_div_by_a_number_has_upstream_shape(Value):
    upstream = pytest.importorskip("micrograd.engine")

    def shape(v):
        return (v._op, float(v.data), sorted(shape(c) for c in v._prev))

    for divisor in (2, 4.0, -8, 0.25):
        ours = Value(3.0) / divisor
        theirs = upstream.Value(3.0) / divisor
        assert shape(ours) == shape(theirs)


UPSTREAM_SHAPED = {
    "a+b": lambda a, b: a + b,
    "a-b": lambda a, b: a - b,
    "a*b": lambda a, b: a * b,
    "a/b": lambda a, b: a / b,
    "-a": lambda a, b: -a,
    "a+2": lambda a, b: a + 2,
    "2+a": lambda a, b: 2 + a,
    "a-2": lambda a, b: a - 2,
    "2-a": lambda a, b: 2 - a,
    "2*a": lambda a, b: 2 * a,
    "a*2": lambda a, b: a * 2,
    "2/a": lambda a, b: 2 / a,
    "a**3": lambda a, b: a**3,
    "relu": lambda a, b: (a * b).relu(),
}


@pytest.mark.parametrize("name", list(UPSTREAM_SHAPED))
def test_graph_shape_matches_upstream(Value, name):
    upstream = pytest.importorskip("micrograd.engine")

    def shape(v):
        return (v._op, float(v.data), sorted(shape(c) for c in v._prev))

    fn = UPSTREAM_SHAPED[name]
    ours = fn(Value(1.5), Value(-4.0))
    theirs = fn(upstream.Value(1.5), upstream.Value(-4.0))
    assert shape(ours) == shape(theirs)


def test_scalar_on_either_side_becomes_a_leaf(Value):
    a = Value(3.0)
    for out in (a + 5, 5 + a, a * 5, 5 * a):
        assert a in out._prev
        assert sorted(c.data for c in out._prev) == [3.0, 5.0]
        assert all(c._prev == set() for c in out._prev)


def test_rsub_and_rtruediv_shapes(Value):
    a = Value(4.0)
    r = 10 - a
    assert r._op == "+" and prev_ops(r) == ["", "*"]
    assert r.data == 6.0
    q = 10 / a
    assert q._op == "*" and prev_ops(q) == ["", "**-1"]
    assert q.data == 2.5


# --- the Value object itself ----------------------------------------------------


def test_repr(Value):
    v = Value(2.0)
    assert repr(v) == "Value(data=2.0, grad=0.0)"
    w = v * 3
    w.backward()
    assert repr(v) == "Value(data=2.0, grad=3.0)"
    assert repr(w) == "Value(data=6.0, grad=1.0)"


@pytest.mark.parametrize("kind", SCALAR_IDS)
def test_data_and_grad_accept_numbers_and_read_back_as_float(Value, kind):
    make = SCALAR_KINDS[kind]
    v = Value(make(3.0))
    assert type(v.data) is float and v.data == 3.0
    assert type(v.grad) is float and v.grad == 0.0
    v.data = make(5.0)
    assert type(v.data) is float and v.data == 5.0
    v.grad = make(2.0)
    assert type(v.grad) is float and v.grad == 2.0


def test_setting_data_changes_the_next_forward_and_backward(Value):
    w = Value(1.0)
    w.data -= 0.5 * 2  # the optimizer step of a training loop
    assert w.data == 0.0
    x = Value(3.0)
    out = w * x
    out.backward()
    assert out.data == 0.0
    assert x.grad == 0.0 and w.grad == 3.0
    w.grad = 0  # zero_grad
    assert w.grad == 0.0


def test_arbitrary_attributes(Value):
    v = Value(1.0)
    v.m = 0.0
    v.velocity = [1, 2]
    assert v.m == 0.0
    assert v.velocity == [1, 2]
    out = v * 2
    out.note = "hello"
    assert out.note == "hello"


def test_label(Value):
    v = Value(1.0, label="w1")
    assert v.label == "w1"
    v.label = "renamed"
    assert v.label == "renamed"
    u = Value(2.0, (), "", label="u")
    assert u.label == "u"
    assert (u + v).label == ""


def test_prev_is_a_set_of_the_very_same_objects(Value):
    a, b = Value(2.0), Value(3.0)
    out = a * b
    assert isinstance(out._prev, set)
    assert a in out._prev and b in out._prev
    assert {id(c) for c in out._prev} == {id(a), id(b)}
    assert Value(1.0)._prev == set()
    sq = a * a
    assert len(sq._prev) == 1 and next(iter(sq._prev)) is a


def test_children_passed_explicitly(Value):
    a, b = Value(2.0), Value(3.0)
    out = Value(5.0, (a, b), "custom")
    assert out._op == "custom"
    assert out._prev == {a, b}
    assert out.data == 5.0


def test_equality_and_hash_are_identity(Value):
    a, b = Value(1.0), Value(1.0)
    assert a == a
    assert a != b
    assert not (a == b)
    assert len({a, b}) == 2
    assert hash(a) == hash(a)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    assert (a == 1.0) is False


# --- backward entry points ------------------------------------------------------


def test_builtin_sum_starts_from_int_zero(Value):
    xs = [Value(float(k)) for k in range(1, 5)]
    total = sum(xs)
    assert isinstance(total, Value) and total.data == 10.0
    total.backward()
    assert [x.grad for x in xs] == [1.0] * 4


def test_in_place_operators_rebind(Value):
    a = Value(2.0)
    b = a
    b += 1
    b *= 3
    b -= a
    b /= 2
    b **= 2
    assert a.data == 2.0 and b is not a
    b.backward()
    # b = ((3(a+1) - a) / 2)^2 = (a + 1.5)^2
    assert b.data == pytest.approx(12.25)
    assert a.grad == pytest.approx(7.0)


def test_backward_on_a_leaf(Value):
    v = Value(3.0)
    v.backward()
    assert v.grad == 1.0


def test_backward_from_an_inner_node_touches_only_its_subgraph(Value):
    a, b, c = Value(2.0), Value(3.0), Value(4.0)
    inner = a * b
    outer = inner + c
    inner.backward()
    assert (a.grad, b.grad) == (3.0, 2.0)
    assert c.grad == 0.0 and outer.grad == 0.0


def test_a_backward_pass_inside_a_custom_backward(Value):
    """A Python _backward that builds another graph and runs backward() on
    it, in the middle of the outer pass: both passes give their grads."""
    a, b, s = Value(2.0), Value(3.0), Value(5.0)
    c = a * b
    d = c + 1.0
    side_grads = []

    def rule():
        side = s * s * 2.0
        side.backward()
        side_grads.append(s.grad)
        c.grad += d.grad  # d = c + 1

    d._backward = rule
    e = d * a
    e.backward()
    assert side_grads == [20.0]
    # e = (a * b + 1) * a: de/da = 2ab + 1, de/db = a ** 2
    assert (a.grad, b.grad) == (13.0, 4.0)
    e2 = d * b  # and a later pass starts from clean marks
    a.grad = b.grad = c.grad = d.grad = 0.0
    e2.backward()
    assert (a.grad, b.grad) == (9.0, 13.0)


def _chain_pair_grads(Value, variant):
    """acc + w * x, the pair a neuron's chain is made of (its '*' node made
    just before its '+' node), in the ways user code can bend it; returns
    the grads of every node after two passes without zeroing, having
    checked that a later pass from elsewhere leaves the product alone."""
    acc, w, x = Value(0.5), Value(-1.5), Value(2.0)
    m = w * x
    s = acc + m if variant != "both sides" else m + m
    if variant == "own rule on the product":
        def rule():  # the product's built-in rule, doubled
            w.grad += 2 * x.data * m.grad
            x.grad += 2 * w.data * m.grad
        m._backward = rule
    top = s * 3.0
    if variant == "product used again":
        top = top + m * m
    top.backward()
    top.backward()  # grads accumulate, inner ones too, as in micrograd
    grads = [v.grad for v in (acc, w, x, m, s, top)]
    (acc * 2.0).backward()  # a pass that does not reach the product
    assert (w.grad, x.grad, m.grad) == (grads[1], grads[2], grads[3])
    return grads


@pytest.mark.parametrize(
    "variant", ["plain", "own rule on the product", "product used again", "both sides"])
def test_sum_of_a_product_accumulates_as_micrograd_does(Value, variant):
    expected = {  # (micrograd 0.1.0 gives these, root grad set to 1 each pass)
        # s: 3, then 3 + 3; m and acc take s's grad each pass: 3, then 3 + 6;
        # w and x take m's grad times the other's data: 6, then 6 + 18
        "plain": [9.0, 24.0, -18.0, 9.0, 6.0, 1.0],
        "own rule on the product": [9.0, 48.0, -36.0, 9.0, 6.0, 1.0],
        "product used again": [12.0, -18.0, 13.5, -6.0, 9.0, 1.0],
        # s = m + m: m takes s's grad twice each pass
        "both sides": [0.0, 48.0, -36.0, 18.0, 6.0, 1.0],
    }[variant]
    assert _chain_pair_grads(Value, variant) == expected


def _chain_grads(Value, variant):
    """A neuron's chain, b + w0*x0 + w1*x1 + w2*x2 as micrograd's sum()
    builds it, bent by user code in one of its inner sums; the grads of all
    its nodes after two passes without zeroing and a pass from elsewhere."""
    b = Value(0.25)
    ws = [Value(1.5), Value(-2.0), Value(0.5)]
    xs = [Value(3.0), Value(0.75), Value(-1.0)]
    nodes, acc = [], b
    for j, (w, x) in enumerate(zip(ws, xs)):
        if variant == "sum is also a factor" and j == 2:
            product = acc * w  # acc + acc * w: the chain's acc is the product's input
        else:
            product = w * x
        acc = acc + product
        nodes += [product, acc]
    inner = nodes[3]  # the second sum, b + w0*x0 + w1*x1
    if variant == "own rule on an inner sum":
        def rule():  # its built-in rule, halved
            nodes[1].grad += 0.5 * inner.grad
            nodes[2].grad += 0.5 * inner.grad
        inner._backward = rule
    top = acc.relu() * 2.0
    if variant == "inner sum used again":
        top = top + inner * inner
    top.backward()
    top.backward()
    grads = [v.grad for v in [b, *ws, *xs, *nodes, top]]
    (b * 1.0).backward()  # does not reach the chain
    assert [v.grad for v in [b, *ws, *xs, *nodes, top]] == [grads[0] + 1.0, *grads[1:]]
    return grads


CHAIN_VARIANTS = ["plain", "own rule on an inner sum", "inner sum used again",
                  "sum is also a factor"]


@pytest.mark.parametrize("variant", CHAIN_VARIANTS)
def test_a_chain_of_sums_accumulates_as_micrograd_does(Value, variant):
    expected = {  # micrograd 0.1.0's grads for each variant
        "plain": [12.0, 42.0, 9.0, -10.0, 21.0, -24.0, 5.0, 12.0, 10.0, 10.0, 8.0, 8.0,
                  6.0, 1.0],
        "own rule on an inner sum": [6.0, 21.0, 4.5, -10.0, 10.5, -12.0, 5.0, 6.0, 5.0,
                                     5.0, 8.0, 8.0, 6.0, 1.0],
        "inner sum used again": [46.5, 165.0, 34.875, -12.0, 82.5, -93.0, 6.0, 46.5, 38.0,
                                 38.0, 29.5, 10.0, 8.0, 1.0],
        # x2 is left out of the chain: its grad stays 0
        "sum is also a factor": [19.0, 66.0, 14.25, 32.5, 33.0, -38.0, 0.0, 19.0, 16.0,
                                 16.0, 13.0, 8.0, 6.0, 1.0],
    }[variant]
    assert _chain_grads(Value, variant) == expected


def test_grads_accumulate_over_separate_graphs_sharing_a_leaf(Value):
    w = Value(2.0)
    (w * 3).backward()
    (w * w).backward()
    assert w.grad == 7.0


def test_nan_and_inf_data_pass_through(Value):
    nan, inf = float("nan"), float("inf")
    assert math.isnan((Value(nan) + 1).data)
    assert math.isnan(Value(nan).log().data)
    assert (Value(inf) * 2).data == inf
    assert Value(inf).tanh().data == 1.0
    assert Value(-inf).exp().data == 0.0
