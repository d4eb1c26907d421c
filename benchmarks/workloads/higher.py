"""Gradients of gradients: a Hessian-vector product of the demo's loss,
``grad(loss, params, create_graph=True)`` then a second ``grad`` of the
gradient along a direction, on each engine and in PyTorch."""

import random

from benchmarks.timing import Samples
from benchmarks.workloads.registry import record, workload
from benchmarks.workloads.torch_demo import sequential_model
from benchmarks.workloads.training import (demo_sizes, initial_weights, native_factory,
                                           notebook_data, tuned_data)

NO_SECOND = {"micrograd": "upstream micrograd has no gradients of gradients"}


def _direction(n):
    rng = random.Random(7)
    return [rng.uniform(-1.0, 1.0) for _ in range(n)]


def _repeats(size):
    return max(3, size["demo_steps"])


@workload("ms/HVP", "Hessian-vector product of the demo's loss: grad(loss, params, "
          "create_graph=True), then grad of the gradient along a direction (the loss "
          "graph built once, outside the timing); torch: the same two "
          "torch.autograd.grad calls on nn.Sequential", excluded=NO_SECOND)
def hessian_vector(engine, size):
    """The demo's loss (micrograd_fast.nn.MLP, hinge loss plus L2, tuned
    data) built once; each repeat takes its gradient as a graph and then
    the gradient of that graph's dot product with a fixed direction, over
    every parameter.  torch: the same model as ``nn.Sequential`` in float64,
    ``torch.autograd.grad(loss, params, create_graph=True, retain_graph=True)``
    then ``torch.autograd.grad(grads, params, direction, retain_graph=True)``."""
    if engine.name == "torch":
        return _torch_hvp(size)
    from micrograd_fast.lab.demo import evaluate

    grad = engine.module.grad
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    model = native_factory(engine)(sizes)
    params = model.parameters()
    for p, w in zip(params, flat):
        p.data = w
    xs, labels = tuned_data(size)
    loss, _ = evaluate(model, engine.Value, xs, labels, engine.module.vsum)
    v = _direction(len(params))
    samples = Samples()
    out = []

    def hvp():
        g = grad(loss, params, create_graph=True)
        out[:] = grad(g, params, v)

    hvp()  # warm-up
    for _ in range(_repeats(size)):
        samples.time(hvp)
    return [record(samples, None, samples.median * 1e3, parameters=len(params),
                   points=len(xs), hv_norm=sum(h.data * h.data for h in out) ** 0.5)]


def _torch_hvp(size):
    import numpy as np
    import torch

    from micrograd_fast.lab.demo import L2_ALPHA

    torch.set_num_threads(1)
    X_np, y_np = notebook_data(size)
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    model = sequential_model(sizes, flat)
    params = list(model.parameters())
    X = torch.from_numpy(X_np)
    y = torch.from_numpy(y_np).double()
    scores = model(X).squeeze(1)
    loss = torch.relu(1 - y * scores).mean() + L2_ALPHA * sum((p * p).sum() for p in params)
    # the direction laid out as the weights are: per layer, neuron by
    # neuron, its weights then its bias (micrograd's parameters() order)
    n = len(flat)
    direction = np.array(_direction(n))
    v, i = [], 0
    for lin in (m for m in model if isinstance(m, torch.nn.Linear)):
        nout, nin = lin.weight.shape
        block = direction[i:i + nout * (nin + 1)].reshape(nout, nin + 1)
        v += [torch.from_numpy(block[:, :nin].copy()), torch.from_numpy(block[:, nin].copy())]
        i += nout * (nin + 1)
    samples = Samples()
    out = []

    def hvp():
        g = torch.autograd.grad(loss, params, create_graph=True, retain_graph=True)
        out[:] = torch.autograd.grad(g, params, v, retain_graph=True)

    hvp()
    for _ in range(_repeats(size)):
        samples.time(hvp)
    norm = float(sum((h * h).sum() for h in out)) ** 0.5
    return [record(samples, None, samples.median * 1e3, parameters=n, points=len(X_np),
                   hv_norm=norm, threads=torch.get_num_threads())]
