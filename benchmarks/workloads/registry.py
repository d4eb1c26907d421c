"""The registry: every workload declared once, with what the runner, the
worker and the report need to know of it.

A workload module declares each of its workloads with :func:`workload`::

    @workload("ns/node", "build graph", nodes_in_label=True, excluded=NO_TENSOR_FORM)
    def build(engine, size):
        ...

The name is the function's, the description the first sentence of its
docstring.  ``unit`` is the unit of the record's ``headline`` (the worker
fills it in), ``excluded`` maps the engines the workload is not meant for to
the reason (the runner does not start them), ``rows`` are its rows in the
main table (``label`` alone gives one), ``note`` a Markdown note printed
under the table when the workload ran.  Registration order is the order of
the run and of the tables.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

__all__ = ["Skip", "Row", "Workload", "WORKLOADS", "workload", "applies", "record",
           "NO_TENSOR_FORM"]


class Skip(Exception):
    """The workload does not apply to this engine (reason in the message)."""


#: the usual exclusion: a workload written for scalar Values only
NO_TENSOR_FORM = {"torch": "no tensor form of this workload"}


@dataclass(frozen=True)
class Row:
    """One row of the main table, made from each engine's record.

    ``value(rec)`` is the number of the cell (the record's ``headline`` by
    default; its unit is the record's), ``text(rec)`` replaces its formatted
    value when given, ``nodes_in_label`` appends the graph's node count to the
    label, and ``ratio=False`` leaves the ratio columns empty (a number that
    is no speed).
    """

    label: str
    value: Optional[Callable[[dict], float]] = None
    text: Optional[Callable[[dict], str]] = None
    nodes_in_label: bool = False
    ratio: bool = True


@dataclass(frozen=True)
class Workload:
    """A workload as declared: see the module's docstring."""

    name: str
    run: Callable
    unit: str
    rows: tuple = ()
    excluded: dict = field(default_factory=dict)
    note: Optional[str] = None

    @property
    def description(self):
        """First sentence of the docstring's first paragraph, on one line."""
        para = " ".join((self.run.__doc__ or "").strip().split("\n\n")[0].split())
        end = para.find(". ")
        return para if end < 0 else para[:end + 1]

    def applies(self, engine_name):
        return engine_name not in self.excluded


#: name -> Workload, in registration order
WORKLOADS = {}


def workload(unit, label=None, *, rows=None, excluded=None, note=None, text=None,
             nodes_in_label=False):
    """Declare the decorated function ``fn(engine, size) -> records`` as a
    workload.  ``label`` (with ``text`` and ``nodes_in_label``) is shorthand
    for ``rows=[Row(label, ...)]``; neither: no row in the main table."""
    if rows is None:
        rows = () if label is None else (Row(label, text=text, nodes_in_label=nodes_in_label),)

    def declare(fn):
        name = fn.__name__
        if name in WORKLOADS:
            raise ValueError(f"workload {name!r} is declared twice")
        WORKLOADS[name] = Workload(name, fn, unit, tuple(rows), dict(excluded or {}), note)
        return fn

    return declare


def applies(name, engine_name):
    """Whether workload ``name`` is meant to run on ``engine_name`` at all."""
    return WORKLOADS[name].applies(engine_name)


def record(samples, nodes, headline, **extra):
    """A record from a :class:`benchmarks.timing.Samples` (or ``None`` for a
    workload that times nothing): its summary, ``nodes``, ``headline`` and the
    extra fields.  The worker fills in ``unit`` from the declaration."""
    rec = samples.summary() if samples is not None else dict(
        median_s=None, min_s=None, max_s=None, repeats=None, gc_s=None
    )
    rec.update(nodes=nodes, headline=headline, unit=None)
    rec.update(extra)
    return rec
