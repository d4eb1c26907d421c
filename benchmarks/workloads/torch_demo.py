"""The demo's step in PyTorch, for the comparison: hand-written on tensors
(beside the tuned step) and written the usual way with ``nn.Sequential`` and
``optim.SGD`` (beside demo.ipynb's loop)."""

from benchmarks.workloads.training import (demo_record, demo_sizes, initial_weights,
                                           notebook_data, run_steps, tuned_data)

__all__ = ["tensor_step", "usual_step", "sequential_model"]


def tensor_step(size):
    """The tuned step by hand on float64 tensors: the weight matrices,
    ``h @ W.T + b``, ``torch.relu``, ``p.grad = None``, the update under
    ``torch.no_grad()``."""
    import torch

    from micrograd_fast.lab.demo import L2_ALPHA, learning_rate

    torch.set_num_threads(1)
    xs, ys = tuned_data(size)
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    X = torch.tensor(xs, dtype=torch.float64)
    Y = torch.tensor(ys, dtype=torch.float64)
    params, layers, i = [], [], 0
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        block = torch.tensor(flat[i:i + nout * (nin + 1)], dtype=torch.float64)
        block = block.reshape(nout, nin + 1)
        W = block[:, :nin].clone().requires_grad_(True)
        b = block[:, nin].clone().requires_grad_(True)
        layers.append((W, b))
        params.extend((W, b))
        i += nout * (nin + 1)

    def step(k):
        h = X
        for j, (W, b) in enumerate(layers):
            h = h @ W.T + b
            if j < len(layers) - 1:
                h = torch.relu(h)
        scores = h[:, 0]
        data_loss = torch.relu(1 - Y * scores).mean()
        reg_loss = L2_ALPHA * sum((p * p).sum() for p in params)
        total = data_loss + reg_loss
        accuracy = ((Y > 0) == (scores > 0)).double().mean().item()
        for p in params:
            p.grad = None
        total.backward()
        lr = learning_rate(k)
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        return total.item(), accuracy

    samples, first = run_steps(step, size)
    return [demo_record(samples, None, sizes, flat, len(xs), first, "tensor",
                        threads=torch.get_num_threads())]


def sequential_model(sizes, flat):
    """The demo's MLP as ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` in
    float64, loaded with ``flat`` (the weights in MLP.parameters() order:
    per neuron, its weights then its bias), as every other engine is."""
    import numpy as np
    import torch

    layers = []
    for j, (nin, nout) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(nin, nout))
        if j < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        i = 0
        for lin in (m for m in model if isinstance(m, torch.nn.Linear)):
            nout, nin = lin.weight.shape
            block = np.array(flat[i:i + nout * (nin + 1)]).reshape(nout, nin + 1)
            lin.weight.copy_(torch.from_numpy(block[:, :nin]))
            lin.bias.copy_(torch.from_numpy(block[:, nin]))
            i += nout * (nin + 1)
    return model


def usual_step(size):
    """The demo's model and loss in PyTorch written the usual way:
    ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` in float64, tensors from
    the NumPy data, ``optimizer.zero_grad()``, ``backward()``, the rate set
    in the optimizer's param group and ``optimizer.step()`` (SGD)."""
    import torch

    from micrograd_fast.lab.demo import L2_ALPHA, learning_rate

    torch.set_num_threads(1)
    X_np, y_np = notebook_data(size)
    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    model = sequential_model(sizes, flat)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    X = torch.from_numpy(X_np)
    y = torch.from_numpy(y_np).double()

    def step(k):
        scores = model(X).squeeze(1)
        data_loss = torch.relu(1 - y * scores).mean()
        reg_loss = L2_ALPHA * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = ((y > 0) == (scores > 0)).double().mean().item()
        optimizer.zero_grad()
        total_loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(k)
        optimizer.step()
        return total_loss.item(), accuracy

    samples, first = run_steps(step, size)
    return [demo_record(samples, None, sizes, flat, len(X_np), first,
                        "nn.Sequential + optim.SGD", threads=torch.get_num_threads())]
