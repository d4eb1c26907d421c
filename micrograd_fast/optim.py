"""Optimizers over lists of parameter Values.

The update loops run in the engine (``sgd_update`` / ``adam_update``: plain
loops in the pure engine, C loops in the compiled core); the state (momentum,
first and second moments) is kept in float64 NumPy arrays, one entry per
parameter.  The engine is the one the parameters' Values belong to, unless
given as ``engine=``.

* ``SGD(params, lr, momentum=0.0)``: with ``momentum == 0`` each step is
  exactly micrograd's ``p.data -= lr * p.grad``.  With momentum, PyTorch's
  rule without dampening: ``buf = grad`` on the first step, then
  ``buf = momentum * buf + grad``; ``p.data -= lr * buf``.
  ``weight_decay`` (``SGD(params, lr, weight_decay=1e-4)``) adds
  ``weight_decay * p.data`` to each gradient first, as ``torch.optim.SGD``:
  the L2 term of a loss without a node per parameter, in the same C loop.
* ``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``:
  Adam with bias correction; ``weight_decay`` is an L2 term added to the
  gradient (as ``torch.optim.Adam``).
* ``AdamW(parameters, lr=1e-1, betas=(0.9, 0.95), eps=1e-8,
  weight_decay=0.0)``: decoupled weight decay, ``p.data -= lr * (mhat /
  (sqrt(vhat) + eps) + weight_decay * p.data)``.

``step()`` applies one update from the current grads; ``zero_grad()`` sets
every parameter's grad to 0.0.  Optimizers pickle and deep-copy with their
state; ``copy.deepcopy((model, opt))`` gives a pair that trains on exactly
as the original would.
"""

import importlib

import numpy as np

from micrograd_fast.engine import engine_of as _engine_of
from micrograd_fast.engine import is_engine as _is_engine
from micrograd_fast.engine import resolve_engine as _engine_named

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _float(x, name):
    if isinstance(x, (str, bytes)) or isinstance(x, bool):
        raise TypeError(f"{name} must be a real number")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, not {type(x).__name__}") from None


class Optimizer:
    """Holds the parameter list and the engine that updates it."""

    def __init__(self, params, engine=None):
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        self.params = list(params)
        if engine is not None:
            engine = _engine_named(engine)  # 'compiled', 'pure' or a module
        if engine is None:
            if not self.params:
                raise ValueError("optimizer got an empty parameter list")
            engine = _engine_of(self.params[0])
        if engine is None or not _is_engine(engine):
            what = type(self.params[0]).__name__ if self.params else "nothing"
            raise TypeError(
                f"parameters must be Values of a micrograd_fast engine, not {what}"
            )
        V = engine.Value
        self.engine = engine
        for p in self.params:
            if not isinstance(p, V):
                raise TypeError(
                    f"parameters must be Values of {engine.__name__}, "
                    f"not {type(p).__module__}.{type(p).__name__}"
                )

    def zero_grad(self):
        self.engine.zero_grad(self.params)

    # pickle / copy / deepcopy: the engine module is kept by name (modules do
    # not pickle); the parameter list, the state arrays, the step count and
    # the hyperparameters are copied as they are.  Copy a model and its
    # optimizer together (one deepcopy or one pickle of both) so that the
    # copy's parameters are the copied model's parameters.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["engine"] = self.engine.__name__
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("engine"), str):
            state["engine"] = importlib.import_module(state["engine"])
        self.__dict__.update(state)

    def step(self):  # pragma: no cover - overridden
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, engine=None, weight_decay=0.0):
        super().__init__(params, engine)
        self.lr = _float(lr, "lr")
        self.momentum = _float(momentum, "momentum")
        self.weight_decay = _float(weight_decay, "weight_decay")
        if self.weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {self.lr}")
        if self.momentum < 0.0:
            raise ValueError(f"momentum must be >= 0, got {self.momentum}")
        self.buf = np.zeros(len(self.params), dtype=np.float64)
        self._first = True

    def step(self):
        self.engine.sgd_update(self.params, self.lr, self.momentum, self.buf, self._first,
                               self.__dict__.get("weight_decay", 0.0))
        self._first = False


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, engine=None):
        super().__init__(params, engine)
        self.lr = _float(lr, "lr")
        b1, b2 = betas
        self.beta1 = _float(b1, "beta1")
        self.beta2 = _float(b2, "beta2")
        self.eps = _float(eps, "eps")
        self.weight_decay = _float(weight_decay, "weight_decay")
        if self.lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {self.lr}")
        for name, b in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {b}")
        if self.eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        n = len(self.params)
        self.m = np.zeros(n, dtype=np.float64)
        self.v = np.zeros(n, dtype=np.float64)
        self.t = 0

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def step(self):
        self.t += 1
        self.engine.adam_update(
            self.params, self.m, self.v, self.t, self.lr, self.beta1, self.beta2,
            self.eps, self.weight_decay, self.decoupled,
        )


class AdamW(Adam):
    decoupled = True

    def __init__(self, parameters, lr=1e-1, betas=(0.9, 0.95), eps=1e-8,
                 weight_decay=0.0, engine=None):
        super().__init__(parameters, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, engine=engine)
