"""What one Python-level operation costs, measured in the loops that use it.

Each row times one statement inside a ``for`` loop over many distinct
objects, the way training code runs it (``c = a * b`` over pairs of
parameters, ``p.grad = 0`` over a model's parameters, the SGD line
``p.data -= lr * p.grad``), and subtracts the same loop with the
statement replaced by a plain assignment.  The same statement is timed on
the baselines of the same run: Python floats for arithmetic, and an object
of a plain class with ``__slots__`` (``data``, ``grad``) for attributes.
So a row reads "this op costs N ns on a Value, M ns on the plain Python
equivalent".  The ``kept`` rows keep every result alive in a list (a
forward pass's pattern) instead of dropping it at once.

The last rows time one call of a small ``micrograd_fast.nn.MLP(2, [16, 16,
1])`` on a list of two floats, with its default graph and with
``fused=True``, next to the engine's ``mlp(plan, x)`` on the same layers:
the difference is what the Python-level call adds to the engine's work.

All cases run interleaved, round after round, with the cyclic GC paused as
``timeit`` does; every number is a median over the rounds.

    python -m benchmarks.opcost                  # the compiled core
    python -m benchmarks.opcost --engine reference
    python -m benchmarks.opcost --json opcost.json --rounds 31
"""

import argparse
import gc
import importlib
import json
import platform
import statistics
import sys
import time

__all__ = ["OP_CASES", "measure", "main"]

_MODULES = {
    "micrograd_fast": "micrograd_fast._engine",
    "reference": "micrograd_fast._engine_py",
}


class Slots:
    """The plain-attribute baseline: a Python object with two float slots."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = data
        self.grad = 0.0


# (name, loop target, statement, kind of items, baseline kind); the loop
# with ``c = <first name of the target>`` in the statement's place is
# subtracted.  Kinds: "pairs" (a, b), "single" p, or "neuron" (w, x, b):
# NEURON_INPUTS weights and inputs and a bias.
OP_CASES = (
    ("a * b", "a, b", "c = a * b", "pairs", "float"),
    ("a * b (kept)", "a, b", "[a * b]", "pairs", "float"),
    ("a + 1.0", "a", "c = a + 1.0", "single", "float"),
    ("a + b", "a, b", "c = a + b", "pairs", "float"),
    (".data read", "p", "c = p.data", "single", "slots"),
    (".data = x", "p", "p.data = 0.5", "single", "slots"),
    (".grad read", "p", "c = p.grad", "single", "slots"),
    (".grad = 0.0", "p", "p.grad = 0.0", "single", "slots"),
    ("p.grad = 0", "p", "p.grad = 0", "single", "slots"),
    ("p.data -= lr * p.grad", "p", "p.data -= 0.01 * p.grad", "single", "slots"),
    # upstream nn.py's neuron sum, at the demo's hidden width: the float row
    # is the floor of any Value under that code
    ("neuron sum, 16 inputs", "w, x, b", "c = sum((wi * xi for wi, xi in zip(w, x)), b)",
     "neuron", "float"),
)

#: inputs of the "neuron" rows
NEURON_INPUTS = 16


def _compile(target, statement):
    """A function running ``statement`` once per item of its argument.  A
    statement in brackets is a list comprehension (results kept)."""
    if statement.startswith("["):
        src = f"def run(items):\n    return [{statement[1:-1]} for {target} in items]\n"
    else:
        src = f"def run(items):\n    for {target} in items:\n        {statement}\n"
    scope = {}
    exec(compile(src, "<opcost>", "exec"), scope)
    return scope["run"]


def _base_statement(target, statement):
    first = target.split(",")[0].strip()
    return f"[{first}]" if statement.startswith("[") else f"c = {first}"


def _items(kind, make, n):
    if kind == "neuron":
        k = NEURON_INPUTS
        return [([make(0.01 * ((i + j) % 97) - 0.5) for j in range(k)],
                 [make(0.5 + 0.001 * j) for j in range(k)], make(0.1)) for i in range(n)]
    xs = [make(0.5 + 0.001 * i) for i in range(n + 1)]
    if kind == "pairs":
        return list(zip(xs[:-1], xs[1:]))
    return xs[:-1]


def _model_cases(engine, nn):
    """(name, zero-argument callable) for the model(x) rows."""
    x = [0.5, -0.25]
    cases = []
    for fused in (False, True):
        kw = {"fused": True} if fused else {}
        model = nn.MLP(2, [16, 16, 1], engine=engine, **kw)
        acts = ["relu", "relu", "linear"]
        plan = engine.mlp_plan([([n.w for n in layer.neurons], [n.b for n in layer.neurons], act)
                                for layer, act in zip(model.layers, acts)], 2)
        tag = "fused=True" if fused else "default"
        mlp = engine.mlp
        cases.append((f"model(x), {tag}", lambda m=model: m(x)))
        cases.append((f"engine mlp(plan, x), {tag}",
                      lambda p=plan, f=fused: mlp(p, x, fused=f)))
    return cases


def _timed(fn, arg, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(arg)
    return time.perf_counter() - t0


def measure(engine_name="micrograd_fast", n=2000, rounds=21, model_calls=2000):
    """Run every case interleaved for ``rounds`` rounds; returns the report
    (a dict, see main)."""
    from benchmarks.engines import canonical

    engine = importlib.import_module(_MODULES[canonical(engine_name)])
    Value = engine.Value
    makers = {"value": Value, "float": float, "slots": Slots}
    timings = {}  # (case, kind) -> list of seconds per item

    jobs = []
    for name, target, statement, kind, base in OP_CASES:
        run = _compile(target, statement)
        loop = _compile(target, _base_statement(target, statement))
        for who in ("value", base):
            items = _items(kind, makers[who], n)
            jobs.append(((name, who), run, loop, items))

    model_jobs = []
    try:
        import micrograd_fast.nn as nn
        model_jobs = _model_cases(engine, nn)
    except ImportError:  # pragma: no cover - the package always has nn
        pass

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for key, run, loop, items in jobs:
                t = _timed(run, items, 3)
                t0 = _timed(loop, items, 3)
                timings.setdefault(key, []).append((t - t0) / (3 * len(items)))
            for name, call in model_jobs:
                t0 = time.perf_counter()
                for _ in range(model_calls):
                    call()
                timings.setdefault((name, "value"), []).append(
                    (time.perf_counter() - t0) / model_calls)
    finally:
        if was_enabled:
            gc.enable()

    def ns(key):
        return statistics.median(timings[key]) * 1e9

    rows = []
    for name, target, statement, kind, base in OP_CASES:
        v, b = ns((name, "value")), ns((name, base))
        rows.append({"op": name, "statement": statement, "value_ns": v,
                     "baseline": "float" if base == "float" else "__slots__ attribute",
                     "baseline_ns": b, "ratio": v / b if b > 0 else None})
    model = []
    for fused in ("default", "fused=True"):
        key_m, key_e = (f"model(x), {fused}", "value"), (f"engine mlp(plan, x), {fused}", "value")
        if key_m in timings:
            m, e = ns(key_m), ns(key_e)
            model.append({"model": "MLP(2, [16, 16, 1])", "graph": fused, "call_ns": m,
                          "engine_call_ns": e, "overhead_ns": m - e})
    return {
        "engine": engine_name,
        "python": platform.python_version(),
        "items_per_loop": n,
        "rounds": rounds,
        "ops": rows,
        "model_call": model,
    }


def _print(report):
    print(f"in-situ op costs, engine {report['engine']}, Python {report['python']} "
          f"(medians of {report['rounds']} rounds, loops over {report['items_per_loop']} objects)")
    print(f"{'op':<24}{'Value ns':>10}  {'baseline':<20}{'ns':>7}{'ratio':>8}")
    for r in report["ops"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        print(f"{r['op']:<24}{r['value_ns']:>10.1f}  {r['baseline']:<20}{r['baseline_ns']:>7.1f}"
              f"{ratio:>8}")
    for m in report["model_call"]:
        print(f"{m['model']} {m['graph']}: model(x) {m['call_ns'] / 1e3:.2f} us, engine "
              f"mlp(plan, x) {m['engine_call_ns'] / 1e3:.2f} us, Python-level call "
              f"{m['overhead_ns']:.0f} ns")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.opcost", description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=sorted(_MODULES) + ["compiled", "pure"],
                    default="micrograd_fast")
    ap.add_argument("--items", type=int, default=2000, help="objects per loop")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--model-calls", type=int, default=2000, help="model(x) calls per round")
    ap.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    args = ap.parse_args(argv)
    report = measure(args.engine, args.items, args.rounds, args.model_calls)
    _print(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
