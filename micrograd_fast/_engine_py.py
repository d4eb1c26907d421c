"""Pure-Python engine: the readable specification of micrograd_fast.

This module and the compiled core (``_engine.pyx``) implement the same
``Value`` with the same numbers.  Each op's local rule below is mirrored in the
compiled core by the op code named in its comment (``mgf_rule`` in
``csrc/mgf_core.h``), and each function by the one of the same name in
``_engine.pyx``.

Conventions shared by both engines
----------------------------------
* ``data`` and ``grad`` are always Python floats (ints and NumPy scalars are
  converted on the way in).
* Graph shapes follow micrograd 0.1.0: ``a - b`` is ``a + (b * -1)``,
  ``a / b`` is ``a * b**-1``, and a plain number on either side of an operator
  becomes a leaf ``Value``.
* ``backward()`` visits the nodes reachable from the root in reverse creation
  order.  Creation order is a topological order (a node's children always
  exist before it does), so this order is valid, and it is the order the
  compiled core uses too, which keeps gradients bit-identical between engines.
* Arithmetic errors are Python's: ``0.0 ** -1`` raises ZeroDivisionError,
  overflow in ``**`` or ``exp`` raises OverflowError, ``log`` of a value
  <= 0 raises ValueError, and a negative base with a fractional exponent
  raises ValueError (Python would return a complex number).  Inside
  ``backward`` the derivatives follow IEEE arithmetic instead (inf/nan),
  so a backward pass never stops half way.
"""

import itertools
import math

__all__ = [
    "Value",
    "COMPILED",
    "vsum",
    "layer",
    "mlp",
    "mlp_plan",
    "MLPPlan",
    "sgd_update",
    "adam_update",
    "gather",
    "scatter",
    "zero_grad",
]

COMPILED = False

_creation_counter = itertools.count()


def _as_float(x, what="data"):
    """Convert a real number to float; refuse strings and non-numbers."""
    t = type(x)
    if t is float:
        return x
    if isinstance(x, (str, bytes, bytearray)) or not (
        hasattr(t, "__float__") or hasattr(t, "__index__")
    ):
        raise TypeError(f"Value {what} must be a real number, not {t.__name__}")
    if isinstance(x, complex):
        raise TypeError(f"Value {what} must be a real number, not complex")
    return float(x)


def _is_number(x):
    return not isinstance(x, (str, bytes, bytearray, complex)) and (
        hasattr(type(x), "__float__") or hasattr(type(x), "__index__")
    )


def _is_odd_integer(e):
    return math.isfinite(e) and e == math.floor(e) and math.fmod(e, 2.0) != 0.0


def _pow_forward(x, e):
    """x ** e with Python's errors, and ValueError where Python goes complex."""
    # (-inf) ** 0.5 is inf for Python floats: only a finite base goes complex
    if x < 0.0 and math.isfinite(x) and math.isfinite(e) and e != math.floor(e):
        raise ValueError(
            f"negative number {x!r} cannot be raised to the fractional power {e!r}"
        )
    return x**e  # ZeroDivisionError / OverflowError as Python raises them


def _pow_ieee(x, e):
    """x ** e as C99 pow() gives it: never raises (used for derivatives)."""
    try:
        r = x**e
    except ZeroDivisionError:  # 0.0 ** negative
        return math.copysign(math.inf, x) if _is_odd_integer(e) else math.inf
    except OverflowError:
        return -math.inf if (x < 0.0 and _is_odd_integer(e)) else math.inf
    if isinstance(r, complex):
        return math.nan
    return r


def _exp_forward(x):
    return math.exp(x)  # OverflowError like math.exp


def _sigmoid(x):
    # the stable two-branch form; the compiled core computes the same
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _log_forward(x):
    if not x > 0.0:
        if math.isnan(x):
            return x
        raise ValueError(f"log of a non-positive value {x!r}")
    return math.log(x)


def _pow_op_name(e):
    return f"**{e}"


class Value:
    """A scalar that remembers how it was computed."""

    __array_ufunc__ = None  # NumPy scalars hand arithmetic over to us

    def __init__(self, data, _children=(), _op="", label=""):
        data = _as_float(data)
        children = tuple(_children)
        for c in children:
            if not isinstance(c, Value):
                raise TypeError(
                    f"Value children must be Values, not {type(c).__name__}"
                )
        if "_seq" in self.__dict__ and any(c is self for c in children):
            # __init__ called again with the Value itself as a child: the
            # child is the node as it was (the compiled core keeps the old
            # arena node, which has lost its handle and its Python state)
            old = Value.__new__(Value)
            old.__dict__.update(
                {k: v for k, v in self.__dict__.items() if k in _INTERNAL_ATTRS}
            )
            old.label = ""
            children = tuple(old if c is self else c for c in children)
        self._data = data
        self._grad = 0.0
        self._children = children
        self._prev = set(children)
        self._op = str(_op)
        self.label = label
        self._backward = _no_backward
        self._seq = next(_creation_counter)

    # -- data and grad ------------------------------------------------------
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, x):
        self._data = _as_float(x)

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, x):
        self._grad = _as_float(x, "grad")

    def __repr__(self):
        return f"Value(data={self._data!r}, grad={self._grad!r})"

    # -- pickling and copying ------------------------------------------------
    def __reduce__(self):
        """pickle / copy / deepcopy give a *leaf* Value.

        The copy keeps ``data``, ``grad``, ``label`` and any extra instance
        attributes the user set, but not the graph: no children, ``_op`` is
        ``''`` and its backward does nothing.  (Copying a graph node by node
        would copy the whole expression below it; models and parameters are
        leaves anyway.)  Mirrored by ``Value.__reduce__`` of the compiled core.
        """
        extras = {k: v for k, v in vars(self).items() if k not in _INTERNAL_ATTRS}
        args = (self._data, self._grad, self.label)
        if extras:
            return (_rebuild_value, args, extras)
        return (_rebuild_value, args)

    def __setstate__(self, state):
        # extra instance attributes, restored after the leaf exists (so an
        # attribute may refer back to the Value itself)
        for k, v in state.items():
            setattr(self, k, v)

    # -- operators ------------------------------------------------------------
    def __add__(self, other):  # mirrored by MGF_ADD
        if not isinstance(other, Value):
            if not _is_number(other):
                return NotImplemented
            other = Value(other)
        out = Value(self._data + other._data, (self, other), "+")

        def _backward():
            self._grad += out._grad
            other._grad += out._grad

        out._backward = _backward
        return out

    def __mul__(self, other):  # mirrored by MGF_MUL
        if not isinstance(other, Value):
            if not _is_number(other):
                return NotImplemented
            other = Value(other)
        out = Value(self._data * other._data, (self, other), "*")

        def _backward():
            self._grad += other._data * out._grad
            other._grad += self._data * out._grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        if isinstance(other, Value):
            return self._pow_value(other)
        if not _is_number(other):
            return NotImplemented
        e = _as_float(other, "exponent")  # mirrored by MGF_POWC
        out = Value(_pow_forward(self._data, e), (self,), _pow_op_name(other))

        def _backward():
            self._grad += (e * _pow_ieee(self._data, e - 1.0)) * out._grad

        out._backward = _backward
        return out

    def _pow_value(self, other):  # mirrored by MGF_POWV
        out = Value(_pow_forward(self._data, other._data), (self, other), "**")

        def _backward():
            x, e = self._data, other._data
            self._grad += (e * _pow_ieee(x, e - 1.0)) * out._grad
            if x > 0.0:
                d = out._data * math.log(x)
            elif x == 0.0 and e >= 0.0:
                d = 0.0
            else:
                d = math.nan
            other._grad += d * out._grad

        out._backward = _backward
        return out

    def __rpow__(self, other):  # number ** Value
        if not _is_number(other):
            return NotImplemented
        return Value(other)._pow_value(self)

    def relu(self):  # mirrored by MGF_RELU
        x = self._data
        out = Value(0.0 if x < 0.0 else x, (self,), "ReLU")

        def _backward():
            self._grad += (out._data > 0) * out._grad

        out._backward = _backward
        return out

    def tanh(self):  # mirrored by MGF_TANH
        out = Value(math.tanh(self._data), (self,), "tanh")

        def _backward():
            t = out._data
            self._grad += (1.0 - t * t) * out._grad

        out._backward = _backward
        return out

    def exp(self):  # mirrored by MGF_EXP
        out = Value(_exp_forward(self._data), (self,), "exp")

        def _backward():
            self._grad += out._data * out._grad

        out._backward = _backward
        return out

    def log(self):  # mirrored by MGF_LOG
        out = Value(_log_forward(self._data), (self,), "log")

        def _backward():
            self._grad += (1.0 / self._data) * out._grad

        out._backward = _backward
        return out

    def sigmoid(self):  # mirrored by MGF_SIGMOID
        out = Value(_sigmoid(self._data), (self,), "sigmoid")

        def _backward():
            s = out._data
            self._grad += (s * (1.0 - s)) * out._grad

        out._backward = _backward
        return out

    # the remaining operators are built from the ones above, as upstream does
    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        if not isinstance(other, Value) and not _is_number(other):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):
        if not _is_number(other):
            return NotImplemented
        return (-self) + other

    def __rmul__(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        if isinstance(other, Value):
            return self * other**-1
        if not _is_number(other):
            return NotImplemented
        # a plain number's reciprocal is computed in Python, then becomes a leaf
        return self * _pow_forward(_as_float(other), -1.0)

    def __rtruediv__(self, other):
        if not _is_number(other):
            return NotImplemented
        return self**-1 * other

    # -- backpropagation -----------------------------------------------------
    def backward(self):
        """Set this node's grad to 1 and push gradients to everything below it.

        Nodes reachable from ``self`` are visited in reverse creation order;
        each applies its ``_backward`` (its local chain rule) once.  Nothing
        is zeroed: leaves and inner nodes accumulate across calls, as in
        micrograd.  Iterative, so graph depth is unlimited.
        """
        seen = {id(self): self}
        stack = [self]
        while stack:
            v = stack.pop()
            for c in v._children:
                if id(c) not in seen:
                    seen[id(c)] = c
                    stack.append(c)
        order = sorted(seen.values(), key=_by_seq, reverse=True)
        self._grad = 1.0
        for v in order:
            v._backward()


def _by_seq(v):
    return v._seq


def _no_backward():
    return None


_INTERNAL_ATTRS = frozenset(
    ("_data", "_grad", "_children", "_prev", "_op", "label", "_backward", "_seq")
)


def _rebuild_value(data, grad, label):
    """Leaf Value from ``Value.__reduce__`` (pickle, copy, deepcopy)."""
    v = Value(data, label=label)
    v._grad = _as_float(grad, "grad")
    return v


# -- engine-level primitives ---------------------------------------------------
# Each has a twin of the same name in the compiled core, with the same
# arithmetic in the same order, so results are bit-identical.


def vsum(values, start=0.0):
    """Sum of many values as ONE node (``_op == 'sum'``).

    Forward: ``acc = start``; then ``acc = acc + item`` for each item in
    order.  Plain numbers among the items are folded into ``acc`` at their
    position and make no node.  The children are ``start`` (when it is a
    Value) followed by the Value items in order, repeats included; backward
    adds ``out.grad`` to each child once per occurrence.
    """
    children = []
    if isinstance(start, Value):
        acc = start._data
        children.append(start)
    else:
        acc = _as_float(start, "start")
    for item in values:
        if isinstance(item, Value):
            acc = acc + item._data
            children.append(item)
        elif _is_number(item):
            acc = acc + _as_float(item)
        else:
            raise TypeError(
                f"vsum: items must be Values or real numbers, not {type(item).__name__}"
            )
    out = Value(acc, children, "sum")
    kids = out._children

    def _backward():
        g = out._grad
        for c in kids:
            c._grad += g

    out._backward = _backward
    return out


_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")


def _check_act(act):
    if act not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {act!r}; expected one of {', '.join(_ACTIVATIONS)}"
        )


def _input_values(x):
    """Inputs of a layer call as Values; numbers become leaves, in order."""
    xs = []
    for i, xi in enumerate(x):
        if isinstance(xi, Value):
            xs.append(xi)
        elif _is_number(xi):
            xs.append(Value(xi))
        else:
            raise TypeError(
                f"layer: input {i} must be a Value or a real number, "
                f"not {type(xi).__name__}"
            )
    return xs


def _neuron(w, xs, b, act):
    z = b._data
    for i in range(len(xs)):
        z = z + w[i]._data * xs[i]._data
    if act == "relu":
        y = 0.0 if z < 0.0 else z
    elif act == "tanh":
        y = math.tanh(z)
    elif act == "sigmoid":
        y = _sigmoid(z)
    else:
        y = z
    out = Value(y, (*w, *xs, b), "neuron:" + act)
    nin = len(xs)

    def _backward():
        g = out._grad
        if act == "relu":
            pre = (out._data > 0) * g
        elif act == "tanh":
            t = out._data
            pre = (1.0 - t * t) * g
        elif act == "sigmoid":
            s = out._data
            pre = (s * (1.0 - s)) * g
        else:
            pre = g
        for i in range(nin):
            wi = w[i]
            xi = xs[i]
            wi._grad += xi._data * pre
            xi._grad += wi._data * pre
        b._grad += pre

    out._backward = _backward
    return out


def layer(W, B, x, act):
    """A layer of fused neurons: one node per neuron.

    ``W`` holds ``nout`` rows of ``nin`` weight Values, ``B`` the ``nout``
    bias Values, ``x`` the ``nin`` inputs (Values or numbers; numbers become
    leaf Values once per call, shared by every neuron).  Neuron ``j``
    computes ``z = B[j] + W[j][0]*x[0] + ... `` left to right, then ``act``.
    Its node has ``_op == 'neuron:' + act`` and children
    ``(w_0..w_{nin-1}, x_0..x_{nin-1}, b)``.  Returns a list of ``nout``
    Values.
    """
    _check_act(act)
    W = list(W)
    B = list(B)
    x = list(x)
    nout = len(W)
    if len(B) != nout:
        raise ValueError(f"layer: expected {nout} biases (one per row of W), got {len(B)}")
    nin = len(W[0]) if nout else len(x)
    if len(x) != nin:
        raise ValueError(f"layer: expected {nin} inputs, got {len(x)}")
    rows = []
    for j in range(nout):
        row = list(W[j])
        if len(row) != nin:
            raise ValueError(
                f"layer: expected {nin} weights in row {j} of W, got {len(row)}"
            )
        for w in row:
            if not isinstance(w, Value):
                raise TypeError(
                    f"layer: weights must be Values, not {type(w).__name__}"
                )
        if not isinstance(B[j], Value):
            raise TypeError(f"layer: biases must be Values, not {type(B[j]).__name__}")
        rows.append(row)
    xs = _input_values(x)
    return [_neuron(rows[j], xs, B[j], act) for j in range(nout)]


class MLPPlan(tuple):
    """A frozen copy of a spec of layers, from ``mlp_plan``."""

    @property
    def nin(self):
        return self._nin

    @property
    def nout(self):
        return len(self[-1][1])


def mlp_plan(spec, nin=None):
    """Check a spec of ``(W, B, act)`` layers once and freeze it (tuples of
    the same Values), for repeated ``mlp`` calls.  ``nin`` defaults to the
    length of the first weight row."""
    plan = MLPPlan(
        (tuple(tuple(row) for row in W), tuple(B), act) for W, B, act in _spec_items(spec)
    )
    if nin is None:
        first = plan[0][0]
        nin = len(first[0]) if first else 0
    plan._nin = nin
    mlp(plan, [Value(0.0)] * nin)  # every check mlp makes, once
    return plan


def _spec_items(spec):
    spec = list(spec)
    if not spec:
        raise ValueError("mlp: spec must contain at least one layer")
    for item in spec:
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError("mlp: spec items must be (W, B, act) tuples")
    return spec


def mlp(spec, x):
    """Layers applied in turn: ``spec`` is a list of ``(W, B, act)`` (or a
    plan from ``mlp_plan``).

    The output list of each layer is the input of the next; the last
    layer's list is returned.  An empty ``spec`` is a ValueError.
    """
    if isinstance(spec, MLPPlan) and len(x) != spec.nin:
        raise ValueError(f"mlp expects {spec.nin} inputs, got {len(x)}")
    spec = list(spec)
    if not spec:
        raise ValueError("mlp: spec must contain at least one layer")
    for item in spec:
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError("mlp: spec items must be (W, B, act) tuples")
    for W, B, act in spec:
        x = layer(W, B, x, act)
    return x


# -- optimizer updates and parameter arrays -------------------------------------


def _check_params(params):
    params = list(params)
    for p in params:
        if not isinstance(p, Value):
            raise TypeError(f"parameters must be Values, not {type(p).__name__}")
    return params


def _check_state(arr, n, name):
    import numpy as np

    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or arr.ndim != 1:
        raise TypeError(f"{name} must be a 1-D float64 NumPy array")
    if not arr.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per parameter), got {arr.shape[0]}")


def sgd_update(params, lr, momentum, buf, first):
    """One SGD step, in place.  ``buf`` (float64, one per parameter) is the
    momentum buffer; it may be None when ``momentum == 0``."""
    params = _check_params(params)
    lr = _as_float(lr, "lr")
    momentum = _as_float(momentum, "momentum")
    if momentum == 0:
        for p in params:
            p._data = p._data - lr * p._grad
        return
    _check_state(buf, len(params), "buf")
    for i, p in enumerate(params):
        g = p._grad
        if first:
            b = g
        else:
            b = momentum * float(buf[i]) + g
        buf[i] = b
        p._data = p._data - lr * b


def adam_update(params, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step (``decoupled``: AdamW), in place; ``t`` is the 1-based
    step number, already incremented."""
    params = _check_params(params)
    n = len(params)
    _check_state(m, n, "m")
    _check_state(v, n, "v")
    t = _as_float(t, "t")
    if not t >= 1.0:
        raise ValueError(f"adam_update: the step count t must be >= 1, got {t!r}")
    lr = _as_float(lr, "lr")
    beta1 = _as_float(beta1, "beta1")
    beta2 = _as_float(beta2, "beta2")
    eps = _as_float(eps, "eps")
    weight_decay = _as_float(weight_decay, "weight_decay")
    bc1 = 1.0 - beta1**t
    bc2 = 1.0 - beta2**t
    for i, p in enumerate(params):
        g = p._grad
        if not decoupled and weight_decay != 0:
            g = g + weight_decay * p._data
        mi = beta1 * float(m[i]) + (1.0 - beta1) * g
        vi = beta2 * float(v[i]) + (1.0 - beta2) * (g * g)
        m[i] = mi
        v[i] = vi
        mhat = mi / bc1
        vhat = vi / bc2
        upd = mhat / (math.sqrt(vhat) + eps)
        if decoupled:
            upd = upd + weight_decay * p._data
        p._data = p._data - lr * upd


def _check_which(which):
    if which not in ("data", "grad"):
        raise ValueError(f"which must be 'data' or 'grad', not {which!r}")


def gather(values, which="data"):
    """``.data`` (or ``.grad``) of each Value, as a float64 NumPy array."""
    import numpy as np

    _check_which(which)
    values = _check_params(values)
    if which == "data":
        return np.array([v._data for v in values], dtype=np.float64)
    return np.array([v._grad for v in values], dtype=np.float64)


def scatter(values, array, which="data"):
    """Write ``array`` back into ``.data`` (or ``.grad``) of each Value."""
    import numpy as np

    _check_which(which)
    values = _check_params(values)
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scatter: expected a 1-D array, got {arr.ndim} dimensions")
    if arr.shape[0] != len(values):
        raise ValueError(f"scatter: expected {len(values)} entries, got {arr.shape[0]}")
    vals = arr.tolist()
    if which == "data":
        for v, x in zip(values, vals):
            v._data = x
    else:
        for v, x in zip(values, vals):
            v._grad = x


def zero_grad(values):
    """Set the grad of every Value to 0.0."""
    for v in _check_params(values):
        v._grad = 0.0
