"""A Hessian-vector product of a small MLP's loss, with micrograd_fast.grad.

H v, the Hessian of the loss times a direction v, without ever forming H:
g = grad(loss, params, create_graph=True) is the gradient as a graph, and
grad(g, params, grad_outputs=v) differentiates g . v once more.  The product
is checked against finite differences of the gradient; then the loss's
curvature along its own gradient, g.Hg / g.g, says how long a step along
the gradient can be (1 / curvature: the step a Newton method would take
along that line).

    python examples/hessian_vector.py
    python examples/hessian_vector.py --points 100
    MICROGRAD_FAST_NO_EXTENSIONS=1 python examples/hessian_vector.py
"""

import argparse
import math
import random

import micrograd_fast
from micrograd_fast.datasets import make_moons
from micrograd_fast.nn import MLP


def loss_of(model, xs, ys):
    """The demo's SVM max-margin loss (mean hinge), with tanh units."""
    scores = [model(x) for x in xs]
    losses = [(1 + -y * s).relu() for y, s in zip(ys, scores)]
    return micrograd_fast.sum(losses) * (1.0 / len(losses))


def hvp(model, xs, ys, v):
    params = model.parameters()
    g = micrograd_fast.grad(loss_of(model, xs, ys), params, create_graph=True)
    return [h.data for h in micrograd_fast.grad(g, params, v)]


def gradient_at(model, xs, ys, shift):
    """The loss's gradient with every parameter moved by shift (numbers)."""
    params = model.parameters()
    saved = [p.data for p in params]
    for p, s in zip(params, shift):
        p.data += s
    g = [d.data for d in micrograd_fast.grad(loss_of(model, xs, ys), params)]
    for p, d in zip(params, saved):
        p.data = d
    return g


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=40, help="moons points")
    args = parser.parse_args(argv)

    random.seed(1337)
    X, y = make_moons(args.points, noise=0.1, random_state=1)
    xs = [list(map(float, row)) for row in X]
    ys = [2 * int(label) - 1 for label in y]
    model = MLP(2, [16, 16, 1], act="tanh")
    n = len(model.parameters())
    engine = "compiled" if micrograd_fast.COMPILED else "pure"
    print(f"MLP(2, [16, 16, 1]) with tanh, {n} parameters, {args.points} points ({engine} engine)")

    rng = random.Random(0)
    v = [rng.gauss(0.0, 1.0) for _ in range(n)]
    hv = hvp(model, xs, ys, v)
    eps = 1e-5
    plus = gradient_at(model, xs, ys, [eps * x for x in v])
    minus = gradient_at(model, xs, ys, [-eps * x for x in v])
    fd = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
    err = norm([a - b for a, b in zip(hv, fd)]) / norm(fd)
    print(f"|Hv| = {norm(hv):.6f}; relative difference from finite differences: {err:.1e}")
    assert err < 1e-5, err

    # the curvature along the gradient, and the step it suggests
    params = model.parameters()
    loss = loss_of(model, xs, ys)
    g = [d.data for d in micrograd_fast.grad(loss, params)]
    hg = hvp(model, xs, ys, g)
    curvature = sum(a * b for a, b in zip(g, hg)) / sum(a * a for a in g)
    print(f"loss {loss.data:.6f}; curvature along the gradient g.Hg / g.g = {curvature:.6f}")
    if curvature > 0:
        lr = 1.0 / curvature
        after = gradient_step_loss(model, xs, ys, g, lr)
        print(f"a step of 1 / curvature = {lr:.4f} along -g: loss {after:.6f}")
    else:
        print("the loss bends downward along the gradient here: no Newton step along it "
              "(a plain gradient step is safe to lengthen, at first)")


def gradient_step_loss(model, xs, ys, g, lr):
    """The loss after a step of lr along -g (the parameters are put back)."""
    params = model.parameters()
    saved = [p.data for p in params]
    for p, d in zip(params, g):
        p.data -= lr * d
    after = loss_of(model, xs, ys).data
    for p, d in zip(params, saved):
        p.data = d
    return after

if __name__ == "__main__":
    main()
