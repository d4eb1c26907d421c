"""Handles are recycled and data/grad stores have a short path: neither may
change what a Value does.  Reads of data and grad follow Python's attribute
rules through any change to the class.  Every test runs on both engines."""

import gc
import weakref

import pytest


@pytest.fixture
def OpenValue(Value):
    return Value


# --- stores of data and grad ---------------------------------------------------


@pytest.mark.parametrize("number", [0, 1, -7, 2**53 + 1, -(2**63), 10**300, True, 2.5, -0.0,
                                    float("inf")])
def test_stores_convert_numbers_as_float_does(Value, number):
    v = Value(1.0) * 2.0  # a node with children, as parameters and outputs are
    for _ in range(3):  # repeated stores, as a training loop makes them
        v.grad = number
        v.data = number
        assert v.grad == float(number) and type(v.grad) is float
        assert v.data == float(number) and type(v.data) is float


def test_stores_refuse_what_they_refused(Value):
    v = Value(1.5)
    v.grad = 0.25
    with pytest.raises(OverflowError):
        v.grad = 10**400
    with pytest.raises(OverflowError):
        v.data = -(10**400)
    for bad in ("1.0", None, 1j, [1.0]):
        with pytest.raises(TypeError):
            v.grad = bad
        with pytest.raises(TypeError):
            v.data = bad
    assert (v.data, v.grad) == (1.5, 0.25)


def test_a_store_on_an_uninitialized_handle_raises(engine, Value):
    v = Value.__new__(Value)
    if engine.COMPILED:
        with pytest.raises(RuntimeError):
            v.grad = 0
        with pytest.raises(RuntimeError):
            v.data = 1.0


def test_stores_reach_the_node_seen_by_backward(Value):
    w = Value(3.0)
    x = Value(2.0)
    for step in range(3):
        w.grad = 0  # an int, as training loops write it
        y = w * x + 1.0
        y.backward()
        assert w.grad == 2.0
        w.data = w.data - 0.5 * w.grad
    assert w.data == 0.0


def test_stores_follow_a_replaced_descriptor(OpenValue):
    Value = OpenValue
    seen = []
    own = Value.__dict__["grad"]

    class Recording:
        def __get__(self, obj, cls=None):
            return own.__get__(obj, cls)

        def __set__(self, obj, value):
            seen.append(value)
            own.__set__(obj, 2 * value)

    v = Value(1.0) * 1.0
    v.grad = 1.0  # the short path warmed up first
    Value.grad = Recording()
    try:
        v.grad = 3.0
        v.grad = 4
        assert seen == [3.0, 4]
        assert v.grad == 8.0
    finally:
        Value.grad = own
    v.grad = 5
    assert v.grad == 5.0 and seen == [3.0, 4]


def test_stores_on_a_subclass_with_its_own_property(Value):
    class Clamped(Value):
        @property
        def grad(self):
            return Value.grad.__get__(self)

        @grad.setter
        def grad(self, value):
            Value.grad.__set__(self, max(-1.0, min(1.0, value)))

    c = Clamped(0.0)
    c.grad = 5
    assert c.grad == 1.0
    plain = Value(0.0)
    plain.grad = 5
    assert plain.grad == 5.0


def test_stores_on_a_handle_with_attributes(Value):
    v = Value(1.0) * 2.0
    v.note = "kept"
    v.grad = 3
    v.data = 4
    assert (v.data, v.grad, v.note) == (4.0, 3.0, "kept")


# --- reads of data and grad -----------------------------------------------------


def test_reads_give_the_node_s_floats(Value):
    v = Value(1.5) * 2.0
    for _ in range(3):  # repeated reads, as a training loop makes them
        assert v.data == 3.0 and type(v.data) is float
        assert v.grad == 0.0 and type(v.grad) is float
    assert getattr(v, "data") == 3.0 and getattr(v, "grad") == 0.0


def test_grad_reads_after_backward(Value):
    a, b = Value(2.0), Value(-3.0)
    for _ in range(2):
        a.grad = b.grad = 0
        y = a * b + a
        y.backward()
        assert (a.grad, b.grad, y.grad) == (-2.0, 2.0, 1.0)
        assert all(type(g) is float for g in (a.grad, b.grad, y.grad))
        assert getattr(a, "grad") == -2.0


def test_a_read_on_an_uninitialized_handle_raises(Value):
    v = Value.__new__(Value)
    for name in ("data", "grad"):
        with pytest.raises((RuntimeError, AttributeError)):
            getattr(v, name)


def test_an_instance_dict_entry_does_not_hide_data_or_grad(Value):
    v = Value(1.0) * 2.0
    v.__dict__["data"] = "shadow"
    v.__dict__["grad"] = "shadow"
    assert (v.data, v.grad) == (2.0, 0.0)
    assert (getattr(v, "data"), getattr(v, "grad")) == (2.0, 0.0)


def test_reads_through_other_spellings_of_the_name(Value):
    class Name(str):
        pass

    v = Value(0.5) * 3.0
    v.grad = 0.25
    built = "".join(["da", "ta"])  # equal to "data", not the same object
    assert getattr(v, built) == 1.5
    assert getattr(v, Name("data")) == 1.5
    assert getattr(v, Name("grad")) == 0.25
    assert getattr(v, Name("_op")) == v._op
    with pytest.raises(AttributeError):
        getattr(v, Name("no_such_attribute"))


def test_other_attributes_read_as_before(Value):
    a = Value(2.0, label="a")
    b = Value(3.0)
    c = a * b
    c.label = "c"
    c.note = "kept"
    assert c._op == "*" and c._prev == {a, b}
    assert (a.label, b.label, c.label) == ("a", "", "c")
    assert c.note == "kept" and getattr(c, "note") == "kept"
    assert not hasattr(b, "note")
    with pytest.raises(AttributeError):
        b.note
    assert callable(c.backward) and c.relu().data == 6.0


def test_reads_follow_a_replaced_property(OpenValue):
    Value = OpenValue
    own_data, own_grad = Value.__dict__["data"], Value.__dict__["grad"]
    v = Value(1.0) * 4.0
    v.grad = 0.5
    for _ in range(3):  # the short path warmed up first
        assert (v.data, v.grad) == (4.0, 0.5)
    Value.data = property(lambda self: -1.0)
    try:
        assert v.data == -1.0 and getattr(v, "data") == -1.0
        assert v.grad == 0.5
        assert Value(7.0).data == -1.0
    finally:
        Value.data = own_data
    assert (v.data, v.grad) == (4.0, 0.5)
    Value.grad = property(lambda self: "replaced")
    try:
        assert v.grad == "replaced" and v.data == 4.0
    finally:
        Value.grad = own_grad
    assert (v.data, v.grad) == (4.0, 0.5)
    v.data = 2
    assert v.data == 2.0


def test_reads_after_data_became_a_plain_class_attribute(OpenValue):
    Value = OpenValue
    own = Value.__dict__["data"]
    v = Value(1.0) * 4.0
    w = Value(1.0) * 5.0
    assert (v.data, w.data) == (4.0, 5.0)
    Value.data = 9.0  # not a descriptor: an instance dict entry wins now
    try:
        w.__dict__["data"] = "mine"
        assert v.data == 9.0 and w.data == "mine"
    finally:
        Value.data = own
    assert (v.data, w.data) == (4.0, 5.0)
    del Value.data
    try:
        with pytest.raises(AttributeError):
            v.data
        assert w.data == "mine"
    finally:
        Value.data = own
    assert (v.data, w.data) == (4.0, 5.0)


def test_reads_on_a_subclass_overriding_data(Value):
    class Doubled(Value):
        @property
        def data(self):
            return 2 * Value.data.__get__(self)

    class Plain(Value):
        pass

    d, p, v = Doubled(1.5), Plain(1.5), Value(1.5)
    for _ in range(3):
        assert (d.data, p.data, v.data) == (3.0, 1.5, 1.5)
        assert getattr(d, "data") == 3.0 and d.grad == 0.0
    p.grad = 0.25
    assert p.grad == 0.25 and getattr(p, "grad") == 0.25


# --- recycled handles ---------------------------------------------------------


def test_handles_made_after_stateful_ones_died_start_clean(Value):
    calls = []
    for k in range(300):
        a = Value(1.0 + k) * 2.0
        a.label = f"a{k}"
        a.extra = k
        a._backward = lambda: calls.append(1)
        r = weakref.ref(a)
        b = a + 1.0
        del a, b, r
    gc.collect()
    fresh = [Value(0.5) * float(k) for k in range(3000)]
    for k, v in enumerate(fresh):
        assert v.label == ""
        assert not hasattr(v, "extra")
        assert v.data == 0.5 * k and v.grad == 0.0
        assert weakref.ref(v)() is v
    fresh[7].backward()
    assert calls == []


def test_recycled_handles_keep_their_graphs(Value):
    x = Value(2.0)
    total = Value(0.0)
    for k in range(5000):
        t = x * float(k % 7)  # dropped at once: its handle is recycled
        total = total + t
    total.backward()
    assert total.data == 2.0 * sum(k % 7 for k in range(5000))
    assert x.grad == float(sum(k % 7 for k in range(5000)))


def test_results_are_values_whatever_died_before(Value):
    class Sub(Value):
        pass

    subs = [Sub(float(k)) for k in range(100)]
    del subs
    never_initialized = [Value.__new__(Value) for _ in range(100)]
    del never_initialized
    gc.collect()
    a = Value(1.0)
    outs = [a * float(k) for k in range(200)]
    assert all(type(o) is Value for o in outs)
    assert [o.data for o in outs] == [float(k) for k in range(200)]


def test_sums_and_products_of_every_kind_of_operand_make_the_same_node(Value):
    """a + b and a * b have a short path for two plain Values; labelled
    Values, Values with attributes, subclass instances and a Value used
    twice give the same nodes, data and gradients."""

    class Sub(Value):
        pass

    def operands():
        plain = Value(1.5)
        labelled = Value(1.5, label="x")
        with_attr = Value(1.5)
        with_attr.note = "kept"
        yield plain, Value(-2.0)
        yield labelled, Value(-2.0)
        yield with_attr, Value(-2.0)
        yield Sub(1.5), Value(-2.0)
        yield Value(-2.0), Sub(1.5)
        twice = Value(1.5)
        yield twice, twice

    for x, y in operands():
        s, p = x + y, x * y
        assert (s._op, p._op) == ("+", "*")
        assert set(s._prev) == {x, y} and set(p._prev) == {x, y}
        assert s.data == x.data + y.data and p.data == x.data * y.data
        (s + p).backward()
        if x is y:
            assert x.grad == 1.0 + 1.0 + 2 * x.data
        else:
            assert x.grad == 1.0 + y.data and y.grad == 1.0 + x.data


def test_sums_and_products_with_a_number_in_either_order(Value):
    """Value + number, number + Value, and the same for *: a new leaf holds
    the number, the Value is the first child, whatever the order (floats,
    float subclasses such as NumPy's float64, ints, bools)."""
    class F(float):
        pass

    numbers = [2.5, 3, -0.0, True, 2**60, F(0.1)]
    try:
        import numpy
    except ImportError:
        pass
    else:
        numbers += [numpy.float64(0.1), numpy.int64(3)]
    for c in numbers:
        x = Value(1.5)
        outs = [x + c, c + x, x * c, c * x]
        for out, op in zip(outs, "++**"):
            assert out._op == op
            first, leaf = out._children
            assert first is x and leaf.data == float(c) and not leaf._prev
        assert [o.data for o in outs] == [1.5 + c, c + 1.5, 1.5 * c, c * 1.5]
        sum(outs).backward()
        assert x.grad == 2.0 + 2.0 * float(c)
    with pytest.raises(OverflowError):
        Value(1.5) + 10**400
    with pytest.raises(OverflowError):
        10**400 * Value(1.5)


def test_values_made_from_every_kind_of_number(Value):
    """Value(data) and the node form read a float, a float subclass (NumPy's
    float64 among them), an int and a bool alike; the result is a leaf (or
    a local-gradient node) holding the same double."""
    class F(float):
        pass

    numbers = [0.1, F(0.1), 3, True, -0.0, 2**60]
    try:
        import numpy
    except ImportError:
        pass
    else:
        numbers += [numpy.float64(0.1), numpy.int64(3)]
    x = Value(2.0)
    for c in numbers:
        leaf = Value(c)
        assert type(leaf.data) is float and leaf.data == float(c) and not leaf._prev
        node = Value(c, (x,), (c,))
        assert node.data == float(c) and node._local_grads == (float(c),)
        assert node._children == (x,)
        x.grad = 0.0
        node.backward()
        assert x.grad == float(c)


def test_a_float_subclass_is_the_double_it_holds(Value):
    """A float subclass counts as the double it holds, as its arithmetic
    does (upstream keeps it as data and computes with that double), even
    when its __float__ says otherwise; both engines alike."""
    class Odd(float):
        def __float__(self):
            return 99.0

    x = Value(1.5)
    assert Value(Odd(2.0)).data == 2.0
    assert (x * Odd(2.0)).data == 3.0 and (Odd(2.0) + x).data == 3.5
    node = Value(Odd(0.5), (x,), (Odd(4.0),))
    assert node.data == 0.5 and node._local_grads == (4.0,)
    v = Value(0.0)
    v.data = Odd(7.0)
    v.grad = Odd(8.0)
    assert (v.data, v.grad) == (7.0, 8.0)
