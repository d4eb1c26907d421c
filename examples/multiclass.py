"""Three classes in the plane: softmax cross-entropy and AdamW on micrograd_fast.

A small MLP (micrograd_fast.nn, two tanh hidden layers and a linear output
layer) maps a 2-D point to three scores (logits).  The loss is the
cross-entropy of the softmax of those scores, built here from Value.exp and
Value.log, so backward() differentiates through the softmax too.  Parameters
are updated with micrograd_fast.optim.AdamW (Adam with decoupled weight decay).

    python examples/multiclass.py
    python examples/multiclass.py --steps 200 --hidden 24
    MICROGRAD_FAST_NO_EXTENSIONS=1 python examples/multiclass.py --steps 30
"""

import argparse
import math
import random

import micrograd_fast
from micrograd_fast import COMPILED
from micrograd_fast.nn import MLP
from micrograd_fast.optim import AdamW

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


# -- loss -------------------------------------------------------------------------
def cross_entropy(logits, target):
    """-log softmax(logits)[target], as a Value.

    The largest logit is subtracted first (a plain number, so no gradient
    flows through it) to keep exp from overflowing; the result is the same.
    """
    top = max(v.data for v in logits)
    shifted = [v - top for v in logits]
    log_norm = micrograd_fast.sum([v.exp() for v in shifted]).log()
    return log_norm - shifted[target]


def batch_loss(model, points, labels):
    losses, correct = [], 0
    for x, y in zip(points, labels):
        logits = model(x)
        losses.append(cross_entropy(logits, y))
        best = max(range(N_CLASSES), key=lambda k: logits[k].data)
        correct += best == y
    mean_loss = micrograd_fast.sum(losses) * (1.0 / len(losses))
    return mean_loss, correct / len(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--points", type=int, default=60, help="per class")
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    points, labels = make_pinwheel(args.points, rng)
    split = int(0.8 * len(points))
    train_x, train_y = points[:split], labels[:split]
    val_x, val_y = points[split:], labels[split:]

    # nn.MLP draws its initial weights from the random module, like micrograd
    random.seed(args.seed)
    model = MLP(2, [args.hidden, args.hidden, N_CLASSES], act="tanh", out_act="linear")
    opt = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                weight_decay=args.weight_decay)
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
