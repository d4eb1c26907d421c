"""Width sweep of the demo's training step: time per step and multiply-adds
per second as the hidden layers widen.

``python -m benchmarks.width_sweep [--quick] [--json PATH] [--plot PATH]
[--widths 16,32,...]``

The step is the demo's tuned loop: 100 two-moons points as lists of input
Values, one ``model(x)`` call per point, hinge loss ``relu(1 - y * score)``
averaged with ``vsum`` plus ``1e-4`` times the sum of squared parameters,
``zero_grad``, ``backward`` and a plain SGD update with the demo's learning
rate schedule.  The model is ``MLP(2, [W, W, 1])`` (ReLU hidden layers,
linear output) with ``fused=True``, the fastest documented setting of
``micrograd_fast.nn``.  Rows:

* ``micrograd_fast fused, compiled``: the compiled engine.
* ``micrograd_fast fused, pure engine``: the pure-Python engine, only up to
  ``--pure-max`` (its time grows with width squared; the row says so).
* ``micrograd_fast batch call, compiled`` (and ``pure engine``, up to
  ``--pure-max``): the same step written for the batch call, as a learner
  who outgrows the per-point loop writes it: ``scores = model(X)`` on the
  (100, 2) float64 array (one block per layer, the default graph), the same
  hinge loss, ``optim.SGD(params, lr, weight_decay=2e-4)`` for the L2 term
  (the gradient of ``1e-4 * sum(p * p)``, with no node per parameter),
  ``opt.zero_grad()``, ``backward()``, the learning-rate schedule and
  ``opt.step()``.  No Python loop over parameters or points.
* ``micrograd_fast batch call by replay, compiled``: the same step with
  the graph built once and replayed: ``loss.recompute()`` instead of
  ``model(X)`` and the loss (docs/replay.md), then the same update.
* ``torch nn.Sequential + SGD(weight_decay), 1 thread``: that step in
  PyTorch: ``nn.Sequential``, the same hinge loss, ``torch.optim.SGD`` with
  ``weight_decay=2e-4``.  The batch call's ratio is taken against this row.
* ``torch nn.Sequential float64, 1 thread``: the same model written the usual
  PyTorch way (``nn.Sequential`` of ``Linear``/``ReLU``, all 100 points as one
  float64 batch, ``torch.optim.SGD``), skipped when torch is not installed.

All three start from the same weights (a seeded uniform draw in [-1, 1),
zero biases), so their first losses agree.  Multiply-adds per step are
counted as three per weight per point (forward, weight gradient, input
gradient): ``3 * points * sum(nin * nout)`` over the layers.  After
warm-up steps, each sample is the time per step of a run of 8 steps
(``steps_per_sample``; fewer when fewer steps are asked for), so the steps
in which the compiled arena reclaims count; each row reports the median,
minimum and maximum of the samples' wall times and the median of the
process's CPU time per step (``cpu_ms_per_step``: on a shared machine it
leaves out the time the process waited for a core).
"""

import argparse
import json
import statistics
import sys
import time

from benchmarks.workloads.training import STEPS_PER_SAMPLE, initial_weights

__all__ = ["main", "run_sweep", "WIDTHS"]

WIDTHS = (16, 32, 64, 128, 256)
BATCH = "micrograd_fast batch call, compiled"
REPLAY = "micrograd_fast batch call by replay, compiled"
TORCH_WD = "torch nn.Sequential + SGD(weight_decay), 1 thread"
POINTS = 100
WEIGHT_SEED = 1337
DATA_SEED = 1


def _data(points):
    from micrograd_fast.datasets import make_moons

    X, y = make_moons(points, noise=0.1, random_state=DATA_SEED)
    return X.tolist(), (2 * y - 1).tolist()


def _macs(sizes, points):
    return 3 * points * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _time_steps(step, warmup, steps, min_seconds):
    """Warm-up, then at least ``steps`` timed steps and ``min_seconds``.

    A sample is the time per step of a run of ``STEPS_PER_SAMPLE`` steps
    (of ``steps`` steps when fewer are asked for), so the steps in which
    the compiled arena reclaims count in it."""
    first = step(0)
    k = 1
    for _ in range(warmup):
        step(k % 100)
        k += 1
    per = max(1, min(STEPS_PER_SAMPLE, steps))
    times, cpu = [], []
    end = time.perf_counter() + min_seconds
    while len(times) * per < steps or time.perf_counter() < end:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for j in range(k, k + per):
            step(j % 100)
        times.append((time.perf_counter() - t0) / per)
        cpu.append((time.process_time() - c0) / per)
        k += per
    return (times, cpu, per), first


def _scalar_step(engine, sizes, flat, xs, ys):
    from micrograd_fast.nn import MLP

    model = MLP(sizes[0], sizes[1:], engine=engine, fused=True)
    params = model.parameters()
    for p, w in zip(params, flat):
        p.data = w
    Value, vsum = engine.Value, engine.vsum

    def step(k):
        inputs = [[Value(a) for a in row] for row in xs]
        scores = [model(x) for x in inputs]
        losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
        data_loss = vsum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * vsum([p * p for p in model.parameters()])
        total = data_loss + reg_loss
        model.zero_grad()
        total.backward()
        lr = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= lr * p.grad
        return total.data

    return step


def _batch_step(engine, sizes, flat, xs, ys, replay=False):
    import numpy as np

    from micrograd_fast import optim
    from micrograd_fast.nn import MLP

    model = MLP(sizes[0], sizes[1:], engine=engine)
    params = model.parameters()
    for p, w in zip(params, flat):
        p.data = w
    X = np.array(xs, dtype=np.float64)
    vsum = engine.vsum
    opt = optim.SGD(params, lr=1.0, weight_decay=2e-4)

    graph = []

    def step(k):
        if graph:
            total = graph[0]
            total.recompute()
        else:
            scores = model(X)
            losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
            total = vsum(losses) * (1.0 / len(losses))
            if replay:
                graph.append(total)
        opt.zero_grad()
        total.backward()
        opt.lr = 1.0 - 0.9 * k / 100
        opt.step()
        return total.data

    return step


def _torch_step(sizes, flat, xs, ys, weight_decay=0.0):
    import torch

    torch.set_num_threads(1)
    mods = []
    for i, (nin, nout) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(nin, nout, dtype=torch.float64))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    i = 0
    with torch.no_grad():
        for lin in model:
            if isinstance(lin, torch.nn.Linear):
                nout, nin = lin.weight.shape
                block = torch.tensor(flat[i:i + nout * (nin + 1)], dtype=torch.float64)
                block = block.reshape(nout, nin + 1)
                lin.weight.copy_(block[:, :nin])
                lin.bias.copy_(block[:, nin])
                i += nout * (nin + 1)
    X = torch.tensor(xs, dtype=torch.float64)
    Y = torch.tensor(ys, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=weight_decay)

    def step(k):
        scores = model(X)[:, 0]
        data_loss = torch.relu(1 - Y * scores).mean()
        if weight_decay:
            total = data_loss
        else:
            reg_loss = 1e-4 * sum((p * p).sum() for p in model.parameters())
            total = data_loss + reg_loss
        opt.zero_grad()
        total.backward()
        for group in opt.param_groups:
            group["lr"] = 1.0 - 0.9 * k / 100
        opt.step()
        return total.item()

    return step


def _row(width, label, timed, first, macs, note=None):
    times, cpu, per = timed
    med = statistics.median(times)
    row = dict(width=width, variant=label, ms_per_step=med * 1e3,
               mmac_per_s=macs / med / 1e6, median_s=med, min_s=min(times),
               max_s=max(times), cpu_ms_per_step=statistics.median(cpu) * 1e3,
               steps=len(times) * per, steps_per_sample=per, macs_per_step=macs,
               loss_first=first)
    if note:
        row["note"] = note
    return row


def run_sweep(widths=WIDTHS, quick=False, pure_max=32, torch_rows=True, steps=None,
              out=None):
    """The sweep's rows (a list of dicts), printed as they come when out is a file."""
    import micrograd_fast._engine as compiled
    import micrograd_fast._engine_py as pure

    xs, ys = _data(POINTS)
    warmup = 1 if quick else 5
    n_steps = steps if steps is not None else (3 if quick else 15)
    min_s = 0.0 if quick else 1.0
    try:
        import torch  # noqa: F401
    except ImportError:
        torch_rows = False
    rows = []
    for w in widths:
        sizes = [2, w, w, 1]
        flat = initial_weights(sizes, WEIGHT_SEED)
        macs = _macs(sizes, POINTS)
        plan = [("micrograd_fast fused, compiled",
                 lambda: _scalar_step(compiled, sizes, flat, xs, ys), n_steps, min_s, None)]
        if w <= pure_max:
            plan.append(("micrograd_fast fused, pure engine",
                         lambda: _scalar_step(pure, sizes, flat, xs, ys),
                         max(1, n_steps // 5), 0.0,
                         f"pure engine measured up to width {pure_max} only"))
        if torch_rows:
            plan.append(("torch nn.Sequential float64, 1 thread",
                         lambda: _torch_step(sizes, flat, xs, ys), n_steps, min_s, None))
        plan.append((BATCH, lambda: _batch_step(compiled, sizes, flat, xs, ys), n_steps,
                     min_s, None))
        plan.append((REPLAY, lambda: _batch_step(compiled, sizes, flat, xs, ys, True),
                     n_steps, min_s, None))
        if w <= pure_max:
            plan.append(("micrograd_fast batch call, pure engine",
                         lambda: _batch_step(pure, sizes, flat, xs, ys),
                         max(1, n_steps // 5), 0.0,
                         f"pure engine measured up to width {pure_max} only"))
        if torch_rows:
            plan.append((TORCH_WD, lambda: _torch_step(sizes, flat, xs, ys, 2e-4), n_steps,
                         min_s, None))
        for label, make, n, secs, note in plan:
            timed, first = _time_steps(make(), 0 if "pure" in label else warmup, n, secs)
            row = _row(w, label, timed, first, macs, note)
            rows.append(row)
            if out is not None:
                print(f"width {w:4d}  {label:40s} {row['ms_per_step']:10.3f} ms/step"
                      f" (cpu {row['cpu_ms_per_step']:9.3f})"
                      f"  {row['mmac_per_s']:9.1f} M multiply-adds/s", file=out, flush=True)
    return rows


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        ws = [r["width"] for r in mine]
        ax1.plot(ws, [r["ms_per_step"] for r in mine], marker="o", label=label)
        ax2.plot(ws, [r["mmac_per_s"] for r in mine], marker="o", label=label)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width W of MLP(2, [W, W, 1])")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("ms per training step (median)")
    ax2.set_ylabel("million multiply-adds per second")
    ax1.set_title("demo step, 100 points")
    ax2.set_title("throughput (3 multiply-adds per weight per point)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.width_sweep",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few steps per row, no minimum time")
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    ap.add_argument("--plot", metavar="PATH", help="write a plot (PNG) of both measures")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)),
                    help="comma-separated hidden widths (default %(default)s)")
    ap.add_argument("--pure-max", type=int, default=32,
                    help="widest model the pure engine runs (default %(default)s)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per row")
    ap.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",") if w.strip()]
    rows = run_sweep(widths, quick=args.quick, pure_max=args.pure_max,
                     torch_rows=not args.no_torch, steps=args.steps, out=sys.stdout)
    by_width = {}
    for r in rows:
        by_width.setdefault(r["width"], {})[r["variant"]] = r
    for w, d in by_width.items():
        c = d.get("micrograd_fast fused, compiled")
        t = d.get("torch nn.Sequential float64, 1 thread")
        if c and t:
            print(f"width {w:4d}  compiled / torch = {c['ms_per_step'] / t['ms_per_step']:.2f}x"
                  f" (cpu time {c['cpu_ms_per_step'] / t['cpu_ms_per_step']:.2f}x)")
        tw = d.get(TORCH_WD)
        for label, name in ((BATCH, "batch call"), (REPLAY, "by replay")):
            b = d.get(label)
            if b and tw:
                print(f"width {w:4d}  {name} / torch = "
                      f"{b['ms_per_step'] / tw['ms_per_step']:.2f}x"
                      f" (cpu time {b['cpu_ms_per_step'] / tw['cpu_ms_per_step']:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(benchmark="width_sweep", points=POINTS,
                           model="MLP(2, [W, W, 1]), relu hidden (fused=True for the "
                                 "per-point rows, the default graph for the batch call)",
                           macs="3 * points * sum(nin * nout)", rows=rows), f, indent=1)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
