"""Backpropagation from scratch, replayed on micrograd_fast.

Follows the lecture "the spelled-out intro to neural networks and
backpropagation" section by section:

 1. a derivative by nudging the input
 2. a small expression graph (a, b, c, e, d, f, L)
 3. its gradients filled in by hand with the chain rule, then by backward()
 4. a neuron with tanh, once with tanh as one op and once spelled out with exp
 5. backward() written out: topological order, then local rules in reverse
 6. why gradients must accumulate (a node used twice)
 7. a small tanh MLP(3, [4, 4, 1]) fitted to four examples

    python examples/lecture.py                  # the compiled core
    MICROGRAD_FAST_NO_EXTENSIONS=1 python examples/lecture.py   # pure Python
    python examples/lecture.py --graphs out/    # also draw the graphs (SVG)
"""

import argparse
import math
import os
import random

from micrograd_fast import COMPILED, Value


def section(title):
    print()
    print(f"== {title}")


def save_graph(root, directory, name):
    """Draw ``root`` into directory/name.svg when --graphs was given."""
    if directory is None:
        return
    from micrograd_fast import draw_dot

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name + ".svg")
    with open(path, "wb") as f:
        f.write(draw_dot(root).pipe(format="svg"))
    print(f"   (graph written to {path})")


# 1 -------------------------------------------------------------------------
def slope_by_nudging():
    section("1. a derivative is the slope you see when you nudge the input")

    def f(x):
        return 3 * x**2 - 4 * x + 5

    h = 1e-6
    for x in (3.0, -3.0, 2 / 3):
        slope = (f(x + h) - f(x)) / h
        print(f"   f(x) = 3x^2 - 4x + 5 at x = {x:.4f}: slope ~ {slope:.5f}"
              f"   (exactly 6x - 4 = {6 * x - 4:.5f})")


# 2 and 3 -------------------------------------------------------------------------
def build_expression():
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return a, b, c, e, d, f, L


def expression_by_hand(graphs):
    section("2. a tiny expression: L = (a*b + c) * f")
    a, b, c, e, d, f, L = build_expression()
    for v in (a, b, c, e, d, f, L):
        print(f"   {v.label} = {v.data}")

    section("3. its gradients, by hand with the chain rule, then by backward()")
    # going backwards from L: each gradient is (gradient of the node above)
    # times (local derivative of that node with respect to this input)
    L.grad = 1.0
    d.grad = L.grad * f.data  # L = d * f  ->  dL/dd = f
    f.grad = L.grad * d.data  # dL/df = d
    e.grad = d.grad * 1.0  # d = e + c  ->  a plus passes the gradient through
    c.grad = d.grad * 1.0
    a.grad = e.grad * b.data  # e = a * b  ->  de/da = b
    b.grad = e.grad * a.data
    by_hand = [v.grad for v in (a, b, c, e, d, f)]
    print("   by hand:     " + ", ".join(f"{v.label}.grad={v.grad}" for v in (a, b, c, e, d, f)))

    a, b, c, e, d, f, L = build_expression()
    L.backward()
    by_engine = [v.grad for v in (a, b, c, e, d, f)]
    print("   backward():  " + ", ".join(f"{v.label}.grad={v.grad}" for v in (a, b, c, e, d, f)))
    assert by_hand == by_engine

    # one step of "gradient ascent": nudge every leaf along its gradient
    step = 0.01
    for leaf in (a, b, c, f):
        leaf.data += step * leaf.grad
    print(f"   after nudging the leaves along their gradients, L goes from -8.0 to "
          f"{((a * b + c) * f).data:.4f}")
    save_graph(L, graphs, "expression")


# 4 ---------------------------------------------------------------------------------
def neuron(spelled_out):
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")  # chosen so the outputs are round
    n = x1 * w1 + x2 * w2 + b
    n.label = "n"
    if spelled_out:
        # tanh(n) = (e^2n - 1) / (e^2n + 1), built from exp, +, -, /
        e2n = (2 * n).exp()
        o = (e2n - 1) / (e2n + 1)
    else:
        o = n.tanh()
    o.label = "o"
    o.backward()
    return o, (x1, x2, w1, w2)


def tanh_neuron(graphs):
    section("4. a neuron: o = tanh(x1*w1 + x2*w2 + b), tanh as one op and spelled out")
    for spelled_out in (False, True):
        o, inputs = neuron(spelled_out)
        how = "tanh via exp, +, -, /" if spelled_out else "tanh as one op       "
        grads = ", ".join(f"{v.label}.grad={v.grad:.4f}" for v in inputs)
        print(f"   {how}: o = {o.data:.4f}; {grads}")
        save_graph(o, graphs, "neuron_exp" if spelled_out else "neuron_tanh")
    print("   same numbers: the chain rule does not care how finely an op is cut up")
    print(f"   (check: do/dn = 1 - o^2 = {1 - math.tanh(0.8813735870195432) ** 2:.4f})")


# 5 ---------------------------------------------------------------------------------
def topological_order(root):
    """Every node after all of its inputs (iterative depth-first search)."""
    order, done, stack = [], set(), [(root, False)]
    while stack:
        v, inputs_done = stack.pop()
        if inputs_done:
            order.append(v)
            continue
        if id(v) in done:
            continue
        done.add(id(v))
        stack.append((v, True))
        for child in v._prev:
            if id(child) not in done:
                stack.append((child, False))
    return order


def backward_written_out():
    section("5. backward() written out: topological order, then each local rule")
    o, inputs = neuron(spelled_out=False)
    for v in inputs:  # forget what neuron() computed; do it again by hand
        v.grad = 0.0
    order = topological_order(o)
    for v in order:
        v.grad = 0.0
    print("   topological order: " + " -> ".join(
        (v.label or v._op or "const") for v in order))
    o.grad = 1.0
    for v in reversed(order):
        v._backward()  # the node's local chain rule, pushing into its inputs
    print("   gradients: " + ", ".join(f"{v.label}.grad={v.grad:.4f}" for v in inputs))


# 6 ---------------------------------------------------------------------------------
def accumulation():
    section("6. a node used twice: its gradients must add up")
    a = Value(3.0, label="a")
    b = a + a  # db/da = 2, one 1 from each use
    b.backward()
    print(f"   b = a + a: a.grad = {a.grad} (1 from each of the two uses)")
    x, y = Value(-2.0, label="x"), Value(3.0, label="y")
    d = x * y
    e = x + y
    f = d * e
    f.backward()
    xv, yv = x.data, y.data
    print(f"   f = (x*y) * (x+y): x.grad = {x.grad}, y.grad = {y.grad}")
    print(f"   (by the product rule: y*(x+y) + x*y = {yv * (xv + yv) + xv * yv}, "
          f"x*(x+y) + x*y = {xv * (xv + yv) + xv * yv}; x and y each feed both factors)")


# 7 ---------------------------------------------------------------------------------
class TanhNeuron:
    def __init__(self, nin):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(random.uniform(-1, 1))

    def __call__(self, x):
        total = self.b
        for wi, xi in zip(self.w, x):
            total = total + wi * xi
        return total.tanh()

    def parameters(self):
        return self.w + [self.b]


class TanhMLP:
    """MLP(nin, sizes) with tanh on every layer, the output layer too."""

    def __init__(self, nin, sizes):
        widths = [nin] + list(sizes)
        self.layers = [[TanhNeuron(widths[i]) for _ in range(widths[i + 1])]
                       for i in range(len(sizes))]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def tiny_mlp(steps):
    section("7. MLP(3, [4, 4, 1]) with tanh fitted to four examples")
    random.seed(42)
    model = TanhMLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    print(f"   {len(model.parameters())} parameters")
    for k in range(steps):
        preds = [model(x) for x in xs]
        loss = sum((p - y) ** 2 for p, y in zip(preds, ys))  # squared error
        for p in model.parameters():
            p.grad = 0.0  # gradients accumulate, so clear them every step
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        if k % 5 == 0 or k == steps - 1:
            print(f"   step {k:2d}: loss {loss.data:.6f}")
    print("   targets:     " + "  ".join(f"{y:+.3f}" for y in ys))
    print("   predictions: " + "  ".join(f"{model(x).data:+.3f}" for x in xs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", metavar="DIR", default=None,
                        help="write SVG pictures of the graphs into DIR "
                        "(needs the viz extra and Graphviz's dot)")
    parser.add_argument("--steps", type=int, default=30, help="training steps in part 7")
    args = parser.parse_args()
    print(f"micrograd_fast, {'compiled core' if COMPILED else 'pure-Python engine'}")
    slope_by_nudging()
    expression_by_hand(args.graphs)
    tanh_neuron(args.graphs)
    backward_written_out()
    accumulation()
    tiny_mlp(args.steps)


if __name__ == "__main__":
    main()
