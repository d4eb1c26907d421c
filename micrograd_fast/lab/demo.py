"""The moons demo: a 2-16-16-1 ReLU MLP learns to separate two half circles.

Same set-up as micrograd's demo notebook, so the numbers can be compared with
it: 100 points from ``make_moons(noise=0.1)`` with labels -1/+1, both random
generators seeded with 1337, a max-margin (hinge) loss averaged over the
points plus a small L2 penalty, and plain SGD whose step size falls linearly
from 1.0 towards 0.1 over the first 100 steps.
"""

import os
import random
import sys
import time

from micrograd_fast.viz import VIZ_EXTRA_HINT, require

MODEL_SIZES = [16, 16, 1]
N_POINTS = 100
NOISE = 0.1
L2_ALPHA = 1e-4


def learning_rate(step):
    """1.0 at step 0, minus 0.009 per step (0.109 at step 99)."""
    return 1.0 - 0.9 * step / 100


def moons_data(seed, n_points=N_POINTS):
    """Seed both generators, then draw the points; labels are -1 or +1."""
    import numpy as np

    from micrograd_fast.datasets import make_moons

    random.seed(seed)
    np.random.seed(seed)
    X, y = make_moons(n_samples=n_points, noise=NOISE)
    labels = [int(2 * k - 1) for k in y]
    return X, labels


def evaluate(model, Value, X, labels, total_of=sum, batch=False):
    """Forward pass over all points: (total loss Value, accuracy in [0, 1]).

    The loss is the mean hinge loss plus ``L2_ALPHA`` times the sum of the
    squared parameters.  ``X`` is rows of two numbers (a NumPy array or
    lists); each row becomes ``list(map(Value, row))`` and the model is
    called once per row, unless ``batch`` (the model takes all of ``X`` in
    one call and returns a score per row).  ``total_of`` adds up the margins
    and the squares (the builtin ``sum``, or an n-ary sum such as
    ``micrograd_fast.sum``); the numbers are the same either way.
    """
    if batch:
        scores = model(X)
    else:
        scores = list(map(model, [list(map(Value, row)) for row in X]))
    # hinge loss: zero once a point is on the right side with margin 1
    margins = [(1 + -label * score).relu() for label, score in zip(labels, scores)]
    data_loss = total_of(margins) * (1.0 / len(margins))
    reg_loss = L2_ALPHA * total_of(p * p for p in model.parameters())
    hits = sum((label > 0) == (score.data > 0) for label, score in zip(labels, scores))
    return data_loss + reg_loss, float(hits / len(labels))


def train_step(model, Value, X, labels, k, total_of=sum, batch=False):
    """Step ``k`` of the demo's training: :func:`evaluate`, ``zero_grad``,
    ``backward``, then SGD at ``learning_rate(k)``.

    Returns ``(total, accuracy)``: ``total`` is the loss Value (the root of
    the step's graph), before the update.
    """
    total, accuracy = evaluate(model, Value, X, labels, total_of, batch)
    model.zero_grad()
    total.backward()
    lr = learning_rate(k)
    for p in model.parameters():
        p.data -= lr * p.grad
    return total, accuracy


def train(model, Value, X, labels, steps, progress=None, total_of=sum, batch=False):
    """Run ``steps`` SGD steps; returns (losses, accuracies, seconds per step)."""
    losses, accuracies, times = [], [], []
    for k in range(steps):
        t0 = time.perf_counter()
        total, acc = train_step(model, Value, X, labels, k, total_of, batch)
        times.append(time.perf_counter() - t0)
        losses.append(total.data)
        accuracies.append(acc)
        if progress is not None:
            progress(k, total.data, acc)
    return losses, accuracies, times


def plot_paths(path):
    """'moons.png' -> ('moons.png', 'moons_loss.png')."""
    stem, ext = os.path.splitext(path)
    return path, f"{stem}_loss{ext or '.png'}"


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # drawing without pyplot or a window
    return fig


def boundary_grid(X, grid_points=40):
    """The plane around the points, as two meshgrid arrays."""
    import numpy as np

    x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
    y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
    step = (x_max - x_min) / grid_points
    return np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))


def boundary_scores(model, Value, gx, gy):
    """The model's score at every point of the grid."""
    import numpy as np

    return np.array(
        [model([Value(float(a)), Value(float(b))]).data
         for a, b in zip(gx.ravel(), gy.ravel())]
    ).reshape(gx.shape)


def _draw_boundary(ax, gx, gy, scores, X, labels):
    ax.contourf(gx, gy, scores > 0, cmap="Spectral", alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=labels, s=40, cmap="Spectral", edgecolors="k")
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())


def plot_boundary(model, Value, X, labels, path, grid_points=40):
    """Colour the plane by the sign of the model's score, then the points."""
    gx, gy = boundary_grid(X, grid_points)
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    _draw_boundary(ax, gx, gy, boundary_scores(model, Value, gx, gy), X, labels)
    ax.set_title("moons: decision boundary of MLP(2, [16, 16, 1])")
    fig.savefig(path)


def frame_steps(steps, frames=20):
    """The steps after which the animation takes a frame: 0 (before
    training), then every steps // frames steps, and the last."""
    every = max(1, steps // frames)
    return sorted(set(range(0, steps + 1, every)) | {steps})


def animate(snapshots, X, labels, path, out=None):
    """Write the training animation: per snapshot (steps done, grid, scores,
    losses so far) a frame of the decision boundary with the loss curve
    beside it.  A '.gif' path is written by Pillow, an '.html' one as
    matplotlib's JavaScript animation (frames embedded); a progress bar
    shows the rendering."""
    require("matplotlib", "the demo's animation")
    tqdm = require("tqdm", "the demo's animation")
    from matplotlib import animation

    ext = os.path.splitext(str(path))[1].lower()
    if ext == ".gif":
        writer = animation.PillowWriter(fps=6)
    elif ext in (".html", ".htm"):
        writer = animation.HTMLWriter(fps=6, embed_frames=True, default_mode="once")
    else:
        raise ValueError(f"--animate writes a .gif or an .html file, not {path!r}")
    total = max(len(s[3]) for s in snapshots)
    top = max([max(s[3]) for s in snapshots if s[3]] + [1.0])
    fig = _figure(10, 4.2)
    ax, lx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})

    def draw(t):
        done, (gx, gy), scores, losses = snapshots[t]
        ax.clear()
        _draw_boundary(ax, gx, gy, scores, X, labels)
        ax.set_title(f"decision boundary after {done} steps")
        lx.clear()
        lx.plot(range(1, len(losses) + 1), losses, color="tab:blue")
        lx.set_xlim(1, max(total, 2))
        lx.set_ylim(min([min(s[3]) for s in snapshots if s[3]] + [top]) * 0.8, top * 1.25)
        lx.set_yscale("log")
        lx.set_xlabel("step")
        lx.set_ylabel("loss (hinge + L2)")
        lx.set_title("training loss" + (f": {losses[-1]:.4f}" if losses else ""))
        fig.tight_layout()
        return []

    anim = animation.FuncAnimation(fig, draw, frames=len(snapshots), blit=False)
    with tqdm.tqdm(total=len(snapshots), desc="rendering", unit="frame") as bar:
        anim.save(str(path), writer=writer,
                  progress_callback=lambda i, n: bar.update(1))
    return path


def plot_curves(losses, accuracies, path):
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    steps = range(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (hinge + L2)", color="tab:blue")
    ax.set_yscale("log")
    acc_ax = ax.twinx()
    acc_ax.plot(steps, [100 * a for a in accuracies], color="tab:orange")
    acc_ax.set_ylabel("accuracy (%)", color="tab:orange")
    acc_ax.set_ylim(0, 105)
    ax.set_title("moons: training loss and accuracy")
    fig.tight_layout()
    fig.savefig(path)


def _optional(module_name):
    """The module, or None when it is not installed."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def _text_progress(steps, err):
    """Progress without tqdm: one line every tenth of the run, and the last."""
    every = max(1, steps // 10)

    def progress(k, loss, acc):
        if (k + 1) % every == 0 or k + 1 == steps:
            print(f"  step {k + 1}/{steps}: loss {loss:.4f}, accuracy {acc:.0%}", file=err)

    return progress, lambda: None


def _tqdm_progress(tqdm_module, steps):
    bar = tqdm_module.tqdm(total=steps, desc="training", unit="step", leave=True)

    def progress(k, loss, acc):
        bar.set_postfix(loss=f"{loss:.4f}", accuracy=f"{acc:.0%}", refresh=False)
        bar.update(1)

    return progress, bar.close


def run_demo(steps=100, plot="moons.png", seed=1337, out=None, plot_required=False,
             animation_path=None):
    """The ``demo`` command.  ``plot=None`` skips the pictures.

    The core needs none of the viz packages: without tqdm the progress is
    printed as plain lines, and without matplotlib the pictures are left
    out (one line says which extra adds them), unless ``plot_required``
    (the user asked for a picture by name), which is then an ImportError
    before any training.
    """
    out = out or sys.stdout
    if plot is not None and plot_required:
        require("matplotlib", "the demo's plots")
    if animation_path is not None:
        require("matplotlib", "the demo's animation")
        require("tqdm", "the demo's animation")
        if os.path.splitext(str(animation_path))[1].lower() not in (".gif", ".html", ".htm"):
            raise ValueError(f"--animate writes a .gif or an .html file, not {animation_path!r}")
    tqdm_module = _optional("tqdm")
    missing = [] if tqdm_module is not None else ["tqdm"]
    if plot is not None and _optional("matplotlib") is None:
        missing.append("matplotlib")
        plot = None
    import micrograd_fast.engine as engine
    from micrograd_fast.lab.engines import engine_name
    from micrograd_fast.nn import MLP

    Value = engine.Value
    X, labels = moons_data(seed)
    model = MLP(2, list(MODEL_SIZES))
    n_params = len(model.parameters())
    print(
        f"moons demo: {len(labels)} points, MLP(2, {MODEL_SIZES}) with {n_params} "
        f"parameters, {engine_name(engine)} engine, seed {seed}",
        file=out,
    )
    out.flush()

    if tqdm_module is not None:
        progress, close = _tqdm_progress(tqdm_module, steps)
    else:
        progress, close = _text_progress(steps, sys.stderr)
    snapshots = []
    if animation_path is not None:
        # a frame before training and every few steps: the boundary, the loss so far
        grid = boundary_grid(X, grid_points=30)
        takes = set(frame_steps(steps))
        seen_losses = []

        def snapshot(done):
            snapshots.append((done, grid, boundary_scores(model, Value, *grid), list(seen_losses)))

        snapshot(0)
        bar_progress = progress

        def progress(k, loss, acc):
            bar_progress(k, loss, acc)
            seen_losses.append(loss)
            if k + 1 in takes:
                snapshot(k + 1)

    try:
        losses, accuracies, times = train(model, Value, X, labels, steps, progress)
    finally:
        close()

    if steps:
        mean_ms = 1000 * sum(times) / len(times)
        print(
            f"step {steps}: loss {losses[-1]:.6f}, accuracy {accuracies[-1]:.0%}",
            file=out,
        )
        print(
            f"mean time per step: {mean_ms:.2f} ms "
            f"(forward + backward + update, {steps} steps)",
            file=out,
        )
    if plot is not None:
        boundary_path, curve_path = plot_paths(plot)
        plot_boundary(model, Value, X, labels, boundary_path)
        plot_curves(losses, accuracies, curve_path)
        print(f"wrote {boundary_path} (decision boundary) and {curve_path} "
              f"(loss and accuracy)", file=out)
    if animation_path is not None:
        animate(snapshots, X, labels, animation_path)
        print(f"wrote {animation_path} (the decision boundary as it trains, "
              f"{len(snapshots)} frames)", file=out)
    if missing:
        print(f"progress bar and plots: {VIZ_EXTRA_HINT} "
              f"(not installed: {', '.join(missing)})", file=out)
    return losses, accuracies
