"""Errors are Python's own, and the engine keeps working after every one."""

import pytest


def assert_engine_still_works(Value):
    a, b = Value(1.5), Value(-2.0)
    out = (a * b + a**2).tanh() + b.exp() - a / b
    out.backward()
    assert out.grad == 1.0
    assert a.grad != 0.0 and b.grad != 0.0
    c = Value(3.0)
    (c * c).backward()
    assert c.grad == 6.0


@pytest.mark.parametrize("bad", ["abc", None, 1 + 2j, b"1", [1.0], object()],
                         ids=["str", "None", "complex", "bytes", "list", "object"])
def test_construction_refuses_non_real_data(Value, bad):
    with pytest.raises(TypeError):
        Value(bad)
    assert_engine_still_works(Value)


@pytest.mark.parametrize("bad", ["x", None, 1j])
def test_setting_data_or_grad_to_a_non_number(Value, bad):
    v = Value(2.0)
    with pytest.raises(TypeError):
        v.data = bad
    assert v.data == 2.0
    with pytest.raises(TypeError):
        v.grad = bad
    assert v.grad == 0.0
    (v * 4).backward()
    assert v.grad == 4.0


def test_non_value_children_are_refused(Value):
    with pytest.raises(TypeError):
        Value(3.0, (1, 2), "op")
    with pytest.raises(TypeError):
        Value(3.0, (Value(1.0), "x"), "op")
    assert_engine_still_works(Value)


def test_division_by_zero(Value):
    v = Value(3.0)
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1
    with pytest.raises(ZeroDivisionError):
        v / 0
    with pytest.raises(ZeroDivisionError):
        v / 0.0
    with pytest.raises(ZeroDivisionError):
        v / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        1.0 / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** Value(-2.0)
    # the Value that took part is unharmed
    (v * 2).backward()
    assert v.grad == 2.0
    assert_engine_still_works(Value)


@pytest.mark.parametrize("x", [-1.0, 0.0, -1e-300])
def test_log_of_a_non_positive_value(Value, x):
    with pytest.raises(ValueError):
        Value(x).log()
    assert_engine_still_works(Value)


def test_negative_base_with_a_fractional_exponent(Value):
    with pytest.raises(ValueError):
        Value(-8.0) ** 0.5
    with pytest.raises(ValueError):
        Value(-8.0) ** Value(1 / 3)
    with pytest.raises(ValueError):
        (-2.0) ** Value(0.5)
    # integral exponents of a negative base are fine
    assert (Value(-2.0) ** 3).data == -8.0
    assert (Value(-2.0) ** Value(2.0)).data == 4.0
    assert_engine_still_works(Value)


def test_overflow(Value):
    with pytest.raises(OverflowError):
        Value(1e200) ** 2
    with pytest.raises(OverflowError):
        Value(1000.0).exp()
    with pytest.raises(OverflowError):
        Value(1e200) ** Value(2.0)
    with pytest.raises(OverflowError):
        10.0 ** Value(400.0)
    assert_engine_still_works(Value)


def test_float_multiplication_overflows_to_inf_like_python(Value):
    out = Value(1e200) * Value(1e200)
    assert out.data == float("inf")


def test_operators_with_strings(Value):
    v = Value(2.0)
    with pytest.raises(TypeError):
        v + "a"
    with pytest.raises(TypeError):
        "a" + v
    with pytest.raises(TypeError):
        "a" * v
    with pytest.raises(TypeError):
        v * "a"
    with pytest.raises(TypeError):
        v ** "a"
    with pytest.raises(TypeError):
        "a" ** v
    with pytest.raises(TypeError):
        v - "a"
    with pytest.raises(TypeError):
        "a" - v
    with pytest.raises(TypeError):
        v / "a"
    with pytest.raises(TypeError):
        "a" / v
    with pytest.raises(TypeError):
        v + None
    (v + 1).backward()
    assert v.grad == 1.0
    assert_engine_still_works(Value)


def test_error_while_building_leaves_earlier_graph_usable(Value):
    a = Value(2.0)
    partial = a * 3 + 1
    with pytest.raises(ZeroDivisionError):
        partial / Value(0.0)
    with pytest.raises(ValueError):
        (partial - 100).log()
    partial.backward()
    assert partial.data == 7.0
    assert a.grad == 3.0
