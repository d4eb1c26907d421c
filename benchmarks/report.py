"""Tables (plain text and Markdown) and the PNG plot, from a list of records.

Everything here reads only the records (the JSON the runner writes), so a
saved run can be rendered again with ``python -m benchmarks --from-json``.
"""

import math

__all__ = ["main_table", "scaling_table", "microgpt_lines", "render_text", "render_markdown",
           "render_readme_table", "replace_readme_table", "README_START", "README_END",
           "plot"]

ENGINE_ORDER = ("micrograd_fast", "reference", "micrograd", "torch")

# the main table's label of each workload (a few get special rows in _rows)
ROW_LABELS = {
    "op_add": "a + b",
    "op_mul": "a * b",
    "build": "build graph",
    "backward": "backward",
    "sum_builtin": "sum(xs) + backward",
    "vsum": "vsum(xs) + backward",
    "demo_notebook": "demo step, demo.ipynb loop as written (NumPy X and y, "
                     "builtin sum, map(model, inputs)), upstream nn.py MLP; "
                     "torch: nn.Sequential, zero_grad, optimizer.step()",
    "demo_notebook_native": "demo step, demo.ipynb loop as written, "
                            "micrograd_fast.nn MLP; torch: nn.Sequential, "
                            "zero_grad, optimizer.step()",
    "demo_step": "demo step tuned: float lists, builtin sum, upstream nn.py MLP; "
                 "torch: hand-written tensor step",
    "demo_step_native": "demo step tuned: float lists, micrograd_fast.sum, "
                        "micrograd_fast.nn MLP; torch: hand-written "
                        "tensor step",
    "demo_step_fused": "demo step tuned: float lists, micrograd_fast.sum, "
                       "micrograd_fast.nn MLP fused=True (one node per neuron); torch: "
                       "hand-written tensor step",
    "memory_per_node": "memory per node",
    "demo_peak_memory": "demo step peak memory",
    "microgpt_step": "microgpt-shaped step",
    "memory_labels": "RSS growth in training, labels on every node",
    "memory_attributes": "RSS growth in training, attributes on every node",
    "memory_custom_op": "RSS growth in training, custom-op MLP",
}

LOWER_IS_BETTER = {"ns/op", "ns/node", "ns/term", "ms/step", "bytes/node", "MiB peak"}


def _fmt_num(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    return f"{x:,.{decimals}f}"


def _fmt_value(value, unit):
    if value is None:
        return "-"
    if unit in ("ns/op", "ns/node", "ns/term"):
        if value >= 10_000:
            return f"{_fmt_num(value / 1000)} µs{unit[2:]}"
        return f"{_fmt_num(value)} {unit}"
    if unit == "ms/step":
        if value < 1:
            return f"{_fmt_num(value * 1000)} µs/step"
        if value >= 1000:
            return f"{_fmt_num(value / 1000)} s/step"
        return f"{_fmt_num(value)} ms/step"
    if unit == "bytes/node":
        return f"{_fmt_num(value)} B/node"
    if unit == "MiB peak":
        return f"{_fmt_num(value)} MiB"
    if unit == "% in GC":
        return f"{value:.1f}%"
    return f"{_fmt_num(value)} {unit}"


def _fmt_ratio(r):
    if r is None:
        return "-"
    return f"{_fmt_num(r)}x"


def _engines_present(records):
    seen = {r["engine"] for r in records if r.get("workload") != "meta"}
    return [e for e in ENGINE_ORDER if e in seen]


def _base_engine(engines):
    for e in ("micrograd_fast", "reference"):
        if e in engines:
            return e
    return engines[0] if engines else None


def _rows(records):
    """(label, {engine: (value, unit, cell text)}) rows of the main table."""
    by = {}
    order = []
    for r in records:
        w = r.get("workload")
        if w in (None, "meta", "scaling"):
            continue
        if w not in order:
            order.append(w)
        by.setdefault(w, {})[r["engine"]] = r
    rows = []
    for w in order:
        recs = by[w]
        if w == "free":
            rows.append(("free: del (+ arena compact)",
                         {e: ((r["del_s"] + (r.get("compact_s") or 0.0)) / r["nodes"] * 1e9,
                              "ns/node") for e, r in recs.items()}))
            rows.append(("free: del + gc.collect() (+ compact)",
                         {e: (r["headline"], r["unit"]) for e, r in recs.items()}))
        elif w == "deep_chain":
            cells = {}
            for e, r in recs.items():
                if r.get("failed_depth") is None:
                    text = f"ok to {r['depth']:,}"
                else:
                    err = (r.get("failure") or "error").split(":")[0]
                    text = f"{err} at {r['failed_depth']:,}"
                cells[e] = (r["headline"], r["unit"], text)
            rows.append(("deep chain y = y + x", cells))
        elif w == "gc_share":
            cells = {}
            for e, r in recs.items():
                text = f"{r['headline']:.0f}% in GC, {r['slowdown'] * 100:+.0f}% vs gc off"
                cells[e] = (r["headline"], r["unit"], text)
            rows.append(("demo step: GC share", cells))
        else:
            label = ROW_LABELS.get(w, w)
            nodes = next((r.get("nodes") for r in recs.values() if r.get("nodes")), None)
            if w in ("build", "backward", "free") and nodes:
                label = f"{label} ({nodes:,} nodes)"
            terms = next((r.get("terms") for r in recs.values() if r.get("terms")), None)
            if terms:
                label = f"{label}, {terms:,} terms"
            rows.append((label, {e: (r["headline"], r["unit"]) for e, r in recs.items()}))
    return rows


def main_table(records):
    """``(header, rows)`` of strings: one row per workload, one column per
    engine, then the ratios of every other engine to the base engine
    (the compiled core, else the pure twin): how many times its time or
    memory is the base's."""
    engines = _engines_present(records)
    base = _base_engine(engines)
    others = [e for e in engines if e != base]
    header = ["workload"] + engines + [f"{e} / {base}" for e in others]
    rows = []
    for label, cells in _rows(records):
        row = [label]
        for e in engines:
            cell = cells.get(e)
            if cell is None:
                row.append("-")
            elif len(cell) == 3:
                row.append(cell[2])
            else:
                row.append(_fmt_value(cell[0], cell[1]))
        for e in others:
            a, b = cells.get(e), cells.get(base)
            if label.startswith("free: del ("):
                row.append("-")  # a del that frees nothing is no speed
            elif a and b and a[1] in LOWER_IS_BETTER and a[0] and b[0]:
                row.append(_fmt_ratio(a[0] / b[0]))
            else:
                row.append("-")
        rows.append(row)
    return header, rows


def _gc_share(rec):
    if not rec or not rec.get("median_s") or rec.get("gc_s") is None:
        return None
    return rec["gc_s"] / rec["median_s"]


def scaling_table(records):
    """``(header, rows)``: ns per node by N, one column per engine and phase."""
    recs = [r for r in records if r.get("workload") == "scaling"]
    if not recs:
        return None, []
    engines = [e for e in ENGINE_ORDER if any(r["engine"] == e for r in recs)]
    cols = [(e, p) for e in engines for p in ("build", "backward")]
    ns = sorted({r["n"] for r in recs})
    cell = {(r["engine"], r["phase"], r["n"]): r for r in recs}
    header = ["N"] + [f"{e} {p}" for e, p in cols]
    rows = []
    for n in ns:
        row = [f"{n:,}"]
        for e, p in cols:
            r = cell.get((e, p, n))
            text = _fmt_value(r["headline"], r["unit"]) if r else "-"
            share = _gc_share(r)
            if share is not None and share >= 0.05:
                text += f" ({share:.0%} GC)"
            row.append(text)
        rows.append(row)
    return header, rows


def microgpt_lines(records):
    """One line per engine that ran ``microgpt_step``: its time per step next
    to the pure children/local-gradients Value's, the ratio, the loss trail."""
    lines = []
    for r in records:
        if r.get("workload") != "microgpt_step":
            continue
        same = "bit for bit" if r.get("bit_identical") else "to 4 decimals"
        lines.append(
            f"microgpt-shaped step ({r.get('model')}) on {r['engine']}: "
            f"{_fmt_value(r.get('own_ms_step'), 'ms/step')} with its own pure-Python "
            f"Value, {_fmt_value(r['headline'], r['unit'])} with {r['engine']}'s "
            f"({_fmt_ratio(r.get('speedup'))}); same loss trail {same}: "
            f"{' '.join(r.get('trail') or [])}")
    return lines


def _text_grid(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)), line]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return "\n".join(out)


def _md_grid(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def _meta(records):
    return next((r for r in records if r.get("workload") == "meta"), None)


def _machine_line(meta):
    if not meta:
        return ""
    m = meta.get("machine", {})
    v = meta.get("versions", {})
    parts = [
        f"Python {m.get('python_version', '?')}",
        f"{m.get('platform', '?')}",
        f"{m.get('cpu_count', '?')} CPUs",
    ]
    if m.get("cpu_model"):
        parts.append(m["cpu_model"])
    vers = ", ".join(f"{k} {val}" for k, val in sorted(v.items()) if val)
    line = "; ".join(parts)
    if vers:
        line += f"; {vers}"
    return f"{line}; size `{meta.get('size')}`, {meta.get('created', '')}"


def _notes(meta):
    """One line per skipped or failed (engine, workload) of the run."""
    if not meta:
        return []
    lines = []
    for item in meta.get("errors", []):
        lines.append(f"error: {item['workload']} on {item['engine']}: {item['error']}")
    for item in meta.get("skipped", []):
        what = item["workload"] or "all workloads"
        lines.append(f"skipped: {what} on {item['engine']}: {item['reason']}")
    return lines


def render_text(records):
    header, rows = main_table(records)
    parts = [_text_grid(header, rows)]
    sh, srows = scaling_table(records)
    if sh:
        parts.append("cost per node by graph size (flat = linear total cost)")
        parts.append(_text_grid(sh, srows))
    gpt = microgpt_lines(records)
    if gpt:
        parts.append("\n".join(gpt))
    notes = _notes(_meta(records))
    if notes:
        parts.append("\n".join(notes))
    line = _machine_line(_meta(records))
    if line:
        parts.append(line)
    return "\n\n".join(parts)


def render_markdown(records):
    header, rows = main_table(records)
    engines = _engines_present(records)
    base = _base_engine(engines)
    parts = [
        _md_grid(header, rows),
        f"Ratios are each engine's time (or memory) divided by `{base}`'s, "
        "from the same run; times are medians of repeats.",
    ]
    if any(r.get("workload") == "free" for r in records):
        parts.append(
            "`free: del` frees nothing for engines whose nodes sit in reference "
            "cycles (upstream micrograd, the pure twin): their graph goes only at "
            "the `gc.collect()` of the next row.")
    sh, srows = scaling_table(records)
    if sh:
        parts.append("Cost per node by graph size (a flat column means linear total cost):")
        parts.append(_md_grid(sh, srows))
    gpt = microgpt_lines(records)
    if gpt:
        parts.append("\n".join(f"- {line}" for line in gpt))
    notes = _notes(_meta(records))
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    line = _machine_line(_meta(records))
    if line:
        parts.append(f"<sub>{line}</sub>")
    return "\n\n".join(parts) + "\n"


README_START = "<!-- speed table: python -m benchmarks --readme README.md -->"
README_END = "<!-- end of speed table -->"


def render_readme_table(records):
    """The README's part: the main table, any skip or error notes, and the
    machine line."""
    header, rows = main_table(records)
    parts = [_md_grid(header, rows)]
    notes = _notes(_meta(records))
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    line = _machine_line(_meta(records))
    if line:
        parts.append(f"<sub>{line}</sub>")
    return "\n\n".join(parts)


def replace_readme_table(text, records):
    """``text`` (a README) with what stands between README_START and
    README_END replaced by :func:`render_readme_table`."""
    try:
        start = text.index(README_START) + len(README_START)
        end = text.index(README_END, start)
    except ValueError:
        raise ValueError(f"the README has no {README_START!r} ... {README_END!r} markers") from None
    return text[:start] + "\n" + render_readme_table(records) + "\n" + text[end:]


_COLORS = {"micrograd_fast": "tab:blue", "reference": "tab:green",
           "micrograd": "tab:red", "torch": "tab:orange"}


def plot(records, path):
    """Write a PNG: cost per node against N (log-log), and the speed of every
    engine relative to upstream micrograd on each timed workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))

    scal = [r for r in records if r.get("workload") == "scaling"]
    for e in ENGINE_ORDER:
        for phase, style in (("build", "-o"), ("backward", "--s")):
            pts = sorted((r["n"], r["headline"]) for r in scal
                         if r["engine"] == e and r["phase"] == phase)
            if pts:
                ax1.plot([p[0] for p in pts], [p[1] for p in pts], style,
                         color=_COLORS.get(e), label=f"{e} {phase}", ms=4)
        # the build's cost without the time spent in GC collections
        builds = sorted((r["n"], r) for r in scal
                        if r["engine"] == e and r["phase"] == "build")
        if builds and max((_gc_share(r) or 0.0) for _, r in builds) >= 0.05:
            ax1.plot([n for n, _ in builds],
                     [r["headline"] * (1.0 - (_gc_share(r) or 0.0)) for _, r in builds],
                     ":", color=_COLORS.get(e), label=f"{e} build, GC time removed")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("graph size N (nodes)")
    ax1.set_ylabel("ns per node")
    ax1.set_title("Cost per node (flat = linear in N)")
    ax1.grid(True, which="both", alpha=0.3)
    if scal:
        ax1.legend(fontsize=7, ncol=2, loc="best")

    timed = [r for r in records if r.get("workload") not in (None, "meta", "scaling")
             and r.get("unit") in LOWER_IS_BETTER and r.get("headline")]
    workloads = []
    for r in timed:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    ref = {r["workload"]: r["headline"] for r in timed if r["engine"] == "micrograd"}
    engines = [e for e in ENGINE_ORDER if e != "micrograd" and any(r["engine"] == e for r in timed)]
    shown = [w for w in workloads if w in ref]
    height = 0.8 / max(1, len(engines))
    for j, e in enumerate(engines):
        vals = {r["workload"]: r["headline"] for r in timed if r["engine"] == e}
        ys, xs = [], []
        for i, w in enumerate(shown):
            if w in vals:
                ys.append(i + j * height)
                xs.append(ref[w] / vals[w])
        ax2.barh(ys, xs, height=height, color=_COLORS.get(e), label=e)
    ax2.set_yticks([i + height * (len(engines) - 1) / 2 for i in range(len(shown))])
    ax2.set_yticklabels(shown)
    ax2.invert_yaxis()
    ax2.set_xscale("log")
    ax2.axvline(1.0, color="black", lw=0.8)
    ax2.set_xlabel("upstream micrograd's time (or memory) / engine's  (>1: better)")
    ax2.set_title("Relative to upstream micrograd, same run")
    ax2.grid(True, axis="x", which="both", alpha=0.3)
    if engines and shown:
        ax2.legend(fontsize=8)

    meta = _meta(records)
    if meta:
        fig.suptitle(_machine_line(meta).replace("`", ""), fontsize=7, y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
