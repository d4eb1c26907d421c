"""Handles are recycled and data/grad stores have a short path: neither
may change what a Value does.  Every test runs on both engines."""

import gc
import sys
import weakref

import pytest


@pytest.fixture
def OpenValue(engine, Value):
    if engine.COMPILED and sys.version_info < (3, 10):
        pytest.skip("Python 3.9 refuses attributes on static extension types")
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
