"""A microgpt-shaped workload: a tiny GPT trained on names, one scalar at a time.

The program below is the kind of scalar-autograd code people run today: a
character-level language model over a corpus of names with token and position
embeddings, causal self-attention that keeps its keys and values in a list as
it walks the sequence, RMS normalisation, an MLP block, softmax cross-entropy
and Adam, every number a ``Value``.  It is written against a small
pure-Python ``Value`` class of the "children and local gradients" kind
(:class:`ScalarValue` here): each node stores its children and the local
derivative with respect to each, and ``backward()`` walks a topological order
doing ``child.grad += local_grad * node.grad``.

The same program then runs a second time with micrograd_fast's ``Value`` in
that class's place (one name bound to another class, nothing else changed).
Both runs start from the same seeded weights and see the same names, so they
must print the same loss trail; the time per training step of each, and their
ratio, is the measurement.  Each class trains in a fresh process of its own
(``--together``: both in this one, taking turns step by step).

The MLP's activation is a squared ReLU written *outside* the class, as a node
built directly with ``Value(data, children, local_grads)``: an op added in the
node form, the way users extend such code.  Engines without that constructor
form cannot run it; ``act="relu"`` uses the class's own ``relu()`` instead.

The names are made up by the workload itself (syllables drawn from a seeded
``random.Random``), so nothing is downloaded.

    python -m benchmarks.microgpt                 # default size, both classes
    python -m benchmarks.microgpt --steps 10 --rounds 3
    python -m benchmarks.microgpt --engine pure   # micrograd_fast's pure twin as "ours"
    python -m benchmarks.microgpt --size smoke --steps 3
"""

import argparse
import importlib
import json
import math
import random
import subprocess
import sys
import time

__all__ = [
    "ScalarValue",
    "walk_backward",
    "CONFIGS",
    "PHASES",
    "make_names",
    "supports_node_form",
    "training",
    "train",
    "run_apart",
    "compare",
    "main",
]


# --------------------------------------------------------------------------
# the scalar class the program is written against
# --------------------------------------------------------------------------
class ScalarValue:
    """A scalar node that keeps its children and their local derivatives."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        if not isinstance(other, ScalarValue):
            other = ScalarValue(other)
        return ScalarValue(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        if not isinstance(other, ScalarValue):
            other = ScalarValue(other)
        return ScalarValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):  # k is a plain number
        return ScalarValue(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def exp(self):
        e = math.exp(self.data)
        return ScalarValue(e, (self,), (e,))

    def log(self):
        return ScalarValue(math.log(self.data), (self,), (1 / self.data,))

    def relu(self):
        return ScalarValue(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other ** -1

    def __rtruediv__(self, other):
        return other * self ** -1

    def backward(self):
        walk_backward(self)


def walk_backward(root):
    """The class's backward, for any graph whose nodes expose ``_children``
    and ``_local_grads``: a depth-first post-order from ``root`` (every node
    after its children, children in order), then ``child.grad += local_grad
    * node.grad`` from the root down."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for child in reversed(node._children):
            if id(child) not in seen:
                stack.append((child, False))
    root.grad = 1
    for node in reversed(order):
        for child, local in zip(node._children, node._local_grads):
            child.grad += local * node.grad


def supports_node_form(Value):
    """Whether ``Value(data, children, local_grads)`` builds a node whose
    backward uses the given local derivatives."""
    try:
        probe = Value(1.0)
        return hasattr(probe, "_local_grads")
    except Exception:
        return False


# --------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------
_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v",
           "z", "br", "st", "th", "sh", "ch"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ia", "y"]
_CODAS = ["", "", "", "n", "l", "r", "s", "x"]


def make_names(count, seed=7):
    """``count`` made-up names of one to three syllables, deterministic."""
    rng = random.Random(seed)
    names = []
    for _ in range(count):
        parts = []
        for _ in range(rng.choice((1, 2, 2, 3))):
            parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS))
        names.append("".join(parts))
    return names


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------
CONFIGS = {
    # every code path, in a blink
    "smoke": dict(n_embd=4, n_head=2, n_layer=1, block_size=4, names=40, steps=2),
    # a step of the pure class takes a few tens of milliseconds
    "quick": dict(n_embd=8, n_head=2, n_layer=1, block_size=8, names=500, steps=5),
    # microgpt's own width and heads: a step of the pure class takes one or
    # two hundred milliseconds on an idle machine, once its collector has
    # the run's heap to go through (see compare)
    "full": dict(n_embd=16, n_head=4, n_layer=1, block_size=8, names=2000, steps=50),
}


def sqrelu(x):
    """max(x, 0) squared, as one node in the ``(data, children, local_grads)``
    form, built by the class of ``x``."""
    r = x.data if x.data > 0 else 0.0
    return type(x)(r * r, (x,), (2.0 * r,))


def _matrix(Value, rng, rows, cols, std=0.08):
    return [[Value(rng.gauss(0.0, std)) for _ in range(cols)] for _ in range(rows)]


def init_params(Value, vocab, cfg, seed=42):
    rng = random.Random(seed)
    d = cfg["n_embd"]
    params = {
        "wte": _matrix(Value, rng, vocab, d),
        "wpe": _matrix(Value, rng, cfg["block_size"], d),
        "head": _matrix(Value, rng, vocab, d),
    }
    for i in range(cfg["n_layer"]):
        for name, rows, cols in (("q", d, d), ("k", d, d), ("v", d, d), ("o", d, d),
                                 ("up", 4 * d, d), ("down", d, 4 * d)):
            params[f"layer{i}.{name}"] = _matrix(Value, rng, rows, cols)
    return params


def flat_params(params):
    return [p for mat in params.values() for row in mat for p in row]


def linear(x, w):
    return [sum(wij * xj for wij, xj in zip(row, x)) for row in w]


def softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    mean_sq = sum(xi * xi for xi in x) / len(x)
    scale = (mean_sq + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def linear_of(Value):
    """``micrograd_fast.linear`` of ``Value``'s engine: the program's
    ``linear`` as one block, the same numbers (for ``--swap-linear``)."""
    from micrograd_fast.engine import engine_of

    engine = engine_of(Value(0.0))
    if engine is None:
        raise TypeError(f"{Value.__qualname__} is no micrograd_fast Value: no block linear")
    return engine.linear


def forward_token(params, cfg, token, pos, keys, values, act, linear=linear):
    """Logits for the next token; appends this position's keys and values."""
    d, heads = cfg["n_embd"], cfg["n_head"]
    hd = d // heads
    x = [t + p for t, p in zip(params["wte"][token], params["wpe"][pos])]
    x = rmsnorm(x)
    for i in range(cfg["n_layer"]):
        L = f"layer{i}."
        skip = x
        h = rmsnorm(x)
        q = linear(h, params[L + "q"])
        keys[i].append(linear(h, params[L + "k"]))
        values[i].append(linear(h, params[L + "v"]))
        mixed = []
        for hi in range(heads):
            lo = hi * hd
            qh = q[lo:lo + hd]
            scores = [sum(qj * kj for qj, kj in zip(qh, k[lo:lo + hd])) / hd ** 0.5
                      for k in keys[i]]
            weights = softmax(scores)
            for j in range(hd):
                mixed.append(sum(w * v[lo + j] for w, v in zip(weights, values[i])))
        x = [a + b for a, b in zip(linear(mixed, params[L + "o"]), skip)]
        skip = x
        h = linear(rmsnorm(x), params[L + "up"])
        h = [sqrelu(v) for v in h] if act == "sqrelu" else [v.relu() for v in h]
        x = [a + b for a, b in zip(linear(h, params[L + "down"]), skip)]
    return linear(rmsnorm(x), params["head"])


PHASES = ("forward", "backward", "update")


def training(Value, cfg, steps=None, act="sqrelu", swap_linear=False):
    """Train the names model with ``Value``, yielding ``(loss, seconds,
    phases)`` per step.

    One name per step (BOS, its letters, BOS, cut to the block size), mean
    cross-entropy over its positions, ``backward()``, then Adam with a
    linearly decaying learning rate; the seconds cover all of that.
    ``phases`` splits them as :data:`PHASES` says: the forward pass and the
    loss, ``loss.backward()``, and the Adam loop (the program's own float
    arithmetic on each parameter's ``grad`` and ``data``).  ``swap_linear``:
    the program's ``linear`` replaced by ``micrograd_fast.linear``.
    """
    if act == "sqrelu" and not supports_node_form(Value):
        raise TypeError(
            f"{Value.__module__}.{Value.__qualname__} does not build nodes from "
            "Value(data, children, local_grads); use act='relu'")
    steps = cfg["steps"] if steps is None else steps
    names = make_names(cfg["names"])
    chars = sorted(set("".join(names)))
    bos = len(chars)
    vocab = bos + 1
    index = {c: i for i, c in enumerate(chars)}
    lin = linear_of(Value) if swap_linear else linear
    params = init_params(Value, vocab, cfg)
    plist = flat_params(params)
    m = [0.0] * len(plist)
    v = [0.0] * len(plist)
    lr, beta1, beta2, eps = 0.02, 0.85, 0.99, 1e-8
    for k in range(steps):
        t0 = time.perf_counter()
        name = names[k % len(names)]
        tokens = [bos] + [index[c] for c in name] + [bos]
        n = min(cfg["block_size"], len(tokens) - 1)
        keys = [[] for _ in range(cfg["n_layer"])]
        vals = [[] for _ in range(cfg["n_layer"])]
        terms = []
        for pos in range(n):
            logits = forward_token(params, cfg, tokens[pos], pos, keys, vals, act, lin)
            probs = softmax(logits)
            terms.append(-probs[tokens[pos + 1]].log())
        loss = (1 / n) * sum(terms)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        rate = lr * (1 - k / steps)
        for i, p in enumerate(plist):
            g = p.grad
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            mhat = m[i] / (1 - beta1 ** (k + 1))
            vhat = v[i] / (1 - beta2 ** (k + 1))
            p.data -= rate * mhat / (vhat ** 0.5 + eps)
            p.grad = 0
        t3 = time.perf_counter()
        yield loss.data, t3 - t0, (t1 - t0, t2 - t1, t3 - t2)


def train(Value, cfg, steps=None, act="sqrelu"):
    """All of :func:`training` at once: ``(losses, seconds per step)``."""
    run = _run_here(Value, cfg, steps, act)
    return run["losses"], run["times"]


def _median(xs):
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def _class_path(cls):
    """``module:qualname`` of a class another interpreter can import."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    try:
        found = _load_class(path)
    except (ImportError, AttributeError):
        found = None
    if found is not cls:
        raise ValueError(f"{cls!r} cannot be imported by another process "
                         "(define it at the top level of a module)")
    return path


def _load_class(path):
    module, _, qualname = path.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _run_here(Value, cfg, steps, act, swap_linear=False):
    """All of :func:`training` at once, in this process: a dict of the
    ``losses``, the ``times`` of the steps and their ``phases``."""
    runs = list(training(Value, cfg, steps, act, swap_linear))
    return dict(losses=[r[0] for r in runs], times=[r[1] for r in runs],
                phases=[list(r[2]) for r in runs])


# what a child of run_apart runs: this module's main() under the sys.path
# given as its first argument
_CHILD = ("import json, runpy, sys; sys.path[:] = json.loads(sys.argv.pop(1)); "
          "runpy.run_module('benchmarks.microgpt', run_name='__main__', alter_sys=True)")


def run_apart(Value, cfg, steps=None, act="sqrelu", timeout=3600, swap_linear=False):
    """Train with ``Value`` in a fresh interpreter, as a program of its own
    runs: a dict of the ``losses``, the ``times`` of the steps in seconds
    and their ``phases`` (one list of :data:`PHASES` seconds per step).

    ``Value`` must be importable by that interpreter (a class at the top
    level of a module).  The losses come back as the same doubles: JSON
    writes a float with as many digits as it takes to read it back."""
    # The child imports with this process's sys.path, so that it finds the
    # same micrograd_fast (an installed one, or a source tree's) and the
    # same benchmarks package, wherever it runs.
    cmd = [sys.executable, "-c", _CHILD, json.dumps(sys.path), "--one", _class_path(Value),
           "--config", json.dumps(cfg), "--act", act]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    if swap_linear:
        cmd.append("--swap-linear")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"training with {Value.__qualname__} in a process of its own "
                           f"failed (status {proc.returncode}): {tail}")
    return json.loads(proc.stdout)


def compare(OurValue, cfg, steps=None, act="sqrelu", apart=False, rounds=1,
            swap_linear=False):
    """Train with :class:`ScalarValue` and with ``OurValue``; a result dict.
    ``swap_linear``: ``OurValue``'s runs use ``micrograd_fast.linear`` for
    the program's ``linear`` (the pure class's runs never do).

    ``apart`` false: both train in this process and take turns step by
    step, so a change in the machine's load hits both alike (the loss trail
    check of the tests; quick).  ``apart`` true: each trains in a fresh
    interpreter of its own (:func:`run_apart`), the pure class first, then
    ours, ``rounds`` times, as a user runs the program with one class or
    the other.  Taking turns in one process mixes the two: the pure class's
    step leaves our next one a cold cache, and our objects sit between its
    objects in the heap its collector goes through.

    ``trail_own`` and ``trail_ours`` are the losses printed to 4 decimals,
    ``bit_identical`` whether the losses are the same doubles, ``times_*``
    the seconds of each step (of every round) and ``*_step_s`` their median;
    the first step of each run, a warm-up, is left out when a run has more
    than two.  ``phases_own`` and ``phases_ours`` map each of
    :data:`PHASES` to its median seconds per step over the same steps.

    The first steps of a run are the cheap ones for the pure class: the
    cyclic collector's full passes (one or two a step) go through every
    node the class keeps tracked, and they grow slower over the first dozen
    steps or so as the heap fills and spreads out (from 30 to 60 ms a pass
    to 75 to 145 ms on the machine of the README), while ours makes nothing
    for the collector to go through.  A run of a few steps therefore shows a
    smaller ratio than a long training run does.
    """
    def steady(ts):
        return ts[1:] if len(ts) > 2 else ts

    runs_own, runs_ours = [], []
    for _ in range(max(1, rounds)):
        if apart:
            runs_own.append(run_apart(ScalarValue, cfg, steps, act))
            runs_ours.append(run_apart(OurValue, cfg, steps, act, swap_linear=swap_linear))
            continue
        own = dict(losses=[], times=[], phases=[])
        ours = dict(losses=[], times=[], phases=[])
        for (a, ta, pa), (b, tb, pb) in zip(training(ScalarValue, cfg, steps, act),
                                            training(OurValue, cfg, steps, act,
                                                     swap_linear)):
            for run, loss, t, ph in ((own, a, ta, pa), (ours, b, tb, pb)):
                run["losses"].append(loss)
                run["times"].append(t)
                run["phases"].append(list(ph))
        runs_own.append(own)
        runs_ours.append(ours)

    for runs in (runs_own, runs_ours):
        if any(r["losses"] != runs[0]["losses"] for r in runs):
            raise RuntimeError("a class gave different losses in two rounds")
    own_losses, our_losses = runs_own[0]["losses"], runs_ours[0]["losses"]

    def times(runs):
        return [t for r in runs for t in steady(r["times"])]

    def split(runs):
        phases = [p for r in runs for p in steady(r["phases"])]
        return {name: _median([p[k] for p in phases]) for k, name in enumerate(PHASES)}

    own_s, our_s = _median(times(runs_own)), _median(times(runs_ours))
    return dict(
        trail_own=[f"{x:.4f}" for x in own_losses],
        trail_ours=[f"{x:.4f}" for x in our_losses],
        losses_own=own_losses,
        losses_ours=our_losses,
        bit_identical=own_losses == our_losses,
        max_abs_diff=max((abs(a - b) for a, b in zip(own_losses, our_losses)), default=0.0),
        times_own=times(runs_own),
        times_ours=times(runs_ours),
        own_step_s=own_s,
        ours_step_s=our_s,
        speedup=own_s / our_s if our_s > 0 else math.inf,
        phases_own=split(runs_own),
        phases_ours=split(runs_ours),
        apart=bool(apart),
        rounds=max(1, rounds),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.microgpt",
        description="Train a tiny GPT on generated names twice: with a pure-Python "
        "Value written in the children/local-gradients style, then with "
        "micrograd_fast's Value in its place. Prints both loss trails and the time "
        "per step.")
    parser.add_argument("--size", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--engine", choices=("compiled", "pure"), default=None,
                        help="micrograd_fast engine standing in (default: the one "
                        "micrograd_fast.engine selects)")
    parser.add_argument("--act", choices=("sqrelu", "relu"), default="sqrelu",
                        help="MLP activation: sqrelu, a node built in the "
                        "(data, children, local_grads) form (default), or the "
                        "class's relu()")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each class, taking turns (default 1)")
    parser.add_argument("--swap-linear", action="store_true",
                        help="micrograd_fast's runs use micrograd_fast.linear (one block "
                        "per matrix-vector product) for the program's linear")
    parser.add_argument("--together", action="store_true",
                        help="train both classes in this one process, taking turns "
                        "step by step, instead of each in a fresh process")
    # a child of run_apart: train one class here, print the result as JSON
    parser.add_argument("--one", metavar="MODULE:CLASS", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        cfg = json.loads(args.config) if args.config else dict(CONFIGS[args.size])
        json.dump(_run_here(_load_class(args.one), cfg, args.steps, args.act,
                            args.swap_linear), sys.stdout)
        return 0
    if args.engine == "pure":
        from micrograd_fast._engine_py import Value
    elif args.engine == "compiled":
        from micrograd_fast._engine import Value
    else:
        from micrograd_fast.engine import Value
    cfg = dict(CONFIGS[args.size])
    steps = cfg["steps"] if args.steps is None else args.steps
    if args.act == "sqrelu" and not supports_node_form(Value):
        print(f"{Value.__module__}.Value has no Value(data, children, local_grads) "
              "form; run with --act relu", file=sys.stderr)
        return 2
    how = ("both in this process, taking turns step by step" if args.together
           else "each class in a fresh process, the pure class first")
    print(f"model: n_embd={cfg['n_embd']} n_head={cfg['n_head']} "
          f"n_layer={cfg['n_layer']} block_size={cfg['block_size']} act={args.act}; "
          f"{steps} steps, {args.rounds} round(s), {how}; "
          f"ours = {Value.__module__}.Value"
          + (", its linear micrograd_fast.linear" if args.swap_linear else ""))
    res = compare(Value, cfg, steps, args.act, apart=not args.together,
                  rounds=args.rounds, swap_linear=args.swap_linear)
    print("step  own Value  micrograd_fast")
    for k, (a, b) in enumerate(zip(res["trail_own"], res["trail_ours"])):
        print(f"{k:4d}  {a:>9}  {b:>14}")
    same = res["trail_own"] == res["trail_ours"]
    print(f"loss trails identical to 4 decimals: {'yes' if same else 'NO'}; "
          f"bit for bit: {'yes' if res['bit_identical'] else 'no'} "
          f"(largest difference {res['max_abs_diff']:.3g})")
    print("time per step: median over the steps of every run (the first step of "
          "a run, a warm-up, left out when it has more than two)")
    print(f"own Value:      {res['own_step_s'] * 1e3:10.2f} ms/step")
    print(f"micrograd_fast: {res['ours_step_s'] * 1e3:10.2f} ms/step")
    print(f"ratio: {res['speedup']:.1f}x")
    print("median per phase   own Value  micrograd_fast  ratio")
    for name in PHASES:
        a, b = res["phases_own"][name], res["phases_ours"][name]
        ratio = f"{a / b:.1f}x" if b > 0 else "-"
        print(f"  {name:9s} {a * 1e3:11.2f} ms {b * 1e3:11.2f} ms  {ratio:>6}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
