"""Calls that try to break the class call, the short paths and the arena:
a replaced ``__new__`` that hands over to the saved original, subclasses
made while and after it is replaced, local-gradient memory after a huge
node, attribute deletion, and odd numbers and operands in every form of
``Value(...)``, ``a + b`` and ``a * b``.  Each result is compared between
the engines where both can run the test."""

import gc
import sys
import weakref

import pytest


@pytest.fixture
def CompiledOpenValue(compiled_engine):
    """The compiled Value, for tests that replace its __new__ (a Python
    class whose __new__ was replaced cannot be put back: CPython keeps the
    generic slot, and object.__new__ then refuses the arguments)."""
    if sys.version_info < (3, 10):
        pytest.skip("Python 3.9 refuses attributes on static extension types")
    return compiled_engine.Value


def _restore(cls, name, saved):
    if saved is None:
        delattr(cls, name)
    else:
        setattr(cls, name, saved)


# --- a replaced __new__ --------------------------------------------------------------


def test_a_replaced_new_can_hand_over_to_the_saved_original(CompiledOpenValue):
    """A __new__ that wraps the original (counts, then calls the saved
    Value.__new__) makes working Values in every form, and the class works
    as before once the original is back."""
    Value = CompiledOpenValue
    saved = Value.__dict__.get("__new__")
    original = Value.__new__
    seen = []

    def counting_new(cls, *args, **kwargs):
        seen.append(args)
        return original(cls)

    Value.__new__ = staticmethod(counting_new)
    try:
        a = Value(2.0)
        b = Value(1.5, (a,), (3.0,))
        c = Value(4.0, (a, b), "op", label="c")
    finally:
        _restore(Value, "__new__", saved)
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

    saved = Value.__dict__.get("__new__")
    original = Value.__new__
    seen = []

    def counting_new(cls, *args, **kwargs):
        seen.append(cls)
        return original(cls)

    Value.__new__ = staticmethod(counting_new)
    try:
        class During(Value):
            pass

        made = [Before(1.0), During(2.0)]
    finally:
        _restore(Value, "__new__", saved)

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
