"""The two expressions of upstream micrograd's engine tests, checked against
PyTorch (float64) and against upstream micrograd itself."""

import pytest


def sanity_expression(x):
    """relu, products and sums of a single input; returns the output."""
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    return h + q + q * x


def more_ops_expression(a, b):
    """Exercises every upstream operator, with in-place rebinding."""
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def _torch_leaf(torch, x):
    return torch.tensor([x], dtype=torch.float64, requires_grad=True)


def test_sanity_expression_matches_torch_bit_for_bit(Value):
    torch = pytest.importorskip("torch")

    x = Value(-4.0)
    y = sanity_expression(x)
    y.backward()

    tx = _torch_leaf(torch, -4.0)
    ty = sanity_expression(tx)
    ty.backward()

    assert y.data == ty.data.item()
    assert x.grad == tx.grad.item()
    # the numbers themselves, so a broken oracle cannot hide a bug
    assert y.data == -20.0
    assert x.grad == 46.0


def test_more_ops_expression_matches_torch(Value):
    torch = pytest.importorskip("torch")

    a, b = Value(-4.0), Value(2.0)
    g = more_ops_expression(a, b)
    g.backward()

    ta, tb = _torch_leaf(torch, -4.0), _torch_leaf(torch, 2.0)
    tg = more_ops_expression(ta, tb)
    tg.backward()

    tol = 1e-6
    assert abs(g.data - tg.data.item()) < tol
    assert abs(a.grad - ta.grad.item()) < tol
    assert abs(b.grad - tb.grad.item()) < tol
    assert g.data == pytest.approx(24.70408163265306, abs=tol)
    assert a.grad == pytest.approx(138.83381924198252, abs=tol)
    assert b.grad == pytest.approx(645.5772594752186, abs=tol)


def test_sanity_expression_matches_upstream_micrograd(Value):
    upstream = pytest.importorskip("micrograd.engine")

    x = Value(-4.0)
    y = sanity_expression(x)
    y.backward()

    ux = upstream.Value(-4.0)
    uy = sanity_expression(ux)
    uy.backward()

    assert y.data == uy.data
    assert x.grad == ux.grad


def test_more_ops_expression_matches_upstream_micrograd(Value):
    upstream = pytest.importorskip("micrograd.engine")

    a, b = Value(-4.0), Value(2.0)
    g = more_ops_expression(a, b)
    g.backward()

    ua, ub = upstream.Value(-4.0), upstream.Value(2.0)
    ug = more_ops_expression(ua, ub)
    ug.backward()

    assert g.data == pytest.approx(ug.data, rel=1e-12)
    assert a.grad == pytest.approx(ua.grad, rel=1e-12)
    assert b.grad == pytest.approx(ub.grad, rel=1e-12)
    assert isinstance(g.data, float) and isinstance(a.grad, float)
