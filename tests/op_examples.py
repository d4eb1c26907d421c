"""The example entries: one per op code of the core's table and one per
activation, the one list of ops and activations the tests read.

An op code is written once, in ``MGF_OPS`` (csrc/mgf_core.h), and an
activation once for C (``MGF_ACTS``) and once for Python
(``micrograd_fast._vocab.ACTIVATIONS``).  ``tests/test_op_table.py`` reads
those tables at run time and checks every entry below on both engines; a
code or an activation that has no entry here fails there with a message
that says what to add.  Other tests take their lists of ops and activations
from here (``unary_methods()``) or from ``ACTIVATIONS``, never from a list
of their own.

An op entry (``OpExample``) says how to make a node of that op from input
Values (``build(E, *xs)``, ``E`` the engine module), at which ordinary
points to check it (inputs where the op is smooth), the forward value as
plain Python computes it (``ref``) and its partial derivatives (``deriv``,
one per input).  The edge values (0, -0.0, the smallest subnormal, huge, the
infinities and nan) are tried in every input position without being listed:
there both engines must agree bit for bit, or raise the same exception.

``replays`` says whether ``recompute()`` re-evaluates such a node (its
forward is the core's); a node whose forward is Python's is refused.

An activation entry (``ActExample``) gives its function and its derivative
as plain Python, and ordinary points to check them at.
"""

import math
from typing import Callable, NamedTuple, Optional, Tuple

from micrograd_fast._vocab import ACTIVATIONS  # noqa: F401 - re-exported for tests

EDGES = (0.0, -0.0, 5e-324, 1e300, -1e300, math.inf, -math.inf, math.nan)


class OpExample(NamedTuple):
    code: str                      # the code's name in MGF_OPS, e.g. "TANH"
    build: Callable                # build(E, *xs) -> the node, xs input Values
    points: Tuple[Tuple[float, ...], ...]  # ordinary inputs, one tuple each
    ref: Callable                  # ref(*floats) -> the forward value
    deriv: Optional[Callable]      # deriv(*floats) -> partials, one per input
    method: Optional[str] = None   # the Value method that makes it (unary ops)
    has_local: bool = True         # a rule the core knows (_local_grads non-empty)
    replays: bool = True           # recompute() re-evaluates it (its forward is the core's)


def _custom_triple(E, x):
    """A custom op the lecture's way: Value(d, children, op) and a Python
    _backward."""
    out = E.Value(3.0 * x.data, (x,), "triple")

    def _backward():
        x.grad += 3.0 * out.grad

    out._backward = _backward
    return out


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _gelu(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def _gelu_slope(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) + x * math.exp(-x * x / 2) / math.sqrt(
        2.0 * math.pi
    )


ORDINARY = ((0.7,), (-1.3,), (2.5,))
POSITIVE = ((0.7,), (1.3,), (2.5,))

#: One entry per op code of MGF_OPS (several where an op has variants).
OPS = (
    OpExample("LEAF", lambda E, x: x, ORDINARY, lambda x: x, lambda x: (1.0,),
              has_local=False),
    OpExample("ADD", lambda E, x, y: x + y, ((0.7, -1.3), (2.5, 0.25)),
              lambda x, y: x + y, lambda x, y: (1.0, 1.0)),
    OpExample("MUL", lambda E, x, y: x * y, ((0.7, -1.3), (2.5, 0.25)),
              lambda x, y: x * y, lambda x, y: (y, x)),
    OpExample("POWC", lambda E, x: x ** 3, ORDINARY, lambda x: x ** 3,
              lambda x: (3 * x ** 2,)),
    OpExample("POWC", lambda E, x: x ** -1.5, POSITIVE, lambda x: x ** -1.5,
              lambda x: (-1.5 * x ** -2.5,)),
    OpExample("POWV", lambda E, x, y: x ** y, ((0.7, -1.3), (2.5, 0.25)),
              lambda x, y: x ** y, lambda x, y: (y * x ** (y - 1), x ** y * math.log(x))),
    OpExample("RELU", lambda E, x: x.relu(), ORDINARY, lambda x: max(x, 0.0),
              lambda x: (float(x > 0),), method="relu"),
    OpExample("TANH", lambda E, x: x.tanh(), ORDINARY, math.tanh,
              lambda x: (1.0 - math.tanh(x) ** 2,), method="tanh"),
    OpExample("EXP", lambda E, x: x.exp(), ORDINARY, math.exp,
              lambda x: (math.exp(x),), method="exp"),
    OpExample("LOG", lambda E, x: x.log(), POSITIVE, math.log,
              lambda x: (1.0 / x,), method="log"),
    OpExample("SIGMOID", lambda E, x: x.sigmoid(), ORDINARY, _sigmoid,
              lambda x: (_sigmoid(x) * (1.0 - _sigmoid(x)),), method="sigmoid"),
    OpExample("SUM", lambda E, x, y, z: E.vsum([x, y, z]), ((0.7, -1.3, 2.5),),
              lambda x, y, z: x + y + z, lambda x, y, z: (1.0, 1.0, 1.0)),
    OpExample("NEURON",
              lambda E, w0, w1, x0, x1, b: E.layer([[w0, w1]], [b], [x0, x1], "tanh")[0],
              ((0.7, -1.3, 0.4, 0.9, 0.1), (-0.2, 0.5, 1.5, -0.75, 0.3)),
              lambda w0, w1, x0, x1, b: math.tanh(b + w0 * x0 + w1 * x1),
              lambda w0, w1, x0, x1, b: tuple(
                  (1.0 - math.tanh(b + w0 * x0 + w1 * x1) ** 2) * d
                  for d in (x0, x1, w0, w1, 1.0))),
    OpExample("CUSTOM", _custom_triple, ORDINARY, lambda x: 3.0 * x, lambda x: (3.0,),
              has_local=False, replays=False),
    OpExample("LOCAL", lambda E, x, y: E.Value(x.data * y.data, (x, y), (y.data, x.data)),
              ((0.7, -1.3), (2.5, 0.25)), lambda x, y: x * y, lambda x, y: (y, x),
              replays=False),
    OpExample("GELU", lambda E, x: x.gelu(), ORDINARY, _gelu,
              lambda x: (_gelu_slope(x),), method="gelu"),
    # a block (nn's batch call) of one row and one neuron: its output node
    OpExample("LAYER",
              lambda E, w0, w1, x0, x1, b: E.mlp_rows(
                  ((((w0, w1),), (b,), "tanh"),), [[x0, x1]])[0][0],
              ((0.7, -1.3, 0.4, 0.9, 0.1), (-0.2, 0.5, 1.5, -0.75, 0.3)),
              lambda w0, w1, x0, x1, b: math.tanh(b + w0 * x0 + w1 * x1),
              lambda w0, w1, x0, x1, b: tuple(
                  (1.0 - math.tanh(b + w0 * x0 + w1 * x1) ** 2) * d
                  for d in (x0, x1, w0, w1, 1.0))),
)


class ActExample(NamedTuple):
    f: Callable       # the activation at z
    slope: Callable   # its derivative at z
    points: Tuple[float, ...] = (-2.5, -0.4, 0.3, 1.7)


#: One entry per name in ACTIVATIONS.
ACTS = {
    "linear": ActExample(lambda z: z, lambda z: 1.0),
    "relu": ActExample(lambda z: max(z, 0.0), lambda z: float(z > 0)),
    "tanh": ActExample(math.tanh, lambda z: 1.0 - math.tanh(z) ** 2),
    "sigmoid": ActExample(_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "gelu": ActExample(_gelu, _gelu_slope),
}


def unary_methods():
    """The names of the Value methods that make a one-input op node, from the
    entries (relu, tanh, ...), in op table order."""
    return [e.method for e in OPS if e.method is not None]
