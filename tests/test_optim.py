"""micrograd_fast.optim: SGD, Adam, AdamW against manual updates and PyTorch."""

import math
import random

import numpy as np
import pytest

from micrograd_fast import nn
from micrograd_fast.optim import SGD, Adam, AdamW


def _problem(engine, seed=0):
    random.seed(seed)
    model = nn.MLP(3, [4, 1], act="tanh", engine=engine)
    xs = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-1.0, 1.0, 1.0]]
    ys = [1.0, -1.0, 0.5]
    return model, xs, ys


def _loss(model, xs, ys):
    return sum((model(x) - y) ** 2 for x, y in zip(xs, ys))


def test_sgd_without_momentum_is_the_manual_update(engine):
    m1, xs, ys = _problem(engine)
    m2, _, _ = _problem(engine)
    opt = SGD(m1.parameters(), lr=0.05)
    for _ in range(10):
        opt.zero_grad()
        _loss(m1, xs, ys).backward()
        opt.step()
        m2.zero_grad()
        _loss(m2, xs, ys).backward()
        for p in m2.parameters():
            p.data -= 0.05 * p.grad
    assert [p.data for p in m1.parameters()] == [p.data for p in m2.parameters()]


def test_optimizers_take_a_module_and_find_the_engine(engine):
    m, xs, ys = _problem(engine)
    opt = Adam(m)
    assert opt.engine is engine
    assert len(opt.params) == len(m.parameters())
    _loss(m, xs, ys).backward()
    opt.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())


def test_optimizer_argument_errors(engine):
    m, _, _ = _problem(engine)
    with pytest.raises(ValueError):
        SGD([], lr=0.1)
    with pytest.raises(TypeError):
        SGD([1.0, 2.0], lr=0.1)
    with pytest.raises(ValueError):
        SGD(m.parameters(), lr=-1.0)
    with pytest.raises(ValueError):
        Adam(m.parameters(), betas=(1.0, 0.9))
    with pytest.raises(TypeError):
        Adam(m.parameters(), lr="fast")


def test_optimizer_refuses_values_of_another_engine(engine):
    import micrograd_fast._engine_py as py

    m, _, _ = _problem(engine)
    if engine is py:
        pytest.skip("needs two different engines")
    with pytest.raises(TypeError):
        SGD(m.parameters() + [py.Value(1.0)], lr=0.1)


def _torch_run(torch, model, xs, ys, make_opt, steps):
    seq = model.to_torch()
    opt = make_opt(seq.parameters())
    X = torch.tensor(xs, dtype=torch.float64)
    Y = torch.tensor(ys, dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((seq(X).squeeze(1) - Y) ** 2).sum()
        loss.backward()
        opt.step()
    return np.concatenate(
        [np.concatenate([mod.weight.detach().numpy(), mod.bias.detach().numpy()[:, None]], 1).ravel()
         for mod in seq if isinstance(mod, torch.nn.Linear)]
    )


def _ours_run(model, xs, ys, opt, steps):
    for _ in range(steps):
        opt.zero_grad()
        _loss(model, xs, ys).backward()
        opt.step()
    return model.parameters_array()


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda p: SGD(p, lr=0.02, momentum=0.9),
            lambda torch, p: torch.optim.SGD(p, lr=0.02, momentum=0.9),
        ),
        (
            lambda p: Adam(p, lr=0.01),
            lambda torch, p: torch.optim.Adam(p, lr=0.01),
        ),
        (
            lambda p: Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
            lambda torch, p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
        ),
        (
            lambda p: AdamW(p, lr=0.01, weight_decay=0.05),
            lambda torch, p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.95), weight_decay=0.05),
        ),
        (
            lambda p: AdamW(p),
            lambda torch, p: torch.optim.AdamW(p, lr=0.1, betas=(0.9, 0.95), weight_decay=0.0),
        ),
    ],
    ids=["sgd-momentum", "adam", "adam-l2", "adamw", "adamw-defaults"],
)
def test_matches_torch_optim(engine, ours, theirs):
    torch = pytest.importorskip("torch")
    model, xs, ys = _problem(engine, seed=3)
    # the network's parameters() order is per neuron (w..., b); the torch
    # side is flattened the same way: per row of W, then its bias
    expected = _torch_run(torch, model, xs, ys, lambda p: theirs(torch, p), 25)
    got = _ours_run(model, xs, ys, ours(model.parameters()), 25)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11)


def test_adamw_matches_its_formula_bit_for_bit(engine):
    model, xs, ys = _problem(engine, seed=5)
    params = model.parameters()
    opt = AdamW(params, lr=0.03, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    ref = [p.data for p in params]
    m = [0.0] * len(params)
    v = [0.0] * len(params)
    for t in range(1, 6):
        model.zero_grad()
        _loss(model, xs, ys).backward()
        grads = [p.grad for p in params]
        opt.step()
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + (1.0 - 0.9) * g
            v[i] = 0.95 * v[i] + (1.0 - 0.95) * (g * g)
            mhat = m[i] / (1.0 - 0.9**t)
            vhat = v[i] / (1.0 - 0.95**t)
            ref[i] = ref[i] - 0.03 * (mhat / (math.sqrt(vhat) + 1e-8) + 0.01 * ref[i])
        assert [p.data for p in params] == ref
