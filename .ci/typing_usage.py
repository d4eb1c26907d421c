"""Typed use of the public API: .ci/run checks it with mypy --strict against
the installed wheel, so the stubs stay usable."""

import numpy as np

import micrograd_fast
from micrograd_fast import Value
from micrograd_fast._engine import gather, layer, vsum

a = Value(2.0, label="a")
b = Value(3)
c: Value = a * b + 1 - 2.5 / a
d = (2 ** a) + a ** 2 + a ** b - (-c)
e = (1 - d).tanh().relu().exp().log().sigmoid()
e.backward()
x: float = a.grad + a.data
s: str = e._op + e.label
kids: set[Value] = e._prev
e._backward()
ws = [[Value(0.1), Value(0.2)]]
out = layer(ws, [Value(0.0)], [1.0, 2.0], "tanh")
total = vsum(out, 0.0)
arr: np.ndarray = gather(out, "grad")
flag: bool = micrograd_fast.COMPILED
m = Value(a.data * b.data, (a, b), (b.data, a.data))
m2 = Value(1.0, children=[m], local_grads=[2])
m2._op = "scale"
grads: tuple[float, ...] = m2._local_grads
children: tuple[Value, ...] = m2._children
