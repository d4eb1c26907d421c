"""Tables (plain text and Markdown) and the PNG plot, from a list of records.

Everything here reads only the records (the JSON the runner writes), so a
saved run can be rendered again with ``python -m benchmarks --from-json``.
"""

import math

from benchmarks.workloads import WORKLOADS, Row

__all__ = ["main_table", "scaling_table", "microgpt_lines", "render_text", "render_markdown",
           "render_readme_table", "replace_readme_table", "README_START", "README_END",
           "plot"]

ENGINE_ORDER = ("micrograd_fast", "reference", "micrograd", "torch")

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
    """``(label, ratio, {engine: (value, unit, text)})`` rows of the main
    table: each workload's declared rows (one plain row for a workload the
    registry does not know, e.g. from an older saved run), ``text`` ``None``
    where the value is formatted by its unit."""
    by = {}
    order = []
    for r in records:
        w = r.get("workload")
        if w in (None, "meta"):
            continue
        if w not in order:
            order.append(w)
        by.setdefault(w, {})[r["engine"]] = r
    rows = []
    for w in order:
        recs = by[w]
        declared = WORKLOADS.get(w)
        for spec in declared.rows if declared is not None else (Row(w),):
            label = spec.label
            nodes = next((r.get("nodes") for r in recs.values() if r.get("nodes")), None)
            if spec.nodes_in_label and nodes:
                label = f"{label} ({nodes:,} nodes)"
            terms = next((r.get("terms") for r in recs.values() if r.get("terms")), None)
            if terms:
                label = f"{label}, {terms:,} terms"
            cells = {e: (spec.value(r) if spec.value else r["headline"], r["unit"],
                         spec.text(r) if spec.text else None)
                     for e, r in recs.items()}
            rows.append((label, spec.ratio, cells))
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
    for label, ratio, cells in _rows(records):
        row = [label]
        for e in engines:
            cell = cells.get(e)
            if cell is None:
                row.append("-")
            elif cell[2] is not None:
                row.append(cell[2])
            else:
                row.append(_fmt_value(cell[0], cell[1]))
        for e in others:
            a, b = cells.get(e), cells.get(base)
            if ratio and a and b and a[1] in LOWER_IS_BETTER and a[0] and b[0]:
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
    rounds = meta.get("rounds") or 1
    kept = f", median of {rounds} rounds" if rounds > 1 else ""
    return f"{line}; size `{meta.get('size')}`{kept}, {meta.get('created', '')}"


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


def _bullets(lines):
    return "\n".join(f"- {line}" for line in lines)


def _render(records, markdown, readme=False):
    """The tables and notes of a run, as plain text or Markdown; ``readme``:
    only what the README's speed table shows (the main table, the skip and
    error notes, the machine line)."""
    grid = _md_grid if markdown else _text_grid
    lines = _bullets if markdown else "\n".join
    header, rows = main_table(records)
    parts = [grid(header, rows)]
    if not readme:
        if markdown:
            base = _base_engine(_engines_present(records))
            parts.append(f"Ratios are each engine's time (or memory) divided by `{base}`'s, "
                         "from the same run; times are medians of repeats.")
            ran = {r.get("workload") for r in records}
            parts.extend(w.note for w in WORKLOADS.values() if w.note and w.name in ran)
        sh, srows = scaling_table(records)
        if sh:
            parts.append("Cost per node by graph size (a flat column means linear total cost):"
                         if markdown else
                         "cost per node by graph size (flat = linear total cost)")
            parts.append(grid(sh, srows))
        gpt = microgpt_lines(records)
        if gpt:
            parts.append(lines(gpt))
    notes = _notes(_meta(records))
    if notes:
        parts.append(lines(notes))
    line = _machine_line(_meta(records))
    if line:
        parts.append(f"<sub>{line}</sub>" if markdown else line)
    return "\n\n".join(parts)


def render_text(records):
    """Every table and note of a run, as plain text (what the command prints)."""
    return _render(records, markdown=False)


def render_markdown(records):
    """Every table and note of a run, as Markdown (``--markdown``)."""
    return _render(records, markdown=True) + "\n"


README_START = "<!-- speed table: python -m benchmarks --readme README.md -->"
README_END = "<!-- end of speed table -->"


def render_readme_table(records):
    """The README's part: the main table, any skip or error notes, and the
    machine line."""
    return _render(records, markdown=True, readme=True)


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
