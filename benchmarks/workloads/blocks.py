"""The batch call (one block per layer, ``model(X)``): the moons demo's step
and a step on scikit-learn's digits, each against the same step written the
usual way in PyTorch."""

from benchmarks.workloads.registry import Skip, record, workload
from benchmarks.workloads.torch_demo import sequential_model
from benchmarks.workloads.training import (demo_record, demo_sizes, initial_weights,
                                           notebook_data, run_steps)

NO_BATCH = {"micrograd": "upstream micrograd has no batch call"}
DIGITS_SAMPLES = 256
DIGITS_SIZES = [64, 64, 64, 10]
DIGITS_LR = 0.05


@workload("ms/step", "demo step with the batch call: model(X) on the NumPy data (one "
          "block per layer), hinge loss with micrograd_fast.sum, L2 as "
          "optim.SGD(weight_decay), opt.zero_grad(), opt.step(); torch: nn.Sequential, "
          "the same loss, torch.optim.SGD(weight_decay)", excluded=NO_BATCH)
def demo_step_batch(engine, size):
    """The demo's step as a batch call: ``scores = model(X)`` with ``X`` the
    (points, 2) float64 array, ``relu(1 - y * score)`` averaged with
    ``vsum``, the L2 term ``L2_ALPHA * sum(p * p)`` given as its gradient by
    ``optim.SGD(params, lr, weight_decay=2 * L2_ALPHA)``, ``zero_grad``,
    ``backward``, the demo's learning-rate schedule, ``step``.  torch: the
    same in ``nn.Sequential`` float64 with ``torch.optim.SGD``."""
    from micrograd_fast.lab.demo import L2_ALPHA, learning_rate

    X, y = notebook_data(size)
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    ys = [float(v) for v in y]
    if engine.name == "torch":
        import torch

        torch.set_num_threads(1)
        model = sequential_model(sizes, flat)
        opt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=2 * L2_ALPHA)
        Xt, Yt = torch.from_numpy(X), torch.tensor(ys, dtype=torch.float64)

        def step(k):
            scores = model(Xt).squeeze(1)
            loss = torch.relu(1 - Yt * scores).mean()
            accuracy = ((Yt > 0) == (scores > 0)).double().mean().item()
            opt.zero_grad()
            loss.backward()
            for group in opt.param_groups:
                group["lr"] = learning_rate(k)
            opt.step()
            return loss.item(), accuracy
    else:
        from micrograd_fast import nn, optim

        E = engine.module
        model = nn.MLP(sizes[0], sizes[1:], engine=E)
        for p, w in zip(model.parameters(), flat):
            p.data = w
        opt = optim.SGD(model.parameters(), lr=1.0, weight_decay=2 * L2_ALPHA)
        scale = 1.0 / len(ys)

        def step(k):
            scores = model(X)
            loss = E.vsum([(1 + -yi * si).relu() for yi, si in zip(ys, scores)]) * scale
            accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(ys, scores)) / len(ys)
            opt.zero_grad()
            loss.backward()
            opt.lr = learning_rate(k)
            opt.step()
            return loss.data, accuracy

    samples, first = run_steps(step, size)
    return [demo_record(samples, None, sizes, flat, len(ys), first, "batch call")]


def digits_data():
    """The first 256 of scikit-learn's digits, scaled to [0, 1], and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise Skip(f"scikit-learn is not installed ({exc})") from exc
    import numpy as np

    d = load_digits()
    X = np.ascontiguousarray(d.data[:DIGITS_SAMPLES] / 16.0, dtype=np.float64)
    return X, [int(t) for t in d.target[:DIGITS_SAMPLES]]


@workload("ms/step", "digits step: MLP(64, [64, 64, 10]) on 256 of scikit-learn's digits, "
          "one full-batch step, softmax cross-entropy from Value ops (exp, log, "
          "micrograd_fast.sum, the row's largest logit subtracted); torch: nn.Sequential, F.cross_entropy, torch.optim.SGD",
          excluded={**NO_BATCH, "reference": "the pure engine takes seconds per step here "
                    "(tests check its batch call equal to the compiled one)"})
def digits_step(engine, size):
    """One full-batch SGD step of ``MLP(64, [64, 64, 10])`` (ReLU hidden
    layers, micrograd's uniform initial weights) on the first 256 digits:
    ``logits = model(X)``, per sample ``log(sum(exp(l - m))) + m - l[target]``
    with ``m`` the row's largest logit as a number (the usual guard against
    ``exp`` overflowing), averaged with ``vsum``,
    ``opt.zero_grad()``, ``backward()``, ``opt.step()``.  torch: the same
    model as ``nn.Sequential`` in float64, ``F.cross_entropy``."""
    X, targets = digits_data()
    sizes = DIGITS_SIZES
    flat = initial_weights(sizes)
    if engine.name == "torch":
        import torch

        torch.set_num_threads(1)
        model = sequential_model(sizes, flat)
        opt = torch.optim.SGD(model.parameters(), lr=DIGITS_LR)
        Xt, T = torch.from_numpy(X), torch.tensor(targets)

        def step(k):
            logits = model(Xt)
            loss = torch.nn.functional.cross_entropy(logits, T)
            accuracy = (logits.argmax(1) == T).double().mean().item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item(), accuracy
    else:
        from micrograd_fast import nn, optim

        E = engine.module
        vsum = E.vsum
        model = nn.MLP(sizes[0], sizes[1:], engine=E)
        for p, w in zip(model.parameters(), flat):
            p.data = w
        opt = optim.SGD(model.parameters(), lr=DIGITS_LR)
        scale = 1.0 / len(targets)

        def step(k):
            logits = model(X)
            losses = []
            for row, t in zip(logits, targets):
                m = max(v.data for v in row)
                losses.append(vsum([(v - m).exp() for v in row]).log() + (m - row[t]))
            loss = vsum(losses) * scale
            accuracy = sum(max(range(10), key=lambda j: row[j].data) == t
                           for row, t in zip(logits, targets)) / len(targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.data, accuracy

    samples, first = run_steps(step, size)
    return [demo_record(samples, None, sizes, flat, len(targets), first, "digits")]
