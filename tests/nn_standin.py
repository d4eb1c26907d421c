"""A minimal stand-in for micrograd_fast.nn, used by the lab tests only while
the real module is not in the tree.  Same constructor signatures and the same
random draws as micrograd 0.1.0's nn, so numbers are comparable."""

import importlib.util
import random
import sys
import types


def _value():
    import micrograd_fast.engine

    return micrograd_fast.engine.Value


class _Neuron:
    def __init__(self, nin, nonlin=True):
        V = _value()
        self.w = [V(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = V(0)
        self.nonlin = nonlin

    def __call__(self, x):
        s = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return s.relu() if self.nonlin else s

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, nin, nouts):
        sizes = [nin] + list(nouts)
        self.layers = [
            [_Neuron(sizes[i], nonlin=i != len(nouts) - 1) for _ in range(sizes[i + 1])]
            for i in range(len(nouts))
        ]

    def __call__(self, x):
        for layer in self.layers:
            out = [n(x) for n in layer]
            x = out[0] if len(out) == 1 else out
        return x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0


def install_if_missing():
    """Register this stand-in as micrograd_fast.nn when the real one is absent."""
    if importlib.util.find_spec("micrograd_fast.nn") is not None:
        return False
    mod = types.ModuleType("micrograd_fast.nn")
    mod.MLP = MLP
    sys.modules["micrograd_fast.nn"] = mod
    return True
