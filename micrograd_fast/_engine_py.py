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
* ``tanh`` is the lecture's formula, ``(exp(2x) - 1) / (exp(2x) + 1)``, with
  the derivative factor ``1 - t**2``, wherever ``exp(2x)`` is finite; only
  where it overflows (x above about 354.9) does the stable ``math.tanh``
  (there: 1.0) take over.
* Every node has ``_children`` (a tuple, in order) and ``_local_grads``
  (d node / d child for each child at the current data).  The form
  ``Value(data, children, local_grads)`` makes a node whose backward is
  ``child.grad += local_grad * out.grad`` for each child in order.  Leaves
  and nodes whose rule is a Python ``_backward`` given after construction
  have ``_local_grads == ()``.
* The class is open: its attributes may be added or replaced
  (``Value.sin = ...``, ``Value.__add__ = ...``).  ``_op`` is a writable
  label (a str); ``_prev`` and ``_children`` cannot be assigned.
"""

import itertools
import math
import operator
import sys

from micrograd_fast._vocab import ENGINE_API as _ENGINE_API

__all__ = list(_ENGINE_API)

COMPILED = False

_creation_counter = itertools.count()


def _as_float(x, what="data"):
    """Convert a real number to float; refuse strings and non-numbers."""
    t = type(x)
    if t is float:
        return x
    if isinstance(x, float):
        # a float subclass (NumPy's float64): the double it holds, as the
        # compiled core reads it, whatever its __float__ says
        return float.__float__(x)
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
    try:
        return x**e  # ZeroDivisionError as Python raises it
    except OverflowError:
        raise OverflowError("** overflowed: result too large") from None  # (C's message)


def _pow_ieee(x, e):
    """x ** e as C99 pow() gives it: never raises (used for derivatives)."""
    if x < 0.0 and math.isfinite(x) and math.isfinite(e) and e != math.floor(e):
        # a domain error in C, whatever the size of the result (the one case
        # where Python goes complex, and may overflow there)
        return math.nan
    try:
        return x**e
    except ZeroDivisionError:  # 0.0 ** negative
        return math.copysign(math.inf, x) if _is_odd_integer(e) else math.inf
    except OverflowError:
        return -math.inf if (x < 0.0 and _is_odd_integer(e)) else math.inf


def _div_ieee(a, b):
    """a / b as C computes it: never raises (a zero divisor gives inf or nan)."""
    if b != 0.0:
        return a / b
    if a == 0.0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _exp_forward(x):
    try:
        return math.exp(x)  # OverflowError like math.exp ...
    except OverflowError:
        raise OverflowError("exp overflowed: result too large") from None  # ... in C's words


def _sigmoid(x):
    # the stable two-branch form; the compiled core computes the same
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


#: the doubles nearest 1/sqrt(2) and 1/sqrt(2 pi), as csrc/mgf_core.h writes them
_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _gelu(x):
    """GELU, the exact (erf) form, as torch.nn.GELU() computes it (mirrored
    by mgf_gelu)."""
    return x * 0.5 * (1.0 + math.erf(x * _SQRT1_2))


def _gelu_slope(x):
    """GELU's derivative at x, cdf + x * pdf (mirrored by mgf_gelu_slope)."""
    cdf = 0.5 * (1.0 + math.erf(x * _SQRT1_2))
    pdf = _INV_SQRT_2PI * math.exp(x * x * -0.5)  # never overflows: x * x * -0.5 <= 0
    return cdf + x * pdf


def _log_forward(x):
    if not x > 0.0:
        if math.isnan(x):
            return x
        raise ValueError(f"log of a non-positive value {x!r}")
    return math.log(x)


def _pow_op_name(e):
    return f"**{e}"


def _exponent_minus_one(other, e):
    """The exponent of the derivative of x ** other, as a float.

    For an int exponent, ``other - 1`` is computed on the int and then
    rounded, as ``other * x ** (other - 1)`` does in Python: beyond 2**53,
    ``float(other) - 1.0`` can differ from it (even where it must be odd,
    or the other way round), which changes the derivative's sign for a
    negative base.  Below 2**53 in size both are the same number."""
    if abs(e) < 9007199254740992.0 or isinstance(other, float):
        return e - 1.0
    try:
        return float(operator.index(other) - 1)
    except (TypeError, OverflowError):
        return e - 1.0


def _tanh(x):
    """The lecture's tanh where exp(2x) is finite, math.tanh where it
    overflows (mirrored by mgf_tanh)."""
    try:
        e = math.exp(2 * x)
    except OverflowError:
        return math.tanh(x)
    if e == math.inf:  # x is +inf
        return math.tanh(x)
    return (e - 1) / (e + 1)


def _tanh_slope(t):
    """The lecture's local derivative of tanh, 1 - t**2 (mgf_tanh_slope),
    with t**2 as C's pow gives it: -inf, not OverflowError, at a huge t
    (an output whose data was set after the op)."""
    return 1 - _pow_ieee(t, 2.0)


def _local_grads_tuple(lgs, n):
    """microgpt's local derivatives: a sequence of n real numbers, as a
    tuple of floats."""
    items = None
    if not isinstance(lgs, (str, bytes, bytearray)):
        try:
            items = tuple(lgs)
        except TypeError:
            pass
    if items is None:
        raise TypeError(
            "Value()'s third argument must be an _op string or a sequence of local "
            f"gradients (numbers), not {type(lgs).__name__}"
        )
    out = []
    for item in items:
        if isinstance(item, Value) or not _is_number(item):
            raise TypeError(
                f"local gradients must be real numbers, not {type(item).__name__}"
            )
        out.append(_as_float(item, "local gradient"))
    if len(out) != n:
        raise ValueError(f"got {len(out)} local gradients for {n} children")
    return tuple(out)


def _refuse_rewiring(name):
    raise AttributeError(
        f"{name} cannot be assigned: a Value's children are fixed when it is made "
        "(the graph lives in the node arena and cannot be rewired); "
        "make a new Value(data, children, ...) instead"
    )


# local derivatives of the built-in ops, at the current data (mgf_local_grads)
def _lg_add(v):
    return (1.0, 1.0)


def _lg_mul(v):
    a, b = v._kids
    return (b._data, a._data)


def _lg_relu(v):
    return (float(v._data > 0),)


def _lg_tanh(v):
    return (_tanh_slope(v._data),)


def _lg_exp(v):
    return (v._data,)


def _lg_log(v):
    return (_div_ieee(1.0, v._kids[0]._data),)


def _lg_sigmoid(v):
    s = v._data
    return (s * (1.0 - s),)


def _lg_gelu(v):
    return (_gelu_slope(v._kids[0]._data),)


def _lg_sum(v):
    return (1.0,) * len(v._kids)


def _lg_pow_value(v):
    x, e = v._kids[0]._data, v._kids[1]._data
    if x > 0.0:
        d = v._data * math.log(x)
    elif x == 0.0 and e >= 0.0:
        d = 0.0
    else:
        d = math.nan
    return (e * _pow_ieee(x, e - 1.0), d)


class Value:
    """A scalar that remembers how it was computed."""

    __array_ufunc__ = None  # NumPy scalars hand arithmetic over to us

    def __init__(self, data, _children=(), _op="", label="", *, children=None,
                 local_grads=None):
        data = _as_float(data)
        kids = tuple(_children)
        if children is not None:
            if kids:
                raise TypeError("Value() got children both as _children and as children=")
            kids = tuple(children)
        for c in kids:
            if not isinstance(c, Value):
                raise TypeError(
                    f"Value children must be a Value, not {type(c).__name__}"
                )
        again = "_seq" in self.__dict__  # __init__ called again
        in_place = again and _init_again(self, kids)
        if again and not in_place and any(c is self for c in kids):
            # __init__ called again with the Value itself as a child: the
            # child is the node as it was (the compiled core keeps the old
            # arena node, which has lost its handle and its Python state)
            old = Value.__new__(Value)
            old.__dict__.update(
                {k: v for k, v in self.__dict__.items() if k in _INTERNAL_ATTRS}
            )
            old.label = ""
            kids = tuple(old if c is self else c for c in kids)
        # the third argument: an _op string, or microgpt's local derivatives
        lgs = None
        if isinstance(_op, str):
            if local_grads is not None:
                lgs = _local_grads_tuple(local_grads, len(kids))
        else:
            if local_grads is not None:
                raise TypeError(
                    "Value() got local_grads both as the third argument and as local_grads="
                )
            lgs = _local_grads_tuple(_op, len(kids))
            _op = ""
        self._data = data
        self._grad = 0.0
        self._kids = kids
        self._opname = _op
        self.label = label
        # no children: a leaf (mirrored by MGF_LEAF); children and no rule
        # yet: the caller gives _backward (mirrored by MGF_CUSTOM)
        self._backward = _no_backward
        self._local = ()
        self._fwd = None  # how recompute() re-evaluates it: set by the op that made it
        if lgs is not None and kids:  # mirrored by MGF_LOCAL
            self._local = lgs
            self._backward = _local_rule(self, kids, lgs)
        for c in kids:
            c._used = True  # it has been a child (the flags MGF_F_USED, MGF_F_WASUSED)
        if not in_place:
            self._seq = next(_creation_counter)

    # -- the graph: _op, _prev, _children, _local_grads --------------------
    @property
    def _op(self):
        return self._opname

    @_op.setter
    def _op(self, value):
        # a label for drawings; the compiled core accepts str only, so does this
        if not isinstance(value, str):
            raise TypeError(f"_op must be a str, not {type(value).__name__}")
        self._opname = value

    @property
    def _prev(self):
        """The set of this node's children."""
        return set(self._kids)

    @_prev.setter
    def _prev(self, value):
        _refuse_rewiring("_prev")

    @property
    def _children(self):
        """This node's children as a tuple, in order, repeats included."""
        return self._kids

    @_children.setter
    def _children(self, value):
        _refuse_rewiring("_children")

    @property
    def _local_grads(self):
        """d self / d child for each child in _children, at the current data;
        () for leaves and nodes with a Python _backward rule and no local
        gradients."""
        f = self._local
        return f if type(f) is tuple else f(self)

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
        if type(self) is not Value:  # a subclass comes back as itself
            args += (type(self),)
            extras.update(_slot_state(self))
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
        out._local = _lg_add
        out._fwd = lambda: self._data + other._data

        def _backward():
            self._grad += out._grad
            other._grad += out._grad

        _backward.vjp = _vjp_add
        out._backward = _backward
        return out

    def __mul__(self, other):  # mirrored by MGF_MUL
        if not isinstance(other, Value):
            if not _is_number(other):
                return NotImplemented
            other = Value(other)
        out = Value(self._data * other._data, (self, other), "*")
        out._local = _lg_mul
        out._fwd = lambda: self._data * other._data

        def _backward():
            self._grad += other._data * out._grad
            other._grad += self._data * out._grad

        _backward.vjp = _vjp_mul
        out._backward = _backward
        return out

    def __pow__(self, other):
        if isinstance(other, Value):
            return self._pow_value(other)
        if not _is_number(other):
            return NotImplemented
        e = _as_float(other, "exponent")  # mirrored by MGF_POWC (_pow_const)
        return _pow_const(self, e, _exponent_minus_one(other, e), _pow_op_name(other),
                          _pow_forward(self._data, e))

    def _pow_value(self, other):  # mirrored by MGF_POWV (_pow_value_node)
        return _pow_value_node(self, other, _pow_forward(self._data, other._data))


    def __rpow__(self, other):  # number ** Value
        if not _is_number(other):
            return NotImplemented
        return Value(other)._pow_value(self)

    def relu(self):  # mirrored by MGF_RELU
        x = self._data
        out = Value(0.0 if x < 0.0 else x, (self,), "ReLU")
        out._local = _lg_relu
        out._fwd = lambda: 0.0 if self._data < 0.0 else self._data

        def _backward():
            self._grad += (out._data > 0) * out._grad

        _backward.vjp = _vjp_relu
        out._backward = _backward
        return out

    def tanh(self):  # mirrored by MGF_TANH
        out = Value(_tanh(self._data), (self,), "tanh")
        out._local = _lg_tanh
        out._fwd = lambda: _tanh(self._data)

        def _backward():
            self._grad += _tanh_slope(out._data) * out._grad

        _backward.vjp = _vjp_tanh
        out._backward = _backward
        return out

    def exp(self):  # mirrored by MGF_EXP
        out = Value(_exp_forward(self._data), (self,), "exp")
        out._local = _lg_exp
        out._fwd = lambda: _exp_forward(self._data)

        def _backward():
            self._grad += out._data * out._grad

        _backward.vjp = _vjp_exp
        out._backward = _backward
        return out

    def log(self):  # mirrored by MGF_LOG
        out = Value(_log_forward(self._data), (self,), "log")
        out._local = _lg_log
        out._fwd = lambda: _log_forward(self._data)

        def _backward():
            # 1 / x as C computes it: a base set to 0 after the op gives inf
            self._grad += _div_ieee(1.0, self._data) * out._grad

        _backward.vjp = _vjp_log
        out._backward = _backward
        return out

    def sigmoid(self):  # mirrored by MGF_SIGMOID
        out = Value(_sigmoid(self._data), (self,), "sigmoid")
        out._local = _lg_sigmoid
        out._fwd = lambda: _sigmoid(self._data)

        def _backward():
            s = out._data
            self._grad += (s * (1.0 - s)) * out._grad

        _backward.vjp = _vjp_sigmoid
        out._backward = _backward
        return out

    def gelu(self):  # mirrored by MGF_GELU
        out = Value(_gelu(self._data), (self,), "gelu")
        out._local = _lg_gelu
        out._fwd = lambda: _gelu(self._data)

        def _backward():
            self._grad += _gelu_slope(self._data) * out._grad

        _backward.vjp = None  # a built-in rule not written as nodes
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

    # -- replay and backpropagation ---------------------------------------------
    def recompute(self):
        """Re-evaluate every node below this one from its leaves' current data.

        In creation order, with each op's forward math (each node's ``_fwd``),
        no node made; every non-leaf node's grad is set to 0, leaves are not
        touched.  The graph then holds the data and grads a rebuild from the
        same leaves would give, bit for bit.  A node whose forward is
        Python's is a RuntimeError (nothing changed); a forward error raises
        what building that op would, the nodes before it recomputed and the
        rest as they were.
        """
        order = _reachable([self])
        order.reverse()  # creation order
        for v in order:
            if v._kids and v._fwd in (None, _GRAD_MADE, _FOLDED):
                raise RuntimeError(_replay_refusal(v))
        for v in order:
            if v._kids:
                v._data = v._fwd()
                v._grad = 0.0

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
            for c in v._kids:
                if id(c) not in seen:
                    seen[id(c)] = c
                    stack.append(c)
        order = sorted(seen.values(), key=_by_seq, reverse=True)
        self._grad = 1.0
        global _passes
        _passes += 1
        try:
            for v in order:
                v._backward()
        finally:
            _passes -= 1


def _by_seq(v):
    return v._seq


# what recompute() finds in a node's _fwd where it cannot re-evaluate it
# (None: a forward of Python's own, the custom op's or microgpt's)
_GRAD_MADE = "a node of a gradient graph"  # (the flag MGF_AUX_GRAD)
_FOLDED = "a sum that folded numbers"  # (the flag MGF_AUX_SUM_FOLDED)


def _replay_refusal(v):
    if v._fwd is None:
        reason = ("its forward is Python's (a custom op, or Value(data, children, "
                  "local_grads)): build the graph again instead")
    elif v._fwd is _GRAD_MADE:
        reason = "it belongs to a gradient graph: call grad() again instead"
    else:
        reason = ("a micrograd_fast.sum folded plain numbers into its data: make them "
                  "Values to replay it")
    return f"recompute(): cannot recompute the node with _op {v._op!r}: {reason}"


def _init_again(v, kids):
    """``__init__`` called again on v: True when v stays where it is in
    creation order (every graph that uses v sees its new node, as upstream's
    parents hold the very object), False when it gets a fresh place.

    In place when every new child was made before v.  Otherwise (a child
    made after it, or v itself among its children: that child is the node
    as it was) a fresh place, which only a Value that has never been a child
    may have; one that has been is refused.  So is a change in place of a
    used Value while a backward() pass runs."""
    used = v.__dict__.get("_used", False)
    if any(c is v or c._seq >= v._seq for c in kids):
        if used:
            raise ValueError(
                "__init__ called again on a Value that has been a child: its new children "
                "must have been made before it (not after it, nor the Value itself); "
                "make a new Value instead")
        return False
    if used and _passes:
        raise RuntimeError(
            "__init__ called again on a Value that has been a child, while a backward() "
            "pass is running: call it after the pass")
    return True


def _creation_order(values):
    """The Values in the order they were made (mirrored by the compiled
    core's _creation_order): backward() visits the reachable ones in the
    reverse of this order."""
    vs = list(values)
    for v in vs:
        if not isinstance(v, Value):
            raise TypeError(f"_creation_order: expected Values, not {type(v).__name__}")
    return sorted(vs, key=_by_seq)


def _no_backward():
    return None


def _local_rule(out, kids, lgs):
    """Backward of a node given its local derivatives (mirrored by MGF_LOCAL)."""

    def _backward():
        g = out._grad
        for c, d in zip(kids, lgs):
            c._grad += d * g

    return _backward


_INTERNAL_ATTRS = frozenset(
    ("_data", "_grad", "_kids", "_opname", "label", "_backward", "_seq", "_local", "_used",
     "_fwd")
)

_passes = 0  # backward() passes running (see _init_again)


# The ops the unfused layers build with, taken once: like the compiled core,
# they make the built-in nodes even if the class's operators are replaced
# (the activations' ops: _ACT_METHODS, below).
_value_add = Value.__add__
_value_mul = Value.__mul__
_value_init = Value.__init__
_value_log = Value.log


def _slot_state(obj):
    """The values of the ``__slots__`` a Value subclass declares, by
    attribute name (unset slots are left out), for pickling."""
    state = {}
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__")
        if slots is None:
            continue
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = "_" + klass.__name__.lstrip("_") + name
            try:
                state[name] = getattr(obj, name)
            except AttributeError:
                pass
    return state


def _rebuild_value(data, grad, label, cls=None):
    """Leaf Value from ``Value.__reduce__`` (pickle, copy, deepcopy).

    ``cls``: a subclass of Value to rebuild as; it is made without calling
    its own ``__init__`` (whose signature may differ), as pickle does for
    plain Python classes: Value's part is initialized here, the subclass's
    attributes come back through ``__setstate__``."""
    if cls is None or cls is Value:
        v = Value(data, label=label)
    else:
        if not (isinstance(cls, type) and issubclass(cls, Value)):
            raise TypeError(f"cannot rebuild a Value as {cls!r}")
        v = cls.__new__(cls)
        Value.__init__(v, data, label=label)
    v._grad = _as_float(grad, "grad")
    return v


# -- engine-level primitives ---------------------------------------------------
# Each has a twin of the same name in the compiled core, with the same
# arithmetic in the same order, so results are bit-identical.


def vsum(values, start=0.0):
    """Sum of many values as ONE node (``_op == 'sum'``, mirrored by MGF_SUM).

    Forward: ``acc = start``; then ``acc = acc + item`` for each item in
    order.  Plain numbers among the items are folded into ``acc`` at their
    position and make no node.  The children are ``start`` (when it is a
    Value) followed by the Value items in order, repeats included; backward
    adds ``out.grad`` to each child once per occurrence.
    """
    children = []
    folded = False
    if isinstance(start, Value):
        acc = start._data
        children.append(start)
    else:
        acc = _as_float(start, "start")
    start_number = acc
    for item in values:
        if isinstance(item, Value):
            acc = acc + item._data
            children.append(item)
        elif _is_number(item):
            acc = acc + _as_float(item)
            folded = True
        else:
            raise TypeError(
                f"vsum: items must be Values or real numbers, not {type(item).__name__}"
            )
    out = Value(acc, children, "sum")
    out._local = _lg_sum
    kids = out._kids

    def _fwd():  # mirrored by mgf_recompute's MGF_SUM
        if isinstance(start, Value):
            total = kids[0]._data
            rest = kids[1:]
        else:
            total = start_number
            rest = kids
        for c in rest:
            total = total + c._data
        return total

    out._fwd = _FOLDED if folded else _fwd

    def _backward():
        g = out._grad
        for c in kids:
            c._grad += g

    _backward.vjp = _vjp_sum
    out._backward = _backward
    return out


from micrograd_fast._vocab import ACTIVATIONS as _ACTIVATIONS  # noqa: E402


def _act_method(act):
    """The Value method an unfused neuron applies activation act with: the
    method of the same name (the op MGF_ACTS names for it in C)."""
    method = getattr(Value, act, None)
    if method is None:

        def method(v):
            raise AttributeError(
                f"activation {act!r} has no op: Value.{act}() must exist first "
                "(docs/architecture.md, 'How to add an activation')"
            )

    return method


_ACT_METHODS = {act: _act_method(act) for act in _ACTIVATIONS if act != "linear"}

#: The widest input a fused neuron takes: its node's children (weights,
#: inputs, bias) must stay within the compiled core's children count.
_MAX_NIN = 0x7FFFFFF


def _check_act(act):
    if act not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {act!r}; expected one of {', '.join(_ACTIVATIONS)}"
        )


def _activate(act, z):
    """An activation's value at z (mirrored by mgf_activate)."""
    if act == "relu":
        return 0.0 if z < 0.0 else z
    if act == "tanh":
        return _tanh(z)
    if act == "sigmoid":
        return _sigmoid(z)
    if act == "gelu":
        return _gelu(z)
    return z


def _activate_grad(act, z, out, g):
    """d act / d z times g, from the pre-activation z or from the
    activation's value out, whichever the derivative is written in (the
    unfused neuron's op reads the same one; mirrored by mgf_activate_grad)."""
    if act == "relu":
        return (out > 0) * g
    if act == "tanh":
        return _tanh_slope(out) * g
    if act == "sigmoid":
        return (out * (1.0 - out)) * g
    if act == "gelu":
        return _gelu_slope(z) * g
    return g


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


def _neuron(w, xs, b, act, op="neuron_"):
    """One fused neuron, act(b + sum w_i x_i) (mirrored by MGF_NEURON); with
    op "layer_", an output of a block (mirrored by MGF_LAYER, see
    _block), where b may be None: no bias, the sum starts from 0.0."""
    z = 0.0 if b is None else b._data
    for i in range(len(xs)):
        z = z + w[i]._data * xs[i]._data
    kids = (*w, *xs) if b is None else (*w, *xs, b)
    out = Value(_activate(act, z), kids, op + act)
    nin = len(xs)
    pre_activation = [z]  # recompute() sets it anew (mirrored by the node's param)
    out._local = _neuron_local_grads(act, pre_activation)

    def _fwd():
        z = 0.0 if b is None else b._data
        for i in range(nin):
            z = z + w[i]._data * xs[i]._data
        pre_activation[0] = z
        return _activate(act, z)

    out._fwd = _fwd

    def _backward():
        pre = _activate_grad(act, pre_activation[0], out._data, out._grad)
        for i in range(nin):
            wi = w[i]
            xi = xs[i]
            wi._grad += xi._data * pre
            xi._grad += wi._data * pre
        if b is not None:
            b._grad += pre

    _backward.vjp = None if act == "gelu" or op != "neuron_" else _vjp_neuron
    out._backward = _backward
    return out


def _block(W, B, rows, act):  # mirrored by MGF_LAYER
    """One layer over a batch, as one block (mirrored by MGF_LAYER and the
    kernels of csrc/mgf_block.h): for each row of inputs, sample by sample,
    the layer's neurons, neuron by neuron, each a node of _op 'layer_<act>'
    whose children are those of a fused neuron.  B may be None (no biases).

    The order of every sum is the compiled core's.  Forward, each output
    sums b + w_0*x_0 + w_1*x_1 + ... left to right.  Backward visits the
    outputs in reverse creation order, and each adds its terms to its
    children: so a weight's grad takes its terms sample by sample from the
    last row, a bias's too, and an input's grad neuron by neuron from the
    last neuron, each from the grad it had.  The compiled core takes the
    same sums in the same orders, for the whole block at once, when
    backward reaches the block's head (see the top of csrc/mgf_block.h)."""
    return [
        [_neuron(W[j], x, None if B is None else B[j], act, "layer_") for j in range(len(W))]
        for x in rows
    ]


def _batch_rows(X, nin, who):
    """X as a list of rows, each a list of nin floats or Values; every row
    checked and every item converted before anything is built."""
    if hasattr(X, "ndim") and hasattr(X, "tolist"):
        if X.ndim != 2:
            raise TypeError(f"{who} expects a batch of rows, not a {X.ndim}-D array")
        X = X.tolist()
    try:
        rows = list(X)
    except TypeError:
        raise TypeError(f"{who} expects a batch of rows, not {type(X).__name__}") from None
    out = []
    for row in rows:
        try:
            r = list(row)
        except TypeError:
            raise TypeError(f"{who}: each row must be a sequence of inputs, not "
                            f"{type(row).__name__}") from None
        if len(r) != nin:
            raise ValueError(f"{who} expects rows of {nin} inputs, got {len(r)}")
        for i, v in enumerate(r):
            if isinstance(v, Value):
                _check_initialized(v)
            else:
                r[i] = _as_float(v, "input")
        out.append(r)
    return out


def _distinct(values):
    return len({id(v) for v in values}) == len(values)


def mlp_rows(spec, X, *, fused=True):
    """Layers applied to a batch: ``X`` holds N rows of ``nin`` inputs (a 2-D
    array, or rows of numbers or Values).  Each layer is one block
    (``_block``); returns N lists of the last layer's outputs.  The numbers
    and gradients are those of ``mlp(spec, row)`` called on each row in
    turn, fused or not.

    Where a node is among one layer's parameters and inputs twice, or a
    parameter serves two layers, or (``fused=False``) a class operator was
    replaced, the rows are built one by one with ``mlp`` instead (the same
    numbers by definition; see the top of the compiled core's _block.pxi)."""
    plan = spec if isinstance(spec, MLPPlan) else mlp_plan(spec)
    rows = _batch_rows(X, plan.nin, "mlp_rows")
    if not rows:
        return []
    params = [p for W, B, _ in plan for row in W for p in row] + [
        b for _, B, _ in plan for b in B]
    inputs = [v for row in rows for v in row if isinstance(v, Value)]
    if not _distinct(params + inputs) or (not fused and not _class_ops_own()):
        return [mlp(plan, row, fused=fused) for row in rows]
    xs = [_input_values(row) for row in rows]
    for W, B, act in plan:
        xs = _block(W, B, xs, act)
    return xs


def linear(x, w):
    """microgpt's ``linear`` as one block: for each row of ``w``, ``sum(w_i *
    x_i)`` from 0, left to right, the numbers and gradients of ``[sum(wi *
    xi for wi, xi in zip(row, x)) for row in w]``.  ``x``: nin Values or
    numbers; ``w``: rows of nin Values.  Returns a list of ``len(w)`` Values
    with ``_op`` 'layer_linear' (children: the row's weights, then x)."""
    xs = list(x)
    rows = [_as_row(row) for row in w]
    for j, row in enumerate(rows):
        if len(row) != len(xs):
            raise ValueError(f"linear: row {j} has {len(row)} weights, expected "
                             f"{len(xs)} (one per input)")
        for v in row:
            if not isinstance(v, Value):
                raise TypeError(f"a weight must be a Value, not {type(v).__name__}")
            _check_initialized(v)
    for i, v in enumerate(xs):
        if isinstance(v, Value):
            _check_initialized(v)
        else:
            xs[i] = _as_float(v, "input")
    values = [v for row in rows for v in row] + [v for v in xs if isinstance(v, Value)]
    if not rows or not _distinct(values):
        return [sum([wi * xi for wi, xi in zip(row, xs)], 0) for row in rows]
    return _block(rows, None, [_input_values(xs)], "linear")[0]


def _chain_inputs(x):
    """Inputs of an unfused layer call: Values as they are, numbers as
    floats (each neuron's ``w * x`` makes its own leaf of them)."""
    xs = []
    for i, xi in enumerate(x):
        if isinstance(xi, Value):
            xs.append(xi)
        elif _is_number(xi):
            xs.append(_as_float(xi, "input"))
        else:
            raise TypeError(
                f"layer: input {i} must be a Value or a real number, "
                f"not {type(xi).__name__}"
            )
    return xs


def _chain_neuron(w, xs, b, act):
    """micrograd's Neuron graph: ``sum((wi * xi for ...), b)``, then the
    activation's op (none when linear)."""
    acc = b
    for wi, xi in zip(w, xs):
        acc = _value_add(acc, _value_mul(wi, xi))
    if act == "linear":
        return acc
    return _ACT_METHODS[act](acc)


def _neuron_local_grads(act, pre_activation):
    def local(v):
        kids = v._kids
        m = (len(kids) - 1) // 2
        s = _activate_grad(act, pre_activation[0], v._data, 1.0)
        return (
            *(kids[m + j]._data * s for j in range(m)),
            *(kids[j]._data * s for j in range(m)),
            s,
        )

    return local


def layer(W, B, x, act, *, fused=True):
    """A layer of neurons, each ``act(b + w_0*x_0 + w_1*x_1 + ...)``.

    ``W`` holds ``nout`` rows of ``nin`` weight Values, ``B`` the ``nout``
    bias Values, ``x`` the ``nin`` inputs (Values or numbers).  Returns a
    list of ``nout`` Values.  The same as ``mlp(((W, B, act),), x,
    fused=fused)``.

    ``fused=True``: one node per neuron.  Neuron ``j`` computes ``z =
    B[j] + W[j][0]*x[0] + ...`` left to right, then ``act``; its node has
    ``_op == 'neuron_' + act`` and children ``(w_0..w_{nin-1},
    x_0..x_{nin-1}, b)``; numbers among the inputs become leaf Values once
    per call, shared by every neuron.

    ``fused=False``: micrograd's graph, node for node: per neuron, for each
    input a leaf when it is a number (one per neuron), the ``'*'`` node
    ``w_i * x_i`` and the ``'+'`` node ``acc + w_i * x_i`` (``acc`` starting
    at the bias), then the activation's op node (``'ReLU'`` for relu; none
    when linear).
    """
    return mlp(((W, B, act),), x, fused=fused)


class MLPPlan(tuple):
    """A frozen, checked copy of a spec of layers, made by ``mlp_plan`` only
    (``MLPPlan()`` is a TypeError, as in the compiled core)."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("MLPPlan objects are made by mlp_plan()")

    @classmethod
    def _make(cls, layers, nin):
        plan = tuple.__new__(cls, layers)
        plan._nin = nin
        return plan

    @property
    def nin(self):
        return self._nin

    @property
    def nout(self):
        return len(self[-1][1])

    def __reduce_ex__(self, protocol):
        raise TypeError("an MLPPlan does not pickle or copy: make one with mlp_plan()")

    def __repr__(self):
        sizes = [self._nin] + [len(B) for _, B, _ in self]
        return f"MLPPlan(sizes={sizes}, acts={[act for _, _, act in self]})"


def _check_nin(nin):
    """nin as an int in [0, _MAX_NIN]: TypeError or ValueError otherwise."""
    try:
        nin = operator.index(nin)
    except TypeError:
        raise TypeError(f"nin must be an int, not {type(nin).__name__}") from None
    if nin < 0:
        raise ValueError("nin must not be negative")
    if nin > _MAX_NIN:
        raise ValueError(f"nin must be at most {_MAX_NIN}, got {nin}")
    return nin


def mlp_plan(spec, nin=None):
    """Check a spec of ``(W, B, act)`` layers once and freeze it (tuples of
    the same Values), for repeated ``mlp`` calls.  ``nin`` defaults to the
    length of the first weight row (0 when the first layer has no rows).

    Checks, in this order for each layer (as the compiled core does): the
    item is a ``(W, B, act)`` tuple, ``act`` is known, every row of ``W``
    and ``B`` itself is iterable, there is one bias per row, every row has
    one weight per input, weights and biases are Values."""
    layers = list(spec)
    if not layers:
        raise ValueError("mlp: spec must contain at least one layer")
    width = None if nin is None else _check_nin(nin)
    frozen = []
    for item in layers:
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError("mlp: spec items must be (W, B, act) tuples")
        W, B, act = item
        _check_act(act)
        rows = tuple(_as_row(row) for row in W)
        biases = tuple(B)
        nout = len(rows)
        if len(biases) != nout:
            raise ValueError(f"layer has {nout} weight rows but {len(biases)} biases")
        if width is None:
            width = _check_nin(len(rows[0]) if rows else 0)
        if not frozen:
            plan_nin = width
        for j in range(nout):
            row = rows[j]
            if len(row) != width:
                raise ValueError(
                    f"neuron {j} has {len(row)} weights, expected {width} (one per input)"
                )
            for w in row:
                if not isinstance(w, Value):
                    raise TypeError(f"a weight must be a Value, not {type(w).__name__}")
                _check_initialized(w)
            if not isinstance(biases[j], Value):
                raise TypeError(f"a bias must be a Value, not {type(biases[j]).__name__}")
            _check_initialized(biases[j])
        frozen.append((rows, biases, act))
        width = nout
    return MLPPlan._make(frozen, plan_nin)


def _as_row(row):
    try:
        return tuple(row)
    except TypeError:
        raise TypeError(
            f"weight rows must be sequences of Values, not {type(row).__name__}"
        ) from None


def mlp(spec, x, *, fused=True):
    """Layers applied in turn: ``spec`` is a list of ``(W, B, act)`` (or a
    plan from ``mlp_plan``); ``fused`` as for ``layer``.

    The output list of each layer is the input of the next; the last
    layer's list is returned.  An empty ``spec`` is a ValueError.  Every
    check is made before any node is built.
    """
    xs = list(x)  # one private copy of the inputs
    plan = spec if isinstance(spec, MLPPlan) else mlp_plan(spec, len(xs))
    if len(xs) != plan.nin:
        raise ValueError(f"mlp expects {plan.nin} inputs, got {len(xs)}")
    if fused:
        xs = _input_values(xs)
        for rows, biases, act in plan:
            xs = [_neuron(rows[j], xs, biases[j], act) for j in range(len(rows))]
    elif not _class_ops_own():
        _chain_inputs(xs)  # the same checks
        xs = _mlp_through_class(plan, xs)
    else:
        xs = _chain_inputs(xs)
        for rows, biases, act in plan:
            xs = [_chain_neuron(rows[j], xs, biases[j], act) for j in range(len(rows))]
    return xs


def _class_ops_own():
    """Whether +, *, the activations' methods and __init__ of the class are
    still the ones the unfused layers build with (upstream's nn makes every
    node with Value(...), so a replaced __init__ runs for each)."""
    return (Value.__add__ is _value_add and Value.__mul__ is _value_mul
            and Value.__dict__.get("__init__") is _value_init
            and all(getattr(Value, act) is m for act, m in _ACT_METHODS.items()))


def _mlp_through_class(plan, xs):
    """micrograd's Neuron graph made with the class's operators, as
    upstream's nn.py makes it: taken when one of them was replaced on the
    class (``Value.__add__ = logged_add``), so the replacement runs for
    every node, as it would upstream."""
    for rows, biases, act in plan:
        outs = []
        for w, b in zip(rows, biases):
            acc = sum((wi * xi for wi, xi in zip(w, xs)), b)
            outs.append(acc if act == "linear" else getattr(acc, act)())
        xs = outs
    return xs


def _mlp_call(plan, x, fused):
    """nn.MLP's common call: ``mlp(plan, x, fused=fused)`` when ``x`` is a
    list of ``plan.nin`` items, its one output itself when there is one;
    None for any other ``x`` (the caller then takes its general path)."""
    if type(x) is not list or len(x) != plan.nin:
        return None
    outs = mlp(plan, x, fused=fused)
    return outs[0] if len(outs) == 1 else outs


# -- optimizer updates and parameter arrays -------------------------------------


def _check_values(values, what):
    """One private snapshot (list) of values, every item an initialized
    Value (``what`` names an item in the TypeError): the updates read only
    this list, after every check."""
    values = list(values)
    for v in values:
        if not isinstance(v, Value):
            raise TypeError(f"{what} must be a Value, not {type(v).__name__}")
        _check_initialized(v)
    return values


def _check_initialized(v):
    """RuntimeError for a Value made by Value.__new__ without __init__ (as
    the compiled core raises)."""
    if "_seq" not in v.__dict__:
        raise RuntimeError("this Value was never initialized (Value.__new__ without __init__)")


#: The buffer formats of a native float64 (struct / PEP 3118 codes).
_F64_FORMATS = frozenset(("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d"))


def _check_state(arr, n, name):
    """An optimizer state array: any writeable, C-contiguous, 1-D buffer of
    native float64 with n entries (a NumPy array, array.array('d'), a
    memoryview).  TypeError for an object that is no buffer, ValueError for
    a buffer of another kind."""
    try:
        view = memoryview(arr)
    except TypeError:
        raise TypeError(
            f"{name} must be a 1-D float64 array, not {type(arr).__name__}"
        ) from None
    with view:
        if view.format not in _F64_FORMATS or view.ndim != 1 or not view.c_contiguous:
            raise ValueError(
                f"{name} must be a C-contiguous 1-D float64 array "
                f"(got format {view.format!r}, {view.ndim} dimensions)"
            )
        if view.readonly:
            raise ValueError(f"{name} must be writeable")
        if view.shape[0] != n:
            raise ValueError(f"{name}: expected {n} entries (one per parameter), got {view.shape[0]}")


def sgd_update(params, lr, momentum, buf, first, weight_decay=0.0):
    """One SGD step, in place.  ``buf`` (float64, one per parameter) is the
    momentum buffer; it may be None when ``momentum == 0``.  With
    ``weight_decay``, each gradient is ``grad + weight_decay * data`` (an
    L2 term, as ``torch.optim.SGD`` adds it)."""
    params = _check_values(params, "a parameter")
    lr = _as_float(lr, "lr")
    momentum = _as_float(momentum, "momentum")
    weight_decay = _as_float(weight_decay, "weight_decay")
    if buf is not None or momentum != 0:  # without momentum buf may be None
        _check_state(buf, len(params), "buf")
    for i, p in enumerate(params):
        g = p._grad
        if weight_decay != 0:
            g = g + weight_decay * p._data
        if momentum == 0:
            p._data = p._data - lr * g
            continue
        if first:
            b = g
        else:
            b = momentum * float(buf[i]) + g
        buf[i] = b
        p._data = p._data - lr * b


def adam_update(params, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step (``decoupled``: AdamW), in place; ``t`` is the 1-based
    step number, already incremented."""
    params = _check_values(params, "a parameter")
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
    # IEEE arithmetic from here on, as C computes it: no exception half way
    bc1 = 1.0 - _pow_ieee(beta1, t)
    bc2 = 1.0 - _pow_ieee(beta2, t)
    if bc1 == 0.0 or bc2 == 0.0:  # checked before anything is written
        raise ZeroDivisionError("adam bias correction is zero (beta1 or beta2 ** t == 1)")
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
        upd = _div_ieee(mhat, (math.sqrt(vhat) if vhat >= 0.0 else math.nan) + eps)
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
    values = _check_values(values, "each item")
    if which == "data":
        return np.array([v._data for v in values], dtype=np.float64)
    return np.array([v._grad for v in values], dtype=np.float64)


def scatter(values, array, which="data"):
    """Write ``array`` back into ``.data`` (or ``.grad``) of each Value."""
    import numpy as np

    _check_which(which)
    values = _check_values(values, "each item")
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
    for v in _check_values(values, "each item"):
        v._grad = 0.0


# -- gradients as Values: grad() ---------------------------------------------------
# Each built-in rule also says how to write itself as nodes (its
# ``_backward.vjp``): vjp(out, g, acc) makes, from the gradient node g of
# out, each child's term with the ordinary ops and hands it to acc(child,
# term) at once, in the order the rule adds to the children, so the nodes
# are made in the compiled core's order (mirrored by mgf_grad_graph).  Every
# term's data is the number the rule computes.


def _pow_const(x, e, em1, name, data):
    """A node x ** e with the data given (mirrored by MGF_POWC); the
    derivative's exponent em1 is e - 1 as the exponent's own arithmetic
    gives it (_exponent_minus_one)."""
    out = Value(data, (x,), name)
    out._local = lambda v: (e * _pow_ieee(x._data, em1),)
    out._fwd = lambda: _pow_forward(x._data, e)

    def _backward():
        x._grad += (e * _pow_ieee(x._data, em1)) * out._grad

    _backward.vjp = lambda v, g, acc: _vjp_pow_const(v, e, em1, g, acc)
    out._backward = _backward
    return out


def _pow_value_node(x, y, data):
    """A node x ** y of two Values with the data given (mirrored by MGF_POWV)."""
    out = Value(data, (x, y), "**")
    out._local = _lg_pow_value
    out._fwd = lambda: _pow_forward(x._data, y._data)

    def _backward():
        xd, e = x._data, y._data
        x._grad += (e * _pow_ieee(xd, e - 1.0)) * out._grad
        if xd > 0.0:
            d = out._data * math.log(xd)
        elif xd == 0.0 and e >= 0.0:
            d = 0.0
        else:
            d = math.nan
        y._grad += d * out._grad

    _backward.vjp = _vjp_pow_value
    out._backward = _backward
    return out


def _leaf(x):
    """A leaf made as the compiled core makes a gradient graph's constants
    (not through the class: a replaced __init__ does not run)."""
    v = Value.__new__(Value)
    _value_init(v, x)
    return v


def _one_minus(v):
    """1 - v written as upstream writes it, v * -1 + 1: the same double."""
    return _value_add(_value_mul(v, -1.0), 1.0)


def _vjp_add(out, g, acc):
    for c in out._kids:
        acc(c, g)


_vjp_sum = _vjp_add


def _vjp_mul(out, g, acc):
    x, y = out._kids
    acc(x, _value_mul(y, g))
    acc(y, _value_mul(x, g))


def _vjp_pow_const(out, e, em1, g, acc):
    (x,) = out._kids
    p = _pow_const(x, em1, _exponent_minus_one(em1, em1), _pow_op_name(em1),
                   _pow_ieee(x._data, em1))
    acc(x, _value_mul(_value_mul(_leaf(e), p), g))


def _vjp_pow_value(out, g, acc):
    x, y = out._kids
    xd = x._data
    em1 = _value_add(y, -1.0)
    p = _value_mul(y, _pow_value_node(x, em1, _pow_ieee(xd, em1._data)))
    acc(x, _value_mul(p, g))
    if xd > 0.0:
        d = _value_mul(out, _value_log(x))
    else:
        d = _leaf(0.0 if xd == 0.0 and y._data >= 0.0 else math.nan)
    acc(y, _value_mul(d, g))


def _act_vjp(act, out, g):
    """The activation's factor times g as nodes (mirrored by mgf_gg_act)."""
    if act == "relu":
        return _value_mul(_leaf(float(out._data > 0)), g)
    if act == "tanh":
        square = _pow_const(out, 2.0, 1.0, _pow_op_name(2.0), _pow_ieee(out._data, 2.0))
        return _value_mul(_one_minus(square), g)
    if act == "sigmoid":
        return _value_mul(_value_mul(out, _one_minus(out)), g)
    return g


def _vjp_relu(out, g, acc):
    acc(out._kids[0], _act_vjp("relu", out, g))


def _vjp_tanh(out, g, acc):
    acc(out._kids[0], _act_vjp("tanh", out, g))


def _vjp_sigmoid(out, g, acc):
    acc(out._kids[0], _act_vjp("sigmoid", out, g))


def _vjp_exp(out, g, acc):
    acc(out._kids[0], _value_mul(out, g))


def _vjp_log(out, g, acc):
    (x,) = out._kids
    inverse = _pow_const(x, -1.0, -2.0, _pow_op_name(-1.0), _div_ieee(1.0, x._data))
    acc(x, _value_mul(inverse, g))


def _vjp_neuron(out, g, acc):
    kids = out._kids
    m = (len(kids) - 1) // 2
    pre = _act_vjp(out._opname[len("neuron_"):], out, g)
    for j in range(m):
        acc(kids[j], _value_mul(kids[m + j], pre))
        acc(kids[m + j], _value_mul(kids[j], pre))
    acc(kids[2 * m], pre)


def _value_list(xs, what):
    items = [xs] if isinstance(xs, Value) else list(xs)
    for v in items:
        if not isinstance(v, Value):
            raise TypeError(f"grad() {what} item must be a Value, not {type(v).__name__}")
        _check_initialized(v)
    return items


def _seed_list(grad_outputs, n):
    if grad_outputs is None:
        return [1.0] * n
    if isinstance(grad_outputs, Value) or _is_number(grad_outputs):
        seeds = [grad_outputs]
    else:
        seeds = list(grad_outputs)
    if len(seeds) != n:
        raise ValueError(f"grad(): {len(seeds)} grad_outputs for {n} outputs")
    for k, s in enumerate(seeds):
        if isinstance(s, Value):
            _check_initialized(s)
        else:
            seeds[k] = _as_float(s, "grad_outputs item")
    return seeds


def _reachable(outs):
    seen = {}
    stack = list(outs)
    for v in outs:
        seen[id(v)] = v
    while stack:
        v = stack.pop()
        for c in v._kids:
            if id(c) not in seen:
                seen[id(c)] = c
                stack.append(c)
    return sorted(seen.values(), key=_by_seq, reverse=True)


def grad(outputs, inputs, grad_outputs=None, *, create_graph=False):
    """The gradients of outputs with respect to inputs, as a list of Values.

    outputs: a Value or a sequence of Values; inputs: a Value or a sequence
    of Values; grad_outputs: what each output's gradient starts from (1.0
    by default; Values make the result depend on them).  An input the
    outputs do not depend on gets Value(0.0).  No ``.grad`` field is
    changed.

    create_graph=False: leaf Values holding the numbers backward() would
    accumulate, bit for bit.  create_graph=True: the gradients are built as
    graph nodes from the ordinary ops (each rule's ``vjp``), so grad() of
    them, or backward() from them, gives higher derivatives; a node whose
    rule is a Python _backward, or fixed local gradients, or gelu, is
    refused with RuntimeError."""
    outs = _value_list(outputs, "outputs")
    ins = _value_list(inputs, "inputs")
    seeds = _seed_list(grad_outputs, len(outs))
    if create_graph:
        seeds = [s if isinstance(s, Value) else Value(s) for s in seeds]
        return _grad_graph(outs, ins, seeds)
    return [Value(x) for x in _grad_numbers(outs, ins, seeds)]


def _grad_numbers(outs, ins, seeds):
    """backward()'s pass from the outputs, into grads zeroed for it and put
    back after (Python rules run as in backward())."""
    global _passes
    order = _reachable(outs)
    saved = [v._grad for v in order]
    for v in order:
        v._grad = 0.0
    seeded = set()
    for o, s in zip(outs, seeds):
        s = s._data if isinstance(s, Value) else s
        if id(o) in seeded:
            o._grad += s
        else:
            o._grad = s
        seeded.add(id(o))
    reached = {id(v) for v in order}
    _passes += 1
    try:
        for v in order:
            v._backward()
        return [x._grad if id(x) in reached else 0.0 for x in ins]
    finally:
        _passes -= 1
        for v, g in zip(order, saved):
            v._grad = g


def _refused_name(v):
    """How grad(create_graph=True) names node v, refused."""
    rule = v._backward
    if type(v._local) is tuple and v._local and not hasattr(rule, "vjp"):
        why = "its local gradients are fixed numbers (Value(data, children, local_grads))"
    elif hasattr(rule, "vjp"):
        why = "its rule is not written as nodes (no higher derivatives of it)"
    else:
        why = "its rule is a Python _backward, which has no derivative of its own"
    return (f"grad(create_graph=True): cannot differentiate the rule of the node with "
            f"_op {v._op!r}: {why}")


def _mark_grad_made(tops, first):
    """Nodes made since creation number first, below tops: a gradient
    graph's, which recompute() refuses (the flag MGF_AUX_GRAD)."""
    stack = [v for v in tops if v._seq >= first]
    while stack:
        v = stack.pop()
        if v._kids and v._fwd is not _GRAD_MADE:
            v._fwd = _GRAD_MADE
            stack.extend(c for c in v._kids if c._seq >= first)


def _grad_graph(outs, ins, seeds):
    """The gradient graph: checked first, then built in reverse creation
    order (mirrored by mgf_grad_graph)."""
    order = _reachable(outs)
    for v in order:
        rule = v._backward
        if rule is not _no_backward and getattr(rule, "vjp", None) is None:
            raise RuntimeError(_refused_name(v))
    grads = {}

    def acc(c, t):
        # a gradient starts from 0.0: a first term of -0.0 becomes 0.0 + t
        g = grads.get(id(c))
        if g is not None:
            grads[id(c)] = _value_add(g, t)
        elif t._data == 0.0 and math.copysign(1.0, t._data) < 0.0:
            grads[id(c)] = _value_add(_leaf(0.0), t)
        else:
            grads[id(c)] = t

    for o, s in zip(outs, seeds):
        g = grads.get(id(o))
        grads[id(o)] = s if g is None else _value_add(g, s)
    first = next(_creation_counter)  # the nodes made from here on are the graph's
    for v in order:
        g = grads.get(id(v))
        if g is not None and v._backward is not _no_backward:
            v._backward.vjp(v, g, acc)
    _mark_grad_made(grads.values(), first)
    reached = {id(v) for v in order}
    out = []
    for x in ins:
        g = grads.get(id(x)) if id(x) in reached else None
        out.append(Value(0.0) if g is None else g)
    return out
