"""Stateful fuzz of Python state on Values: the compiled core and the pure
engine run the same rules in lockstep.

Rules build values (binary and unary ops, lecture-style custom ops whose
``_backward`` closure captures its own output), set labels, attributes and
``_backward`` closures (before and after the node is used), drop Values,
keep inner nodes through ``_prev``, re-initialise leaves (with themselves
as a child), register weakref callbacks and ``__del__`` finalizers that
build Values and read ``_prev``, fill the arena so that the next op must
reclaim, force reclamation, run the cyclic collector and call
``backward()``.  After every rule: both engines agree on data, grad,
label, ``_op`` and ``len(_prev)`` of every Value held, callbacks and
finalizers saw consistent graphs, and the arena's invariants hold; a rule
checks that the arena holds no more nodes than the Values held can reach.

``MICROGRAD_FAST_STATE_EXAMPLES`` sets the number of examples (default 10,
a few seconds); ``tools/state_fuzz.sh`` runs long campaigns under the debug
build and AddressSanitizer.
"""

import gc
import importlib
import math
import os
import random
import struct
import weakref

import pytest
from conftest import ENGINE_MODULES, NO_EXTENSIONS
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from op_examples import unary_methods

from micrograd_fast import nn

pytestmark = pytest.mark.skipif(
    NO_EXTENSIONS, reason="compares the compiled core, MICROGRAD_FAST_NO_EXTENSIONS is set"
)

EXAMPLES = int(os.environ.get("MICROGRAD_FAST_STATE_EXAMPLES", "10"))
STEPS = int(os.environ.get("MICROGRAD_FAST_STATE_STEPS", "40"))
ARITH_ERRORS = (ZeroDivisionError, OverflowError, ValueError)

C = importlib.import_module(ENGINE_MODULES["c"])
P = importlib.import_module(ENGINE_MODULES["py"])

NUMBERS = st.sampled_from([0.0, 1.0, -1.0, 0.5, -2.0, 3.0, 0.25, 1e-3, 7.5])
INDEX = st.integers(min_value=0, max_value=10_000)


class _Stop(Exception):
    """Raised by a Python _backward to stop a pass."""


def _bits(x):
    if math.isnan(x):
        return "nan"
    return struct.pack("<d", x)


class Pair:
    """The same Value in both engines, and what the machine knows of it."""

    __slots__ = ("c", "py", "leaf", "used")

    def __init__(self, c, py, leaf=False):
        self.c, self.py, self.leaf, self.used = c, py, leaf, False


def _prev_key(v):
    return sorted(repr(c.data) for c in v._prev)


class StateMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.pairs = []
        self.held = []  # compiled Values that callbacks and finalizers keep
        self.fill = []
        self.errors = []
        self.refs = []
        self.in_reinit = False
        self.replaced = {}  # class -> {name: original} of the replaced operators
        self.in_callback = False
        self.op_calls_c, self.op_calls_py = {}, {}
        self.models = []
        for E in (C, P):
            random.seed(7)
            self.models.append(nn.MLP(2, [3, 1], engine=E))
        gc.collect()
        C.compact()
        self.base = C.arena_stats()["nodes"]

    # helpers -------------------------------------------------------------
    def _pick(self, i):
        return self.pairs[i % len(self.pairs)]

    def _both(self, fc, fp):
        """Run fc on the compiled side and fp on the pure side: both give a
        result, or both raise the same arithmetic error."""
        try:
            rc = fc()
        except ARITH_ERRORS as e:
            rc = type(e)
        try:
            rp = fp()
        except ARITH_ERRORS as e:
            rp = type(e)
        if isinstance(rc, type) or isinstance(rp, type):
            assert rc is rp, (rc, rp)
            return None
        return rc, rp

    def _add(self, rc, rp, *inputs):
        for p in inputs:
            p.used = True
        self.pairs.append(Pair(rc, rp))

    def _checker(self, engine, parent_c, parent_py):
        """A callback body: build a Value and read a parent's _prev."""
        errors = self.errors
        machine = self

        def check(*_):
            outer, machine.in_callback = machine.in_callback, True
            try:
                v = engine.Value(3.0) * 2.0
                if v.data != 6.0:
                    errors.append(f"built {v.data!r}")
                # (a re-initialisation changes _prev in one engine, then the other)
                if not machine.in_reinit and _prev_key(parent_c) != _prev_key(parent_py):
                    errors.append(f"_prev {_prev_key(parent_c)} != {_prev_key(parent_py)}")
            except Exception as e:  # noqa: BLE001 - recorded, checked after the rule
                errors.append(repr(e))
            finally:
                machine.in_callback = outer

        return check

    # rules: values -------------------------------------------------------
    @rule(x=NUMBERS)
    def leaf(self, x):
        self.pairs.append(Pair(C.Value(x), P.Value(x), leaf=True))

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, j=INDEX, op=st.sampled_from(["+", "*", "-", "/"]))
    def binary(self, i, j, op):
        a, b = self._pick(i), self._pick(j)
        f = {"+": lambda x, y: x + y, "*": lambda x, y: x * y,
             "-": lambda x, y: x - y, "/": lambda x, y: x / y}[op]
        r = self._both(lambda: f(a.c, b.c), lambda: f(a.py, b.py))
        if r:
            self._add(*r, a, b)

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, c=NUMBERS, op=st.sampled_from(["+", "*", "r-", "**2"]))
    def with_constant(self, i, c, op):
        a = self._pick(i)
        f = {"+": lambda x: x + c, "*": lambda x: c * x, "r-": lambda x: c - x,
             "**2": lambda x: x**2}[op]
        r = self._both(lambda: f(a.c), lambda: f(a.py))
        if r:
            self._add(*r, a)

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, op=st.sampled_from(unary_methods()))
    def unary(self, i, op):
        a = self._pick(i)
        r = self._both(lambda: getattr(a.c, op)(), lambda: getattr(a.py, op)())
        if r:
            self._add(*r, a)

    @staticmethod
    def _custom(engine, x, y):
        """Lecture-style custom op: out = x * y + x, closure captures out."""
        out = engine.Value(x.data * y.data + x.data, (x, y), "fma")

        def _backward():
            x.grad += (y.data + 1.0) * out.grad
            y.grad += x.data * out.grad

        out._backward = _backward
        return out

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, j=INDEX)
    def custom(self, i, j):
        a, b = self._pick(i), self._pick(j)
        self._add(self._custom(C, a.c, b.c), self._custom(P, a.py, b.py), a, b)

    # rules: state ----------------------------------------------------------
    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, text=st.sampled_from(["a", "b", "", "label"]))
    def set_label(self, i, text):
        p = self._pick(i)
        p.c.label = text
        p.py.label = text

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, x=NUMBERS)
    def set_attribute(self, i, x):
        p = self._pick(i)
        p.c.tag = x
        p.py.tag = x

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, scale=NUMBERS)
    def set_backward(self, i, scale):
        """A Python _backward that captures its own node (a cycle)."""
        p = self._pick(i)
        for v in (p.c, p.py):
            def bw(v=v):
                for c in v._prev:
                    c.grad += scale * v.grad

            v._backward = bw

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX)
    def set_raising_backward(self, i):
        """A Python _backward that raises: a pass through it stops there."""
        p = self._pick(i)

        def stop():
            raise _Stop

        p.c._backward = stop
        p.py._backward = stop

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, x=NUMBERS, j=INDEX, with_self=st.booleans())
    def reinit_leaf(self, i, x, j, with_self):
        p, q = self._pick(i), self._pick(j)
        if not p.leaf or p.used or p is q:
            return
        self.in_reinit = True
        try:
            for v, w in ((p.c, q.c), (p.py, q.py)):
                v.__init__(x, (v, w) if with_self else (w,), "re")
        finally:
            self.in_reinit = False
        p.leaf = False
        q.used = True

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, x=NUMBERS, j=INDEX, with_child=st.booleans())
    def reinit_any(self, i, x, j, with_child):
        """__init__ again on any node, used or not, with a child made before
        or after it (or none): rewired in place, moved, or refused with
        ValueError, alike on both engines."""
        p, q = self._pick(i), self._pick(j)
        if with_child and p is q:
            return
        outcome = []
        self.in_reinit = True
        try:
            for v, w in ((p.c, q.c), (p.py, q.py)):
                try:
                    v.__init__(x, (w,) if with_child else ())
                except ValueError:
                    outcome.append(False)
                else:
                    outcome.append(True)
        finally:
            self.in_reinit = False
        assert outcome[0] == outcome[1]
        if outcome[0]:
            p.leaf = not with_child
            if with_child:
                q.used = True

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX, x=NUMBERS)
    def set_data_late(self, i, x):
        """data set on any node, used or not (backward reads it then)."""
        p = self._pick(i)
        p.c.data = x
        p.py.data = x

    # rules: the class and a model ------------------------------------------
    @rule(name=st.sampled_from(["__add__", "__mul__", "relu", "tanh"]))
    def replace_operator(self, name):
        """An operator replaced on the class by one that counts its calls and
        calls the original (as a notebook logs the nodes it makes)."""
        for cls, count in ((C.Value, self.op_calls_c), (P.Value, self.op_calls_py)):
            if name in self.replaced.setdefault(cls, {}):
                continue
            original = cls.__dict__[name]
            self.replaced[cls][name] = original

            def logged(*args, _original=original, _count=count, _name=name, _m=self):
                if not _m.in_callback:  # (callbacks build on the compiled side only)
                    _count[_name] = _count.get(_name, 0) + 1
                return _original(*args)

            setattr(cls, name, logged)

    @rule()
    def restore_operators(self):
        for cls, saved in self.replaced.items():
            for name, original in saved.items():
                setattr(cls, name, original)
        self.replaced = {}

    @rule(x=NUMBERS, y=NUMBERS)
    def call_model(self, x, y):
        outs = [m([x, y]) for m in self.models]
        self._add(*outs)

    @rule(kind=st.sampled_from(["weight", "act", "fused", "neuron"]), x=NUMBERS)
    def mutate_model(self, kind, x):
        """The model changed between calls: a weight replaced, an
        activation or the fused switch changed, a neuron dropped."""
        for m, V in zip(self.models, (C.Value, P.Value)):
            layer = m.layers[0]
            if kind == "weight":
                layer.neurons[0].w[1] = V(x)
            elif kind == "act":
                last = layer.neurons[-1]
                last.act = "tanh" if last.act != "tanh" else "relu"
            elif kind == "fused":
                m.fused = not m.fused
            elif len(m.layers[-1].neurons[0].w) == len(layer.neurons) and len(layer.neurons) > 1:
                layer.neurons.pop()
                m.layers[-1].neurons[0].w.pop()

    # rules: lifetimes ------------------------------------------------------
    @precondition(lambda self: self.pairs)
    @rule(i=INDEX)
    def drop(self, i):
        del self.pairs[i % len(self.pairs)]

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX)
    def keep_inner(self, i):
        """Hold the children of a node (as the user would via _prev)."""
        p = self._pick(i)
        kc = sorted(p.c._prev, key=lambda v: (_bits(v.data), _bits(v.grad), v.label))
        kp = sorted(p.py._prev, key=lambda v: (_bits(v.data), _bits(v.grad), v.label))
        keys = [(_bits(v.data), _bits(v.grad), v.label) for v in kc]
        if len(set(keys)) != len(keys):
            return  # children that look alike cannot be paired up
        for c, py in zip(kc, kp):
            self.pairs.append(Pair(c, py))
            self.pairs[-1].used = True

    @precondition(lambda self: len(self.pairs) >= 2)
    @rule(i=INDEX, j=INDEX)
    def weakref_callback(self, i, j):
        """A weakref to one Value whose callback builds a Value and reads
        another's _prev."""
        p, parent = self._pick(i), self._pick(j)
        self.held.append(parent.c)
        for v, engine in ((p.c, C), (p.py, P)):
            self.refs.append(weakref.ref(v, self._checker(engine, parent.c, parent.py)))

    @precondition(lambda self: len(self.pairs) >= 1)
    @rule(i=INDEX, j=INDEX, cyclic=st.booleans())
    def finalizer(self, i, j, cyclic):
        """A __del__ that builds Values, held by a Value's attribute or by
        cyclic garbage."""
        p, parent = self._pick(i), self._pick(j)
        self.held.append(parent.c)
        check = self._checker(C, parent.c, parent.py)

        class Finalizer:
            def __del__(self):
                check()

        f = Finalizer()
        if cyclic:
            f.me = f
        else:
            p.c.fin = f
        del f

    @rule()
    def fill_arena(self):
        """Leave one free arena slot: the next op that needs two reclaims."""
        self.fill = []
        gc.collect()
        s = C.compact()
        self.fill = [C.Value(0.0) for _ in range(s["capacity"] - s["nodes"] - 1)]

    @rule()
    def release_fill(self):
        self.fill = []

    @rule()
    def compact(self):
        C.compact()

    @rule()
    def collect(self):
        gc.collect()

    @precondition(lambda self: self.pairs)
    @rule(i=INDEX)
    def backward(self, i):
        """Both passes run to the end, or both stop at the same raising rule
        having pushed the same gradients."""
        p = self._pick(i)
        stopped = []
        for v in (p.c, p.py):
            try:
                v.backward()
            except _Stop:
                stopped.append(True)
            else:
                stopped.append(False)
        assert stopped[0] == stopped[1]

    @rule()
    def bounded(self):
        """After reclamation + gc.collect() + reclamation, the arena holds
        no node that no held Value reaches."""
        self.refs = [r for r in self.refs if r() is not None]
        for _ in range(2):
            C.compact()
            gc.collect()
        C.compact()
        seen = {}
        stack = [p.c for p in self.pairs] + list(self.held)
        while stack:
            v = stack.pop()
            if id(v) not in seen:
                seen[id(v)] = v
                stack.extend(v._prev)
        nodes = C.arena_stats()["nodes"]
        reach = len(seen) + len(self.fill)  # the fill: leaves, one node each
        assert nodes <= self.base + reach + 1, (nodes, self.base, reach)

    # invariants ------------------------------------------------------------
    @invariant()
    def engines_agree(self):
        for p in self.pairs:
            c, py = p.c, p.py
            assert _bits(c.data) == _bits(py.data)
            assert _bits(c.grad) == _bits(py.grad)
            assert c.label == py.label
            assert c._op == py._op
            assert len(c._prev) == len(py._prev)

    @invariant()
    def replaced_operators_ran_alike(self):
        assert self.op_calls_c == self.op_calls_py

    @invariant()
    def arena_consistent(self):
        assert C._check_invariants()

    @invariant()
    def callbacks_saw_consistent_graphs(self):
        assert self.errors == []

    def teardown(self):
        self.restore_operators()
        self.models = []
        self.pairs = []
        self.held = []
        self.fill = []
        self.refs = []
        for _ in range(2):  # late pins in cycles: reclamation, collection, reclamation
            C.compact()
            gc.collect()
        C.compact()
        assert C._check_invariants()
        assert self.errors == []


StateMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TestStateMachine = StateMachine.TestCase
