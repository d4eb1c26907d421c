"""Three classes in the plane: softmax cross-entropy and AdamW on micrograd_fast.

A small MLP maps a 2-D point to three scores (logits).  The loss is the
cross-entropy of the softmax of those scores, built from Value.exp and
Value.log, so backward() differentiates through the softmax too.  Parameters
are updated with AdamW (Adam with decoupled weight decay), written out below.

    python examples/multiclass.py
    python examples/multiclass.py --steps 200 --hidden 24
    MICROGRAD_FAST_NO_EXTENSIONS=1 python examples/multiclass.py --steps 30
"""

import argparse
import math
import random

from micrograd_fast import COMPILED, Value

N_CLASSES = 3


# -- data: three noisy arms of a pinwheel ----------------------------------------
def make_pinwheel(n_per_class, rng):
    """Points along three curved arms, one class per arm, with some noise."""
    points, labels = [], []
    for k in range(N_CLASSES):
        for i in range(n_per_class):
            r = 0.2 + 0.8 * i / n_per_class  # out from the centre
            angle = 2 * math.pi * k / N_CLASSES + 4.0 * r  # the arm curls
            angle += rng.gauss(0.0, 0.3)
            points.append([r * math.cos(angle), r * math.sin(angle)])
            labels.append(k)
    order = list(range(len(points)))
    rng.shuffle(order)
    return [points[i] for i in order], [labels[i] for i in order]


# -- model ------------------------------------------------------------------------
class Linear:
    def __init__(self, nin, nout, rng):
        scale = 1.0 / math.sqrt(nin)
        self.w = [[Value(rng.uniform(-scale, scale)) for _ in range(nin)]
                  for _ in range(nout)]
        self.b = [Value(0.0) for _ in range(nout)]

    def __call__(self, x):
        out = []
        for row, b in zip(self.w, self.b):
            s = b
            for wi, xi in zip(row, x):
                s = s + wi * xi
            out.append(s)
        return out

    def parameters(self):
        return [w for row in self.w for w in row] + self.b


class Classifier:
    """2 -> hidden (tanh) -> hidden (tanh) -> 3 logits."""

    def __init__(self, hidden, rng):
        self.layers = [Linear(2, hidden, rng), Linear(hidden, hidden, rng),
                       Linear(hidden, N_CLASSES, rng)]

    def __call__(self, x):
        x = [Value(v) for v in x]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = [v.tanh() for v in x]
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


# -- loss -------------------------------------------------------------------------
def cross_entropy(logits, target):
    """-log softmax(logits)[target], as a Value.

    The largest logit is subtracted first (a plain number, so no gradient
    flows through it) to keep exp from overflowing; the result is the same.
    """
    top = max(v.data for v in logits)
    shifted = [v - top for v in logits]
    log_norm = sum(v.exp() for v in shifted).log()
    return log_norm - shifted[target]


def batch_loss(model, points, labels):
    losses, correct = [], 0
    for x, y in zip(points, labels):
        logits = model(x)
        losses.append(cross_entropy(logits, y))
        best = max(range(N_CLASSES), key=lambda k: logits[k].data)
        correct += best == y
    return sum(losses) * (1.0 / len(losses)), correct / len(labels)


# -- optimizer ----------------------------------------------------------------------
class AdamW:
    """Adam's moment estimates with weight decay applied to the weights
    directly (decoupled), not through the gradient."""

    def __init__(self, params, lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-4):
        self.params = params
        self.lr, self.eps, self.weight_decay = lr, eps, weight_decay
        self.beta1, self.beta2 = betas
        self.m = [0.0] * len(params)  # running mean of the gradient
        self.v = [0.0] * len(params)  # running mean of its square
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = 0.0

    def step(self):
        self.t += 1
        fix1 = 1.0 - self.beta1 ** self.t  # bias corrections for the zero start
        fix2 = 1.0 - self.beta2 ** self.t
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g
            m_hat, v_hat = self.m[i] / fix1, self.v[i] / fix2
            p.data -= self.lr * (m_hat / (math.sqrt(v_hat) + self.eps)
                                 + self.weight_decay * p.data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--points", type=int, default=60, help="per class")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    points, labels = make_pinwheel(args.points, rng)
    split = int(0.8 * len(points))
    train_x, train_y = points[:split], labels[:split]
    val_x, val_y = points[split:], labels[split:]

    model = Classifier(args.hidden, rng)
    opt = AdamW(model.parameters(), lr=args.lr)
    print(f"{'compiled core' if COMPILED else 'pure-Python engine'}: "
          f"{len(model.parameters())} parameters, {len(train_x)} training and "
          f"{len(val_x)} validation points, {N_CLASSES} classes")

    for step in range(args.steps):
        loss, acc = batch_loss(model, train_x, train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            val_loss, val_acc = batch_loss(model, val_x, val_y)
            print(f"step {step:4d}  train loss {loss.data:.4f} acc {acc:6.1%}"
                  f"   val loss {val_loss.data:.4f} acc {val_acc:6.1%}")


if __name__ == "__main__":
    main()
