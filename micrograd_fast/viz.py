"""Pictures of expression graphs, for either engine.

``draw_dot(root)`` returns a ``graphviz.Digraph`` of everything ``root`` was
computed from: one record per ``Value`` showing its label, data and grad, and
a small oval per operation feeding the value it produced.  Building the graph
needs only the ``graphviz`` Python package; drawing it (``.render``,
``.pipe``, display in Jupyter) needs Graphviz's ``dot`` program as well.

``value_svg(v)`` is the Jupyter hook: the SVG text of ``draw_dot(v)``, or None
when it cannot be drawn (no graphviz package, no ``dot``, graph too big), in
which case Jupyter falls back to the plain ``repr``.

Only the attributes micrograd's ``Value`` has are used (``data``, ``grad``,
``_prev``, ``_op`` and the optional ``label``), so graphs of upstream
micrograd values draw too.
"""

import contextlib

__all__ = ["draw_dot", "value_svg", "collect_graph", "backprop_html", "DEFAULT_MAX_NODES"]

#: draw_dot refuses graphs with more Values than this (override: max_nodes=)
DEFAULT_MAX_NODES = 2000
#: Jupyter's SVG display stays quick: bigger graphs show as plain text
SVG_REPR_MAX_NODES = 500

VIZ_EXTRA_HINT = 'pip install "micrograd-fast[viz]"'


def require(module_name, purpose):
    """Import an optional dependency, or explain which extra provides it."""
    import importlib

    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the '{module_name}' package, which is part of "
            f"micrograd_fast's optional 'viz' extra: {VIZ_EXTRA_HINT}"
        ) from exc


def collect_graph(root, max_nodes=DEFAULT_MAX_NODES):
    """Return (nodes, edges) of the graph below ``root``, without recursion.

    ``nodes`` lists every Value reachable through ``_prev`` (``root`` first);
    ``edges`` holds (child, parent) pairs.  Raises ValueError as soon as more
    than ``max_nodes`` Values turn up, so a huge graph costs little.
    """
    if max_nodes is not None and max_nodes < 1:
        raise ValueError("max_nodes must be at least 1")
    nodes = [root]
    edges = []
    seen = {id(root)}
    stack = [root]
    while stack:
        v = stack.pop()
        for child in v._prev:
            edges.append((child, v))
            if id(child) not in seen:
                seen.add(id(child))
                nodes.append(child)
                if max_nodes is not None and len(nodes) > max_nodes:
                    raise ValueError(
                        f"graph too big to draw: more than max_nodes={max_nodes} "
                        f"Values are reachable from this one. Draw a smaller "
                        f"expression, or pass a larger max_nodes (Graphviz gets "
                        f"slow past a few thousand nodes)."
                    )
                stack.append(child)
    return nodes, edges


_RECORD_SPECIALS = str.maketrans(
    {c: "\\" + c for c in '{}|<>"\\'} | {"\n": "\\n", "\r": ""}
)


def _record_text(text):
    return str(text).translate(_RECORD_SPECIALS)


def _node_label(v):
    fields = [f"data {v.data:.4f}", f"grad {v.grad:.4f}"]
    label = getattr(v, "label", "")
    if label:
        fields.insert(0, _record_text(label))
    return "{ " + " | ".join(fields) + " }"


_graph_class = None


def _digraph_class():
    """A graphviz.Digraph whose drawing methods explain a missing ``dot``."""
    global _graph_class
    if _graph_class is not None:
        return _graph_class
    graphviz = require("graphviz", "draw_dot")

    class DotNotFound(graphviz.ExecutableNotFound):
        """Graphviz's ``dot`` program is missing (a RuntimeError)."""

        def __init__(self, detail):
            RuntimeError.__init__(
                self,
                "Graphviz's 'dot' program is needed to draw the graph but was not "
                "found. The graphviz Python package only writes the graph "
                "description; drawing it needs Graphviz itself. Install it "
                "(Debian/Ubuntu: apt-get install graphviz, macOS: brew install "
                "graphviz, conda: conda install graphviz, others: "
                "https://graphviz.org/download/) and make sure 'dot' is on your "
                f"PATH. ({detail})",
            )

    @contextlib.contextmanager
    def explain_missing_dot():
        try:
            yield
        except DotNotFound:
            raise
        except graphviz.ExecutableNotFound as exc:
            raise DotNotFound(str(exc)) from exc

    class ExpressionGraph(graphviz.Digraph):
        """The Digraph draw_dot returns (a plain graphviz.Digraph otherwise)."""

        def pipe(self, *args, **kwargs):
            with explain_missing_dot():
                return super().pipe(*args, **kwargs)

        def render(self, *args, **kwargs):
            with explain_missing_dot():
                return super().render(*args, **kwargs)

    DotNotFound.__qualname__ = "DotNotFound"
    ExpressionGraph.__qualname__ = "ExpressionGraph"
    ExpressionGraph.DotNotFound = DotNotFound
    _graph_class = ExpressionGraph
    return ExpressionGraph


def draw_dot(root, format="svg", rankdir="LR", max_nodes=DEFAULT_MAX_NODES):
    """Build a ``graphviz.Digraph`` of the expression graph ending in ``root``.

    Each Value is a record ``{ label | data 2.0000 | grad 0.0000 }`` (the label
    field only when the Value has a label); each operation (the Value's
    ``_op``) is a small node with an edge into the Value it produced, and every
    input has an edge into that operation.  ``rankdir`` is "LR" (left to
    right) or "TB" (top to bottom); ``format`` is the output format used by
    ``render``/``pipe`` ("svg", "png", "pdf", ...).

    Graphs with more than ``max_nodes`` Values are refused with a ValueError
    (``max_nodes=None`` lifts the limit).  Rendering without Graphviz's ``dot``
    program raises a RuntimeError (graphviz.ExecutableNotFound) saying how to
    install it.
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be 'LR', 'TB', 'RL' or 'BT', not {rankdir!r}")
    nodes, edges = collect_graph(root, max_nodes)
    Graph = _digraph_class()
    dot = Graph(format=format, graph_attr={"rankdir": rankdir})
    for v in nodes:
        uid = str(id(v))
        dot.node(uid, label=_node_label(v), shape="record")
        op = v._op
        if op:
            dot.node(uid + op, label=str(op), shape="ellipse", fontsize="10",
                     width="0.3", height="0.3", margin="0.02")
            dot.edge(uid + op, uid)
    for child, parent in edges:
        dot.edge(str(id(child)), str(id(parent)) + parent._op)
    return dot


def value_svg(v, max_nodes=SVG_REPR_MAX_NODES):
    """SVG text of ``draw_dot(v)``, or None if it cannot be drawn here.

    None means: the graphviz package or the ``dot`` program is missing, or the
    graph has more than ``max_nodes`` Values.  This is what ``Value._repr_svg_``
    returns, so Jupyter shows a small Value as its graph and anything else as
    text.
    """
    try:
        dot = draw_dot(v, format="svg", max_nodes=max_nodes)
    except (ImportError, ValueError):
        return None
    try:
        return dot.pipe(format="svg", encoding="utf-8")
    except RuntimeError:  # dot missing (ExecutableNotFound) or failing
        return None


def render_graph(root, path, rankdir="LR", max_nodes=DEFAULT_MAX_NODES):
    """Draw ``root``'s graph into the file ``path`` (format from its suffix).

    Writes only that file (no Graphviz source next to it).  Returns the path.
    """
    import os

    suffix = os.path.splitext(str(path))[1].lower().lstrip(".")
    fmt = suffix or "svg"
    dot = draw_dot(root, format=fmt, rankdir=rankdir, max_nodes=max_nodes)
    data = dot.pipe(format=fmt)
    with open(path, "wb") as f:
        f.write(data)
    return path


def backprop_html(root, path=None, *, title=None, max_nodes=300):
    """A page that steps through backpropagation on ``root``'s graph.

    One self-contained HTML file (the graph as inline SVG drawn by Graphviz,
    the script inline, nothing fetched): the forward pass and then the
    backward pass, one node per step, in the engine's own order, with the
    current node highlighted, its local derivative and the chain-rule
    product written out (``dL/da = dL/de * de/da = -2.0 * -3.0 = 6.0``) and
    each grad filling in as it is computed.  Buttons, the arrow keys and a
    slider move through it.

    The backward pass is run by the engine, one node's ``_backward()`` at a
    time, from grads set to zero (the root's to 1): the last step shows what
    ``backward()`` gives, and the graph's grads are left so.  Graphs of more
    than ``max_nodes`` Values are refused with a ValueError (the page is for
    reading: a Neuron, the lecture's expressions).  Returns a page object
    (``.html``, ``.save(path)``, shown inline by Jupyter); writes it to
    ``path`` too when one is given.  Needs the graphviz package and
    Graphviz's ``dot``.
    """
    from micrograd_fast.lab.stepthrough import backprop_page

    return backprop_page(root, path, title=title, max_nodes=max_nodes)


def _repr_svg_(self):
    """Jupyter display hook attached to the pure-Python Value."""
    return value_svg(self)
