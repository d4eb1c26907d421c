"""Pure-Python engine: the readable specification of micrograd_fast.

This module and the compiled core (``_engine.pyx``) implement the same
``Value`` with the same numbers.  Every rule below is mirrored by a function of
the compiled core that names it in a comment.

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

__all__ = ["Value", "COMPILED"]

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
        self._data = _as_float(data)
        self._grad = 0.0
        children = tuple(_children)
        for c in children:
            if not isinstance(c, Value):
                raise TypeError(
                    f"Value children must be Values, not {type(c).__name__}"
                )
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

    # -- operators ------------------------------------------------------------
    def __add__(self, other):  # mirrored by op_add
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

    def __mul__(self, other):  # mirrored by op_mul
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
        e = _as_float(other, "exponent")  # mirrored by op_pow_const
        out = Value(_pow_forward(self._data, e), (self,), _pow_op_name(other))

        def _backward():
            self._grad += (e * _pow_ieee(self._data, e - 1.0)) * out._grad

        out._backward = _backward
        return out

    def _pow_value(self, other):  # mirrored by op_pow_value
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

    def relu(self):  # mirrored by op_relu
        x = self._data
        out = Value(0.0 if x < 0.0 else x, (self,), "ReLU")

        def _backward():
            self._grad += (out._data > 0) * out._grad

        out._backward = _backward
        return out

    def tanh(self):  # mirrored by op_tanh
        out = Value(math.tanh(self._data), (self,), "tanh")

        def _backward():
            t = out._data
            self._grad += (1.0 - t * t) * out._grad

        out._backward = _backward
        return out

    def exp(self):  # mirrored by op_exp
        out = Value(_exp_forward(self._data), (self,), "exp")

        def _backward():
            self._grad += out._data * out._grad

        out._backward = _backward
        return out

    def log(self):  # mirrored by op_log
        out = Value(_log_forward(self._data), (self,), "log")

        def _backward():
            self._grad += (1.0 / self._data) * out._grad

        out._backward = _backward
        return out

    def sigmoid(self):  # mirrored by op_sigmoid
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
