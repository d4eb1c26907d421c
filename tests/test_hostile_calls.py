"""Calls that try to break the class call, the short paths and the arena:
a replaced ``__new__`` that hands over to the saved original, subclasses
made while and after it is replaced, local-gradient memory after a huge
node, attribute deletion, and odd numbers and operands in every form of
``Value(...)``, ``a + b`` and ``a * b``.  Each result is compared between
the engines where both can run the test."""

import gc
import weakref

import pytest
from conftest import restore_class_attr


@pytest.fixture
def CompiledOpenValue(compiled_engine):
    """The compiled Value, for tests that replace its __new__ (a Python
    class whose __new__ was replaced cannot be put back: CPython keeps the
    generic slot, and object.__new__ then refuses the arguments)."""
    return compiled_engine.Value


def _counting_new(Value, seen, note):
    """A __new__ that appends note(cls, args) to seen, then hands over to
    the class's saved __new__; and what to restore afterwards."""
    saved = Value.__dict__.get("__new__")
    original = Value.__new__

    def counting_new(cls, *args, **kwargs):
        seen.append(note(cls, args))
        return original(cls)

    return staticmethod(counting_new), saved


# --- a replaced __new__ --------------------------------------------------------------


def test_a_replaced_new_can_hand_over_to_the_saved_original(CompiledOpenValue):
    """A __new__ that wraps the original (counts, then calls the saved
    Value.__new__) makes working Values in every form, and the class works
    as before once the original is back."""
    Value = CompiledOpenValue
    seen = []
    Value.__new__, saved = _counting_new(Value, seen, lambda cls, args: args)
    try:
        a = Value(2.0)
        b = Value(1.5, (a,), (3.0,))
        c = Value(4.0, (a, b), "op", label="c")
    finally:
        restore_class_attr(Value, "__new__", saved)
    assert len(seen) == 3
    assert (a.data, b.data, c.data) == (2.0, 1.5, 4.0)
    assert b._local_grads == (3.0,) and c._op == "op" and c.label == "c"
    b.backward()
    assert a.grad == 3.0
    d = Value(5.0) * a
    assert d.data == 10.0 and len(seen) == 3


def test_subclasses_are_made_while_and_after_new_is_replaced(CompiledOpenValue):
    """Subclasses defined before and after a replacement of __new__ run the
    replacement while it is there, and are made as before as soon as the
    original is back, before any call of Value itself."""
    Value = CompiledOpenValue

    class Before(Value):
        pass

    seen = []
    Value.__new__, saved = _counting_new(Value, seen, lambda cls, args: cls)
    try:
        class During(Value):
            pass

        made = [Before(1.0), During(2.0)]
    finally:
        restore_class_attr(Value, "__new__", saved)

    class After(Value):
        pass

    assert seen == [Before, During]
    for cls, x in ((Before, 3.0), (During, 4.0), (After, 5.0)):
        v = cls(x)
        assert type(v) is cls and v.data == x
        assert (v * 2.0).data == 2 * x
    assert [type(v) for v in made] == [Before, During] and made[1].data == 2.0
    assert len(seen) == 2


@pytest.mark.parametrize("args", [(), (5,), (int,)])
def test_value_new_refuses_what_is_not_a_value_class(Value, args):
    with pytest.raises(TypeError):
        Value.__new__(*args)


def test_value_new_makes_a_handle_of_the_class_asked_for(Value):
    """Value.__new__(cls) gives an uninitialised object of cls, which
    __init__ then sets up (what pickling a subclass does)."""
    class Sub(Value):
        pass

    s = Value.__new__(Sub)
    assert type(s) is Sub
    Value.__init__(s, 2.5)
    assert s.data == 2.5 and (s * 2).data == 5.0


# --- memory --------------------------------------------------------------------------


def test_a_huge_local_node_does_not_hold_its_memory(compiled_engine):
    """The local derivatives of a huge Value(data, children, local_grads)
    node are given back once it is gone, as its edges are: the arena's
    bytes come back to what they were."""
    E = compiled_engine
    Value = E.Value
    a = Value(1.0)
    # what earlier tests left (cycles the collector has not reached yet
    # hold nodes too): the baseline, once it has settled
    for _ in range(2):
        gc.collect()
        base = E.compact()
    n = 1 << 19
    big = Value(2.0, (a,) * n, (0.5,) * n)
    assert E.arena_stats()["local_grads"] >= n
    big.backward()
    assert a.grad == 0.5 * n
    del big
    for _ in range(3):
        junk = [Value(1.0) * a for _ in range(1000)]
        del junk
        gc.collect()
        stats = E.compact()
    assert stats["local_grads"] <= base["local_grads"] and stats["edges"] <= base["edges"]
    # (the node had 6 MiB of edges and local derivatives)
    assert stats["bytes"] < base["bytes"] + (1 << 20)


@pytest.mark.parametrize("form", ["leaf", "float subclass leaf", "one child", "eight children",
                                  "nine children", "list arguments", "labelled", "attribute",
                                  "closure", "subclass node", "sum with a float subclass",
                                  "product with a float subclass"])
def test_making_values_in_a_loop_keeps_memory_flat(compiled_engine, form):
    """100 000 Values of each form, each dropped before the next is made
    (Python state included), after as many to reach a steady state: the
    arena keeps its size and what it holds, and nothing else grows."""
    import tracemalloc

    E = compiled_engine
    Value = E.Value

    class F(float):
        pass

    class Sub(Value):
        pass

    a, b = Value(1.0), Value(2.0)

    def make():
        if form == "leaf":
            return Value(1.5)
        if form == "float subclass leaf":
            return Value(F(1.5))
        if form == "one child":
            return Value(2.0, (a,), (1.0,))
        if form == "eight children":
            return Value(2.0, (a, b) * 4, (1.0,) * 8)
        if form == "nine children":
            return Value(2.0, (a, b) * 4 + (a,), (1.0,) * 9)
        if form == "list arguments":
            return Value(2.0, [a, b], [1.0, 2.0])
        if form == "labelled":
            return Value(1.0, (a,), (1.0,), label="x")
        if form == "attribute":
            v = Value(1.0)
            v.note = [1]
            return v
        if form == "closure":
            v = a * b
            v._backward = lambda: v
            return v
        if form == "subclass node":
            return Sub(1.0, (a,), (1.0,))
        if form == "sum with a float subclass":
            return a + F(2.0)
        return F(2.0) * a

    for _ in range(100000):
        make()
    gc.collect()
    start = E.arena_stats()  # the arena's arrays have their steady sizes
    tracemalloc.start()
    try:
        for _ in range(100000):
            make()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    end = E.arena_stats()
    assert end["compactions"] > start["compactions"]
    assert end["bytes"] <= start["bytes"]
    assert end["handles"] <= start["handles"] + 1 and end["pinned"] <= start["pinned"]
    # a leak of even 16 bytes a Value would be 1.6 MB (a shrunk array of
    # the arena is a new block: up to a few hundred KB)
    assert grown < (1 << 20)


# --- deleting attributes -------------------------------------------------------------


@pytest.mark.parametrize("name", ["data", "grad", "_op", "_prev", "_children", "_local_grads"])
def test_deleting_a_property_is_an_attribute_error(Value, name):
    """del v.data (and the other read-only or computed attributes) raises
    AttributeError, as for any property without a deleter, and changes
    nothing."""
    a = Value(2.0)
    v = a * 3.0
    v.grad = 0.5
    with pytest.raises(AttributeError):
        delattr(v, name)
    assert (v.data, v.grad, v._op) == (6.0, 0.5, "*")
    assert v._children[0] is a and v._local_grads == (3.0, 2.0)


# --- attributes that reach a handle without a setattr -------------------------------


def _churn(Value):
    """Enough short-lived nodes for several reclamations."""
    for _ in range(3):
        junk = [Value(1.0) * Value(2.0) for _ in range(70000)]
        del junk
    gc.collect()


@pytest.mark.parametrize("form", ["product", "node form"])
def test_attributes_written_into_a_dict_taken_earlier_stay_with_the_child(Value, form):
    """d = a.__dict__ taken while a has no attributes, then a becomes a
    child, then d['tag'] = ...: the parent still reaches a with its
    attribute after a's name is dropped."""
    a = Value(1.0)
    d = a.__dict__
    p = a * 2 if form == "product" else Value(2.0, (a,), (2.0,))
    d["tag"] = "w"
    del a, d
    _churn(Value)
    assert p._children[0].tag == "w"
    p.backward()
    assert p._children[0].grad == 2.0


def test_a_cycle_through_an_attribute_dict_is_collected(Value):
    """A Value set up again by __init__ while it has an (empty) attribute
    dict, which then refers back to it: the cycle is garbage once the name
    is dropped."""
    v = Value(1.0)
    d = v.__dict__
    Value.__init__(v, 2.0)
    d["me"] = v
    ref = weakref.ref(v)
    del v, d
    gc.collect()
    assert ref() is None


# --- odd numbers in every form ------------------------------------------------------


class _LoudFloat(float):
    """A float subclass whose methods would give other numbers, and record
    that they ran."""

    calls = []

    def __float__(self):
        self.calls.append("__float__")
        return 99.0

    def __index__(self):
        self.calls.append("__index__")
        return 7

    def __eq__(self, other):
        self.calls.append("__eq__")
        return True

    def __hash__(self):
        self.calls.append("__hash__")
        return 1


class _WithFloat:
    def __float__(self):
        return 2.5


class _WithIndex:
    def __index__(self):
        return 11


class _FloatRaises:
    def __float__(self):
        raise ValueError("no number here")


class _IntSubclass(int):
    pass


class _IntOwnFloat(int):
    """An int whose float is another number (upstream negates the int)."""

    def __float__(self):
        return 0.5


def _odd_numbers():
    from fractions import Fraction

    import numpy as np

    return [
        _IntOwnFloat(3), Fraction(1, 3),
        -0.0, float("nan"), float("inf"), 3, True, False, 10**400, -(10**400), 2**53 + 1,
        2**1023 * 2 - 1, _LoudFloat(2.5), _IntSubclass(5), _WithFloat(), _WithIndex(),
        _FloatRaises(), np.float64(1.25), np.float32(0.1), np.int64(7), np.bool_(True),
        np.float16(0.5), "1.0", b"1", None, 1j, [1.0], (1.0,),
    ]


_FORMS = {
    "Value(x)": lambda V, x: V(x),
    "Value(x, label)": lambda V, x: V(x, label="x"),
    "node with x as data": lambda V, x: V(x, (V(2.0),), (1.0,)),
    "node with x as local grad": lambda V, x: V(1.0, (V(2.0),), (x,)),
    "node with x as two local grads": lambda V, x: V(1.0, (V(2.0), V(3.0)), (x, x)),
    "node with x as three local grads": lambda V, x: V(1.0, (V(2.0),) * 3, (x,) * 3),
    "node with x as nine local grads": lambda V, x: V(1.0, (V(2.0),) * 9, [x] * 9),
    "a + x": lambda V, x: V(2.0) + x,
    "x + a": lambda V, x: x + V(2.0),
    "a * x": lambda V, x: V(2.0) * x,
    "x * a": lambda V, x: x * V(2.0),
    "a - x": lambda V, x: V(2.0) - x,
    "x - a": lambda V, x: x - V(2.0),
    "a / x": lambda V, x: V(2.0) / x,
    "x / a": lambda V, x: x / V(2.0),
    "a ** x": lambda V, x: V(2.0) ** x,
    "x ** a": lambda V, x: x ** V(2.0),
    "v.data = x": lambda V, x: _stored(V, "data", x),
    "v.grad = x": lambda V, x: _stored(V, "grad", x),
}


def _stored(V, name, x):
    v = V(1.0) * 1.0
    setattr(v, name, x)
    return v


def _outcome(V, make, x):
    """What make(V, x) gives: its node's numbers, or the exception type."""
    try:
        v = make(V, x)
    except Exception as e:  # the type is what must agree
        return type(e)
    return (repr(v.data), repr(v.grad), v._op, [repr(g) for g in v._local_grads],
            type(v.data), len(v._children))


@pytest.mark.parametrize("form", list(_FORMS))
def test_odd_numbers_give_what_the_pure_engine_gives(compiled_engine, pure_engine, form):
    """Each odd number (float and int subclasses, numpy scalars, objects
    with __float__ or __index__, huge ints, NaN, non-numbers) makes the
    same node or raises the same exception in both engines, in every form
    of the class call and of + and *, and in data/grad stores."""
    make = _FORMS[form]
    for x in _odd_numbers():
        c = _outcome(compiled_engine.Value, make, x)
        py = _outcome(pure_engine.Value, make, x)
        assert c == py, (form, x)


def test_a_float_subclass_is_read_without_calling_its_methods(Value):
    """Data, local derivatives and operands that are float subclasses are
    the doubles they hold: none of their Python methods runs."""
    F = _LoudFloat
    F.calls = []
    a = Value(2.0)
    assert Value(F(1.5)).data == 1.5
    assert Value(F(1.5), (a,), (F(3.0),))._local_grads == (3.0,)
    assert Value(F(1.5), (a, a, a), [F(1.0)] * 3)._local_grads == (1.0, 1.0, 1.0)
    assert (a + F(2.5)).data == 4.5 and (F(2.5) + a).data == 4.5
    assert (a * F(2.5)).data == 5.0 and (F(2.5) * a).data == 5.0
    v = Value(1.0)
    v.data = F(4.5)
    v.grad = F(0.25)
    assert (v.data, v.grad) == (4.5, 0.25) and type(v.data) is float
    assert F.calls == []


# --- Python code that runs in the middle of things -----------------------------------


def _program(Value, steps):
    """A small graph of every construction form, built and differentiated
    `steps` times; the data and gradients of each step."""
    out = []
    for k in range(steps):
        a = Value(0.5 + k, label="a")
        a._backward = lambda: None
        b = Value(2.0, (a,), (3.0,))
        c = Value(1.0, (a, b, a), (1.0, 2.0, 3.0))
        d = c * 2 + b * a
        e = Value(d.data, (d, c), [0.5, 0.25])
        e.backward()
        out.append([(v.data, v.grad) for v in (a, b, c, d, e)])
    return out


def test_gc_callbacks_and_finalizers_that_build_graphs_change_nothing(engine, Value):
    """Cyclic-GC callbacks and weakref finalizers that make Values, run
    backward passes and read _prev, _children and _local_grads while the
    program makes its own nodes: the program's numbers are those of a run
    without them, and the arena stays consistent."""
    expected = _program(Value, 40)
    seen = []

    building = [False]

    def build():
        building[0] = True  # the Values made here get no finalizers
        try:
            vs = [Value(float(i)) for i in range(30)]
            s = vs[0]
            for v in vs[1:]:
                s = s * v + Value(1.0, (v,), (0.5,))
            s.backward()
            for v in seen[-3:]:
                v._prev, v._children, v._local_grads
        finally:
            building[0] = False

    runs = [0]

    def on_gc(phase, info):
        if phase == "start":
            runs[0] += 1
            build()

    original = Value.__init__

    def init_with_finalizer(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if building[0]:
            return
        seen.append(self)
        if len(seen) % 7 == 0:
            weakref.finalize(self, build)
        del seen[:-20]

    gc.callbacks.append(on_gc)
    old = gc.get_threshold()
    gc.set_threshold(100, 5, 5)
    try:
        got = _program(Value, 40)
        gc.collect()
    finally:
        gc.set_threshold(*old)
        gc.callbacks.remove(on_gc)
    assert got == expected and runs[0] >= 2
    seen.clear()
    if engine.COMPILED:
        assert engine._check_invariants()
    Value.__init__ = init_with_finalizer
    try:
        got = _program(Value, 40)
    finally:
        Value.__init__ = original
    seen.clear()
    gc.collect()
    assert got == expected
    if engine.COMPILED:
        assert engine._check_invariants()


@pytest.mark.parametrize("variant", ["set a rule below", "nested backward", "many new nodes",
                                     "set up a child again", "rule writes grads"])
def test_python_rules_that_change_the_graph_mid_backward(compiled_engine, pure_engine, variant):
    """A Python _backward that, while the pass runs, gives another node a
    Python rule, runs a backward pass of its own, makes enough nodes to
    fill the arena, sets a child up again or writes grads: both engines
    give the same gradients."""
    def run(V):
        log = []
        a, b = V(2.0), V(-3.0)
        c = a * b
        d = V(1.5, (c, a), (2.0, 0.5))
        e = d + b
        f = e * e
        mid = d * 3.0
        g = f + mid

        def rule():
            log.append("rule")
            if variant == "set a rule below":
                def below():
                    log.append("below")
                    a.grad += 100.0
                c._backward = below
            elif variant == "nested backward":
                (a * b).backward()
            elif variant == "many new nodes":
                junk = [V(float(i)) * V(1.0) for i in range(70000)]
                del junk
                gc.collect()
            elif variant == "set up a child again":
                try:  # b has been a child: refused while the pass runs
                    V.__init__(b, 7.0)
                except RuntimeError:
                    log.append("refused")
            d.grad += e.grad
            b.grad += e.grad

        e._backward = rule
        if variant == "rule writes grads":
            def overwrite():
                log.append("overwrite")
                mid.grad = 10.0
                d.grad += 3.0 * mid.grad
            mid._backward = overwrite
        g.backward()
        return [v.grad for v in (a, b, c, d, e, f, g)], log

    result = run(compiled_engine.Value)
    assert result == run(pure_engine.Value)
    assert ("refused" in result[1]) == (variant == "set up a child again")
    assert compiled_engine._check_invariants()
