"""Neural-network modules: micrograd 0.1.0's ``Module``, ``Neuron``, ``Layer``
and ``MLP``, with the same signatures, reprs, attributes and random draws, and
a native forward pass.

Compatibility
-------------
``Neuron(nin, nonlin=True)``, ``Layer(nin, nout, **kwargs)`` and
``MLP(nin, nouts)`` draw their weights exactly as micrograd 0.1.0 does: one
``random.uniform(-1, 1)`` per weight, neuron by neuron, layer by layer, and a
bias of ``Value(0)``.  After the same ``random.seed(s)`` the parameters are
bit-identical to micrograd's.  ``neuron.w``, ``neuron.b``, ``neuron.nonlin``,
``layer.neurons`` and ``mlp.layers`` are there as in micrograd, and
``parameters()`` lists them in the same order (per neuron: ``w`` then ``b``).
A layer of one neuron returns a bare Value, any other a list.

Activations
-----------
Every neuron has an activation, one of ``ACTIVATIONS`` (``'relu'``, the
default, ``'linear'`` and the others in the activation table of
docs/architecture.md).  ``Neuron(nin, nonlin=True, act='tanh')``;
``nonlin=False`` always means linear.  ``MLP(nin, nouts, act='relu',
out_act=None)`` uses ``act`` on the hidden layers and ``out_act`` on the last
layer, linear by default as in micrograd.  ``act`` may also be a list with one
activation per layer (the last layer included; ``out_act`` must then be left
out).  The all-tanh network of the "building micrograd" lecture is
``MLP(3, [4, 4, 1], act='tanh', out_act='tanh')``.

The graph
---------
By default a forward pass builds exactly micrograd's graph.  Per neuron, in
micrograd's creation order (``sum((wi*xi for ...), self.b)``): for each input
``x_i`` a leaf Value when ``x_i`` is a plain number (one per neuron, as
``w*x`` makes it), the ``'*'`` node ``(w_i, x_i)``, then the ``'+'`` node
``(acc, w_i*x_i)``, ``acc`` starting at the bias; then the activation's op
node (``'ReLU'`` for relu; nothing for a linear neuron).  The same ops, the same
``_prev``, same numbers bit for bit, and every node has its ``_backward``.
The graph is made inside the engine in one call per model call (``mlp`` /
``layer`` with ``fused=False``): with the compiled core, the nodes are written
into the C arena and only the outputs get Python objects; the others get one
when user code reaches them through ``_prev``.

``fused=True`` (``MLP(..., fused=True)``, likewise ``Layer`` and ``Neuron``,
or the ``fused`` attribute) opts into a different, smaller graph: ONE node per
neuron, with ``_op == 'neuron_<act>'`` and children ``(w_0, ..., w_{nin-1},
x_0, ..., x_{nin-1}, b)`` (plain-number inputs become leaf Values shared by
the neurons of the first layer).  Its data are the same numbers; backward
sends ``x_i * pre`` to ``w_i``, ``w_i * pre`` to ``x_i`` and ``pre`` to ``b``,
``pre`` being the output gradient times the activation's derivative, so
gradients agree to rounding.  The module that is called decides.

Either way the outputs are ordinary Values: a loss written with the usual
operators (as in micrograd's demo) joins the graph, and ``loss.backward()``
fills the ``grad`` of the very parameter Values that ``parameters()`` returns.

Engines
-------
Modules are bound to one engine, passed as ``engine=`` (the engine module,
e.g. ``micrograd_fast._engine_py``) or, by default, ``micrograd_fast.engine``
(the selected one).  All parameters of a module are Values of that engine,
and ``model.engine`` gives it back.  ``micrograd_fast.nn`` can therefore serve
both engines in one process.

Inputs
------
A list or tuple of numbers or Values, or a 1-D NumPy array, of length ``nin``
(a wrong length is a ValueError; micrograd would silently truncate).  A batch,
a 2-D NumPy array of shape ``(batch, nin)`` or a list of rows, gives one output
per row, as a list: ``MLP`` and ``Layer`` build one block per layer (the
engine's ``mlp_rows``), with the numbers and gradients of calling the model
row by row (docs/nn.md, "Batches").

Parameters as arrays
--------------------
``parameters_array()`` / ``load_parameters(a)``: all parameters, in
``parameters()`` order, as one float64 array.  ``state_dict()`` maps names to
float64 arrays, one weight matrix and one bias vector per layer:
``'layers.<i>.weight'`` of shape ``(nout, nin)`` and ``'layers.<i>.bias'`` of
shape ``(nout,)`` for an MLP; ``'weight'``/``'bias'`` for a Layer; ``'w'`` of
shape ``(nin,)`` and ``'b'`` of shape ``()`` for a Neuron.  ``load_state_dict``
copies the numbers into the existing parameter Values.  Pickling and
``copy.deepcopy`` give a working model with equal parameters; its parameters
are new leaf Values (grads are kept).
"""

import importlib
import operator
import random
import sys

from micrograd_fast._vocab import ACTIVATIONS
from micrograd_fast.engine import engine_of as _engine_of
from micrograd_fast.engine import resolve_engine as _engine_named

__all__ = ["Module", "Neuron", "Layer", "MLP"]

#: Each activation's display name (``ReLUNeuron(2)``), which is also the
#: name of the ``torch.nn`` module it stands for (``Linear``: ``Identity``).
_REPR_NAMES = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
    "linear": "Linear",
}


def _default_engine():
    from micrograd_fast import engine

    return engine


def _resolve_engine(engine):
    if engine is None:
        return _default_engine()
    return _engine_named(engine)


def _check_act(act):
    if act not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {act!r}; expected one of {', '.join(ACTIVATIONS)}"
        )
    return act


def _size(n, what, minimum):
    if isinstance(n, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(n).__name__}") from None
    if n < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {n}")
    return n


def _np():
    import numpy as np

    return np


def _single_input(x, nin, who):
    """An input vector as a list, length-checked."""
    if "numpy" in sys.modules:
        np = sys.modules["numpy"]
        if isinstance(x, np.ndarray):
            if x.ndim != 1:
                raise ValueError(f"{who} expects a 1-D input, got {x.ndim} dimensions")
            x = x.tolist()
    if not isinstance(x, list):
        if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
            raise TypeError(
                f"{who} expects a sequence of {nin} inputs, not {type(x).__name__}"
            )
        x = list(x)
    if len(x) != nin:
        raise ValueError(f"{who} expects {nin} inputs, got {len(x)}")
    return x


def _is_batch(x):
    """A batch of input rows: a 2-D NumPy array, or a list (or tuple) whose
    items are sequences (lists, tuples or 1-D arrays) rather than inputs."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.ndarray):
        return x.ndim == 2
    if type(x) in (list, tuple) and x:
        first = x[0]
        return isinstance(first, (list, tuple)) or (
            np is not None and isinstance(first, np.ndarray))
    return False


def _as_rows(x):
    """A batch as the engines' mlp_rows take it: a float64 array stays as it
    is, another array is converted once, a list of rows is passed on."""
    np = sys.modules.get("numpy")
    if (np is not None and isinstance(x, np.ndarray) and x.dtype != np.float64
            and x.dtype != object):  # (an object array may hold Values)
        return x.astype(np.float64)
    return x


def _mlp_call_of(engine):
    """The _mlp_call of the engine module that defines ``engine.Value`` (the
    implementation behind ``micrograd_fast.engine``), or None."""
    impl = sys.modules.get(getattr(engine.Value, "__module__", None), engine)
    return getattr(impl, "_mlp_call", None)


def _unwrap(out):
    return out[0] if len(out) == 1 else out


# Forward passes reuse a module's engine spec (weight rows, biases,
# activations) until some module's structure changes: assigning any of these
# attributes on any module bumps the counter, which invalidates every cached
# spec.  The lists the modules make (``w``, ``neurons``, ``layers``) count
# their in-place edits too.  Any other list found there (one of your own,
# assigned to the attribute) is checked instead: the cache keeps a copy of
# its items and is used only while the list still holds the very same ones.
_STRUCTURE_ATTRS = frozenset(
    {"w", "b", "nonlin", "act", "neurons", "layers", "_engine", "fused"})
_structure_version = 0


def _structure_changed():
    global _structure_version
    _structure_version += 1


def _structure_lists_of(items):
    """``items`` (a module's list of neurons or layers) and, after it, the
    structure lists of each item."""
    out = [items]
    for item in items:
        inner = getattr(item, "_structure_lists", None)
        if inner is not None:
            out.extend(inner())
    return out


def _snapshot(lists):
    """``(list, its items)`` for each list that does not count its own
    edits; None when every one does (the common case)."""
    kept = tuple(
        (lst, tuple(lst)) for lst in lists if type(lst) not in (_TrackedList, tuple)
    )
    return kept or None


def _unchanged(snapshot):
    """Whether each list of ``snapshot`` still holds the very same items."""
    for lst, items in snapshot:
        if len(lst) != len(items) or not all(map(operator.is_, lst, items)):
            return False
    return True


class _TrackedList(list):
    """The list type of ``neuron.w``, ``layer.neurons`` and ``mlp.layers``:
    a plain list whose in-place edits also count as structure changes."""

    __slots__ = ()


def _tracking(name):
    method = getattr(list, name)

    def tracked(self, *args):
        _structure_changed()
        return method(self, *args)

    tracked.__name__ = name
    return tracked


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):
    setattr(_TrackedList, _name, _tracking(_name))
del _name


class Module:
    """Base class: ``parameters()``, ``zero_grad()`` and the array helpers."""

    #: False: a call builds micrograd's graph; True: one node per neuron
    #: (see "The graph" above).  Set per instance by ``fused=True``.
    fused = False

    def __setattr__(self, name, value):
        if name in _STRUCTURE_ATTRS:
            _structure_changed()
        object.__setattr__(self, name, value)

    def _cached(self, build):
        """The cached value of ``build()`` for the current structure."""
        cache = self.__dict__.get("_spec_cache")
        if (cache is None or cache[0] != _structure_version
                or (cache[1] is not None and not _unchanged(cache[1]))):
            snapshot = _snapshot(self._structure_lists())
            cache = (_structure_version, snapshot, build())
            object.__setattr__(self, "_spec_cache", cache)
        return cache[2]

    def _structure_lists(self):
        """The lists that make up this module's structure (``w``,
        ``neurons``, ``layers``, all the way down)."""
        return []

    def zero_grad(self):
        params = self.parameters()
        if params:
            _engine_of(params[0]).zero_grad(params)

    def parameters(self):
        return []

    # -- engine ---------------------------------------------------------------
    @property
    def engine(self):
        """The engine module this module's Values belong to (for a user's
        own Module subclass: the engine of its first parameter)."""
        eng = self.__dict__.get("_engine")
        if eng is not None:
            return eng
        params = self.parameters()
        return _engine_of(params[0]) if params else _default_engine()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_spec_cache", None)
        state.pop("_fast", None)
        eng = state.get("_engine")
        if eng is not None:
            state["_engine"] = eng.__name__  # modules do not pickle
        return state

    def __setstate__(self, state):
        eng = state.get("_engine")
        if isinstance(eng, str):
            state = dict(state)
            state["_engine"] = importlib.import_module(eng)
        self.__dict__.update(state)

    # -- parameters as arrays -------------------------------------------------
    def parameters_array(self):
        """All parameters' ``data`` in ``parameters()`` order (float64)."""
        return self.engine.gather(self.parameters(), "data")

    def grads_array(self):
        """All parameters' ``grad`` in ``parameters()`` order (float64)."""
        return self.engine.gather(self.parameters(), "grad")

    def load_parameters(self, array):
        """Set all parameters' ``data`` from a 1-D array (``parameters()`` order)."""
        self.engine.scatter(self.parameters(), array, "data")

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        """Copy the arrays of ``state`` (from ``state_dict()``) into the
        parameters.  Keys and shapes must match exactly."""
        np = _np()
        mine = self._state_values()
        missing = sorted(set(mine) - set(state))
        extra = sorted(set(state) - set(mine))
        if missing or extra:
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {extra}")
        flat_values = []
        flat_numbers = []
        for name, (shape, values) in mine.items():
            arr = np.asarray(state[name], dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
            flat_values.extend(values)
            flat_numbers.append(arr.reshape(-1))
        if flat_values:
            self.engine.scatter(flat_values, np.concatenate(flat_numbers), "data")

    def _state_values(self):
        """name -> (shape, the Values in C order)."""
        return {}

    def _state_dict_from(self, mine):
        np = _np()
        out = {}
        for name, (shape, values) in mine.items():
            out[name] = self.engine.gather(values, "data").reshape(shape)
        return out


class Neuron(Module):
    """``nin`` weights and a bias; output ``act(b + sum(w_i * x_i))``."""

    def __init__(self, nin, nonlin=True, act="relu", engine=None, fused=False):
        nin = _size(nin, "nin", 0)
        self._engine = eng = _resolve_engine(engine)
        V = eng.Value
        self.w = _TrackedList(V(random.uniform(-1, 1)) for _ in range(nin))
        self.b = V(0)
        self.nonlin = nonlin
        self.act = _check_act(act)
        if fused:
            self.fused = True

    @classmethod
    def _from_values(cls, w, b, nonlin, act, engine):
        self = cls.__new__(cls)
        self._engine = engine
        self.w = _TrackedList(w)
        self.b = b
        self.nonlin = nonlin
        self.act = act
        return self

    @property
    def activation(self):
        """The activation actually applied ('linear' when ``nonlin`` is false)."""
        return _check_act(self.act) if self.nonlin else "linear"

    def __call__(self, x):
        if _is_batch(x):
            return [self(row) for row in x]
        x = _single_input(x, len(self.w), "Neuron")
        return self._engine.layer(
            [self.w], [self.b], x, self.activation, fused=self.fused
        )[0]

    def parameters(self):
        return self.w + [self.b]

    def _structure_lists(self):
        return [self.w]

    def __repr__(self):
        return f"{_REPR_NAMES[self.activation]}Neuron({len(self.w)})"

    def _state_values(self):
        return {"w": ((len(self.w),), list(self.w)), "b": ((), [self.b])}

    def state_dict(self):
        return self._state_dict_from(self._state_values())


class Layer(Module):
    """``nout`` neurons reading the same input."""

    def __init__(self, nin, nout, **kwargs):
        nin = _size(nin, "nin", 0)
        nout = _size(nout, "nout", 1)
        self._engine = _resolve_engine(kwargs.pop("engine", None))
        self.neurons = _TrackedList(
            Neuron(nin, engine=self._engine, **kwargs) for _ in range(nout)
        )
        if kwargs.get("fused"):
            self.fused = True

    @classmethod
    def _from_neurons(cls, neurons, engine):
        self = cls.__new__(cls)
        self._engine = engine
        self.neurons = _TrackedList(neurons)
        return self

    @property
    def nin(self):
        return len(self.neurons[0].w) if self.neurons else 0

    def _spec(self):
        """``(W, B, act)`` for the engine, or None if the neurons' activations differ."""
        return self._cached(self._build_spec)

    def _build_spec(self):
        ns = self.neurons
        act = ns[0].activation if ns else "linear"
        for n in ns:
            if n.activation != act:
                return None
        return ([n.w for n in ns], [n.b for n in ns], act)

    def _forward_list(self, x, fused):
        spec = self._spec()
        if spec is not None:
            return self._engine.layer(spec[0], spec[1], x, spec[2], fused=fused)
        return [
            self._engine.layer([n.w], [n.b], x, n.activation, fused=fused)[0]
            for n in self.neurons
        ]

    def __call__(self, x):
        if _is_batch(x):
            spec = self._spec()
            if spec is None:  # its neurons' activations differ: row by row
                return [self(row) for row in x]
            outs = self._engine.mlp_rows((spec,), _as_rows(x), fused=self.fused)
            return [_unwrap(out) for out in outs]
        x = _single_input(x, self.nin, "Layer")
        return _unwrap(self._forward_list(x, self.fused))

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]

    def _structure_lists(self):
        return _structure_lists_of(self.neurons)

    def __repr__(self):
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"

    def _state_values(self, prefix=""):
        ns = self.neurons
        return {
            prefix + "weight": ((len(ns), self.nin), [w for n in ns for w in n.w]),
            prefix + "bias": ((len(ns),), [n.b for n in ns]),
        }

    def state_dict(self):
        return self._state_dict_from(self._state_values())


class MLP(Module):
    """Layers of neurons, each layer's output the next one's input."""

    def __init__(self, nin, nouts, act="relu", out_act=None, engine=None, fused=False):
        nin = _size(nin, "nin", 0)
        if isinstance(nouts, (str, bytes)) or not hasattr(nouts, "__iter__"):
            raise TypeError(f"nouts must be a list of layer sizes, not {type(nouts).__name__}")
        nouts = [_size(n, "layer size", 1) for n in nouts]
        if not nouts:
            raise ValueError("nouts must list at least one layer size")
        acts = self._layer_acts(act, out_act, len(nouts))
        self._engine = eng = _resolve_engine(engine)
        sz = [nin] + nouts
        self.layers = _TrackedList([
            Layer(
                sz[i],
                sz[i + 1],
                nonlin=acts[i] != "linear",
                act=acts[i] if acts[i] != "linear" else "relu",
                engine=eng,
                fused=fused,
            )
            for i in range(len(nouts))
        ])
        if fused:
            self.fused = True

    @staticmethod
    def _layer_acts(act, out_act, nlayers):
        if isinstance(act, str):
            acts = [_check_act(act)] * (nlayers - 1)
            acts.append(_check_act("linear" if out_act is None else out_act))
            return acts
        acts = [_check_act(a) for a in act]
        if len(acts) != nlayers:
            raise ValueError(f"act lists {len(acts)} activations for {nlayers} layers")
        if out_act is not None:
            raise ValueError("give out_act only when act is a single activation")
        return acts

    #: (structure version, the engine's _mlp_call, plan, fused) of the last
    #: call through the engine's plan, while every structure list counts its
    #: own edits: the common call, in short (_mlp_call takes a list of nin
    #: inputs and returns None for anything else)
    _fast = None

    def __call__(self, x):
        if _is_batch(x):
            return self._batch(x)
        fast = self._fast
        if fast is not None and fast[0] == _structure_version:
            out = fast[1](fast[2], x, fast[3])
            if out is not None:
                return out
        nin, specs, _ = self._cached(self._build_specs)
        x = _single_input(x, nin, "MLP")
        fused = self.fused
        if specs is not None:
            version, snapshot, _ = self.__dict__["_spec_cache"]
            mlp = self._engine.mlp
            if snapshot is None:  # (a list of the user's own is checked on each call)
                call = _mlp_call_of(self._engine)
                if call is not None:
                    object.__setattr__(self, "_fast", (version, call, specs, fused))
            return _unwrap(mlp(specs, x, fused=fused))
        for layer in self.layers:
            x = layer._forward_list(x, fused)
        return _unwrap(x)

    def _batch(self, x):
        """The batch call: one block per layer (the engine's mlp_rows), or
        row by row when a layer mixes activations."""
        nin, specs, _ = self._cached(self._build_specs)
        if specs is None:
            return [self(row) for row in x]
        outs = self._engine.mlp_rows(specs, _as_rows(x), fused=self.fused)
        return [_unwrap(out) for out in outs]

    def _build_specs(self):
        """(nin, the engine's plan of the layers or None when a layer mixes
        activations, the parameters)."""
        nin = self.layers[0].nin
        params = tuple(p for layer in self.layers for p in layer.parameters())
        specs = [layer._spec() for layer in self.layers]
        if any(s is None for s in specs):
            return nin, None, params
        return nin, self._engine.mlp_plan(specs, nin), params

    def parameters(self):
        return list(self._cached(self._build_specs)[2])

    def _structure_lists(self):
        return _structure_lists_of(self.layers)

    def __repr__(self):
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"

    def _state_values(self):
        out = {}
        for i, layer in enumerate(self.layers):
            out.update(layer._state_values(f"layers.{i}."))
        return out

    def state_dict(self):
        return self._state_dict_from(self._state_values())

    @classmethod
    def _from_layers(cls, layers, engine):
        self = cls.__new__(cls)
        self._engine = engine
        self.layers = _TrackedList(layers)
        return self

    # -- PyTorch bridge (micrograd_fast._torch_bridge) ------------------------
    def to_torch(self):
        """An equivalent ``torch.nn.Sequential`` (float64): per layer a
        ``Linear`` followed by its activation's module (``ReLU`` for relu,
        nothing for a linear layer), with this model's weights copied in."""
        from micrograd_fast import _torch_bridge

        return _torch_bridge.to_torch(self)

    @classmethod
    def from_torch(cls, seq, engine=None):
        """An MLP equal to a ``torch.nn.Sequential`` of ``Linear`` layers, each
        optionally followed by the module of one of ``ACTIVATIONS`` (``ReLU``
        for relu, ``Identity`` for linear).  Draws no random numbers."""
        from micrograd_fast import _torch_bridge

        return _torch_bridge.from_torch(cls, seq, engine)
