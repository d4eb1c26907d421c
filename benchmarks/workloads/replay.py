"""Replay: a graph built once, re-run by ``Value.recompute()`` and
``backward()``.  The moons demo's step by replay (its loss graph, default and
``fused=True``), and a generic scalar program of every op, against building
it each time, PyTorch on 0-d tensors and a plain C tape of the same ops
(``benchmarks/tape.c``, compiled here when a C compiler is present)."""

import os
import random
import shutil
import subprocess
import tempfile

from benchmarks.timing import Samples
from benchmarks.workloads.graphs import count_nodes
from benchmarks.workloads.registry import Row, record, workload
from benchmarks.workloads.torch_demo import usual_step
from benchmarks.workloads.training import (demo_record, demo_sizes, initial_weights,
                                           native_factory, run_steps, tuned_data)

NO_REPLAY = {"micrograd": "upstream micrograd has no recompute()"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAPE_SOURCE = os.path.join(ROOT, "benchmarks", "tape.c")
USUAL_TORCH = "torch: nn.Sequential, zero_grad, optimizer.step()"


# -- the moons demo by replay ----------------------------------------------------------------------


def _demo_replay(engine, size, fused):
    """The loss graph of the demo built once, then each step: zero_grad,
    recompute(), backward(), optim.SGD at the demo's rate."""
    from micrograd_fast import optim
    from micrograd_fast.lab.demo import evaluate, learning_rate

    sizes = demo_sizes(size)
    flat = initial_weights(sizes)
    model = native_factory(engine, fused=fused)(sizes)
    params = model.parameters()
    for p, w in zip(params, flat):
        p.data = w
    xs, labels = tuned_data(size)
    loss, accuracy = evaluate(model, engine.Value, xs, labels, engine.module.vsum)
    opt = optim.SGD(params, lr=1.0, engine=engine.module)

    def step(k):
        model.zero_grad()
        loss.recompute()
        loss.backward()
        opt.lr = learning_rate(k)
        opt.step()
        return loss.data, accuracy

    samples, first = run_steps(step, size)
    return [demo_record(samples, None, sizes, flat, len(xs), first,
                        "replay" + (", fused" if fused else ""))]


@workload("ms/step", "demo step by replay: the loss graph built once (tuned data, "
          "micrograd_fast.sum, micrograd_fast.nn MLP), each step zero_grad, recompute(), "
          "backward(), optim.SGD; " + USUAL_TORCH, excluded=NO_REPLAY)
def demo_replay(engine, size):
    """The demo's step by replay: its loss graph (micrograd_fast.nn.MLP,
    tuned data, micrograd_fast.sum) built once; each step ``zero_grad()``,
    ``loss.recompute()``, ``loss.backward()``, ``optim.SGD`` at the demo's
    rate.  torch: the usual ``nn.Sequential`` step."""
    if engine.name == "torch":
        return usual_step(size)
    return _demo_replay(engine, size, fused=False)


@workload("ms/step", "demo step by replay, micrograd_fast.nn MLP fused=True; " + USUAL_TORCH,
          excluded=NO_REPLAY)
def demo_replay_fused(engine, size):
    """demo_replay on the one-node-per-neuron graph (``fused=True``)."""
    if engine.name == "torch":
        return usual_step(size)
    return _demo_replay(engine, size, fused=True)


# -- a generic program -----------------------------------------------------------------------------

KINDS = ("softplus", "mean4", "product", "softmax4", "tanh", "relu", "sigmoid", "gelu",
         "inverse_norm", "power")


def program_recipe(n_steps, seed):
    """A scalar program as a list of steps (kind, four window positions):
    each step reads values from a sliding window of the last 16 and makes a
    new one that stays in a modest range."""
    rng = random.Random(seed)
    return [(rng.choice(KINDS), [rng.randrange(16) for _ in range(4)]) for _ in range(n_steps)]


class _ValueOps:
    def __init__(self, module):
        self.m = module

    def leaf(self, x):
        return self.m.Value(x)

    exp = staticmethod(lambda a: a.exp())
    log = staticmethod(lambda a: a.log())
    tanh = staticmethod(lambda a: a.tanh())
    relu = staticmethod(lambda a: a.relu())
    sigmoid = staticmethod(lambda a: a.sigmoid())
    gelu = staticmethod(lambda a: a.gelu())


class _TorchOps:
    def __init__(self, torch):
        self.t = torch

    def leaf(self, x):
        return self.t.tensor(x, dtype=self.t.float64, requires_grad=True)

    def __getattr__(self, name):
        if name == "gelu":
            return self.t.nn.functional.gelu
        return getattr(self.t, name)


def run_program(ops, recipe, leaves):
    """The program on the leaves (Values or 0-d tensors): its root."""
    vals = list(leaves)
    for kind, (i, j, k, m) in recipe:
        w = vals[-16:]
        a, b, c, d = w[i], w[j], w[k], w[m]
        if kind == "softplus":
            v = ops.log(ops.exp(a) + 1.0)
        elif kind == "mean4":
            v = (a + b + c + d) * 0.25
        elif kind == "product":
            v = ops.tanh(a * b)
        elif kind == "softmax4":
            e = [ops.exp(x) for x in (a, b, c, d)]
            v = e[0] * (e[0] + e[1] + e[2] + e[3]) ** -1
        elif kind == "tanh":
            v = ops.tanh(a + b)
        elif kind == "relu":
            v = ops.relu(a - b)
        elif kind == "sigmoid":
            v = ops.sigmoid(a * 2.0)
        elif kind == "gelu":
            v = ops.gelu(a)
        elif kind == "inverse_norm":
            v = (a * a + b * b + 1.0) ** -0.5
        else:
            v = (ops.sigmoid(a) + 0.5) ** ops.tanh(b)
        vals.append(v)
    total = vals[-1]
    for v in vals[-16:-1]:
        total = total + v
    return total


def _leaves(n=16, seed=3):
    rng = random.Random(seed)
    return [rng.uniform(-1.0, 1.0) for _ in range(n)]


def _program_size(size):
    return size["replay_steps"]


def _repeats(size):
    return max(5, size["demo_steps"] * 3)


def _time(samples, fn, repeats):
    fn()
    for _ in range(repeats):
        samples.time(fn)


def _ns_per_node(samples, nodes):
    return samples.median * 1e9 / nodes


@workload("ns/node", rows=[
    Row("generic program, built each time + backward (ns per node)",
        value=lambda r: r.get("build_ns_node")),
    Row("generic program, recompute() + backward (ns per node); torch: 0-d tensors, "
        "forward + backward; C tape: benchmarks/tape.c, the same ops",
        value=lambda r: r["headline"]),
], excluded=NO_REPLAY)
def replay_program(engine, size):
    """A generic scalar program of about 10,000 nodes (``--quick``; 50,000
    full) mixing every op (softplus, 4-way means and softmaxes, products,
    tanh, relu, sigmoid, gelu, powers with number and Value exponents),
    made from a seed: built each time then ``backward()``
    (``build_ns_node``), and built once then ``recompute()`` +
    ``backward()`` (the headline), per node.  torch: the same program on
    0-d float64 tensors, forward and backward.  The record of the compiled
    core also holds the plain C tape of the same nodes (``tape_ns_node``,
    ``tape_ratio``; skipped without a C compiler)."""
    steps = _program_size(size)
    recipe = program_recipe(steps, seed=11)
    xs = _leaves()
    repeats = _repeats(size)
    if engine.name == "torch":
        import torch

        torch.set_num_threads(1)
        ops = _TorchOps(torch)
        counted = []

        def torch_pass():
            leaves = [ops.leaf(x) for x in xs]
            root = run_program(ops, recipe, leaves)
            root.backward()
            counted.append(root)

        samples = Samples()
        _time(samples, torch_pass, repeats)
        # per node of the scalar graph the engines build for the same program
        from micrograd_fast import _engine_py

        nodes = count_nodes(run_program(_ValueOps(_engine_py), recipe,
                                            [_engine_py.Value(x) for x in xs]))
        return [record(samples, nodes, _ns_per_node(samples, nodes), threads=1)]
    ops = _ValueOps(engine.module)
    leaves = [ops.leaf(x) for x in xs]

    def build_pass():
        fresh = [ops.leaf(x) for x in xs]
        run_program(ops, recipe, fresh).backward()

    build = Samples()
    _time(build, build_pass, repeats)
    root = run_program(ops, recipe, leaves)
    nodes = count_nodes(root)

    def replay_pass():
        root.recompute()
        root.backward()

    replay = Samples()
    _time(replay, replay_pass, repeats)
    extra = {}
    if engine.module.COMPILED:
        extra = _tape(engine, root, repeats)
        if extra.get("tape_ns_node"):
            extra["tape_ratio"] = _ns_per_node(replay, nodes) / extra["tape_ns_node"]
    return [record(replay, nodes, _ns_per_node(replay, nodes),
                   build_ns_node=_ns_per_node(build, nodes), **extra)]


_TAPE_OPS = {"": "LEAF", "+": "ADD", "*": "MUL", "**": "POWV", "ReLU": "RELU", "tanh": "TANH",
             "exp": "EXP", "log": "LOG", "sigmoid": "SIGMOID", "gelu": "GELU", "sum": "SUM"}


def _tape_rows(engine, root):
    """The graph below root as tape rows, in creation order."""
    seen, stack = {}, [root]
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen[id(v)] = v
            stack.extend(v._children)
    order = engine.module._creation_order(list(seen.values()))
    pos = {id(v): k for k, v in enumerate(order)}
    rows = []
    for v in order:
        kids = [pos[id(c)] for c in v._children]
        op = v._op
        param = 0.0
        if op.startswith("**") and len(kids) == 1:
            name, param = "POWC", float(op[2:])
        else:
            name = _TAPE_OPS[op]
        a = kids[0] if kids and name != "SUM" else -1
        b = kids[1] if len(kids) > 1 and name != "SUM" else -1
        line = f"{name} {a} {b} {param!r} {v.data!r}"
        if name == "SUM":
            line += "\n" + " ".join(map(str, [len(kids)] + kids))
        rows.append(line)
    return rows


def _tape(engine, root, repeats):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return {"tape_skipped": "no C compiler"}
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "tape")
        built = subprocess.run([cc, "-O2", "-o", exe, TAPE_SOURCE, "-lm"], capture_output=True,
                               text=True)
        if built.returncode != 0:
            return {"tape_skipped": "the C tape did not compile: " + built.stderr[:200]}
        rows = _tape_rows(engine, root)
        path = os.path.join(tmp, "tape.txt")
        with open(path, "w", encoding="ascii") as fh:
            fh.write(f"{len(rows)} {max(repeats, 21)}\n" + "\n".join(rows) + "\n")
        out = subprocess.run([exe, path], capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return {"tape_skipped": "the C tape failed: " + out.stderr[:200]}
        ns, data, _ = out.stdout.split()
    return {"tape_ns_node": float(ns) / len(rows), "tape_root": float(data),
            "tape_same_root": float(data) == root.data}


# -- per op kind -----------------------------------------------------------------------------------

OP_KINDS = ("add", "mul", "pow", "powv", "relu", "tanh", "exp", "log", "sigmoid", "gelu",
            "sum", "neuron")


def _op_chain(module, kind, n):
    """n nodes of one kind (and the few leaves they read): a chain where the
    op keeps its values in range, else n nodes on one leaf added up by one
    sum node."""
    Value = module.Value
    c = Value(0.25)
    y = Value(0.5)
    if kind in ("exp", "log"):
        x = Value(2.0)
        return module.vsum([getattr(x, kind)() for _ in range(n)])
    for _ in range(n):
        if kind == "add":
            y = y + c
        elif kind == "mul":
            y = y * c
        elif kind == "pow":
            y = y ** 1.0
        elif kind == "powv":
            y = y ** c
        elif kind == "sum":
            y = module.vsum([y, c, c, c])
        elif kind == "neuron":
            y = module.layer([[c, c, c, c]], [c], [y, y, y, y], "tanh")[0]
        else:
            y = getattr(y, kind)()
    return y


def _per_kind_text(rec):
    return ", ".join(f"{k} {rec['recompute_ns'][k]:.1f}/{rec['backward_ns'][k]:.1f}"
                     for k in rec["recompute_ns"])


@workload("ns/node", rows=[Row("per op kind, ns per node: recompute / backward",
                               text=_per_kind_text, ratio=False)],
          excluded={**NO_REPLAY, "torch": "no tensor form of this workload"})
def replay_ops(engine, size):
    """Per op kind, ``replay_op_nodes`` nodes of that kind: ns per node of
    ``recompute()`` and of ``backward()`` (``recompute_ns``,
    ``backward_ns``: dicts by kind; the headline is the median of the
    recompute figures)."""
    import statistics

    n = size["replay_op_nodes"]
    recompute_ns, backward_ns = {}, {}
    total = Samples()
    for kind in OP_KINDS:
        root = _op_chain(engine.module, kind, n)
        nodes = count_nodes(root)
        rec_s, back_s = Samples(), Samples()
        _time(rec_s, root.recompute, _repeats(size))
        _time(back_s, root.backward, _repeats(size))
        recompute_ns[kind] = _ns_per_node(rec_s, nodes)
        backward_ns[kind] = _ns_per_node(back_s, nodes)
        total.add(rec_s.median)
    return [record(total, None, statistics.median(recompute_ns.values()),
                   recompute_ns=recompute_ns, backward_ns=backward_ns, nodes_per_kind=n)]
