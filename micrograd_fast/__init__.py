"""micrograd_fast: a compiled-core, drop-in faster micrograd."""

import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from micrograd_fast._version import __version__

# The selected engine is bound as _selected: the attribute _engine is the
# compiled submodule (micrograd_fast._engine), never the selection.
from micrograd_fast import engine as _selected

from micrograd_fast import _engine_py, viz as _viz

# Value, COMPILED and sum are the selected engine's, bound through
# engine.PACKAGE_FORWARDS (the lab's engine switch rebinds them the same way).
#
# ``sum(values, start=0.0)``: the selected engine's ``vsum``, one n-ary
# ``'sum'`` node instead of a chain of ``+`` nodes (same number as the
# builtin ``sum`` of the same Values: the additions run left to right, on
# every Python, also where the builtin ``sum`` of plain floats compensates).
# ``grad(outputs, inputs, grad_outputs=None, *, create_graph=False)``: the
# selected engine's gradients as Values (docs/higher_order.md).
# ``linear(x, w)``: microgpt's ``linear`` as one block (docs/nn.md, "Batches").
if _TYPE_CHECKING:
    from micrograd_fast.engine import COMPILED, Value, grad, linear
    from micrograd_fast.engine import vsum as sum
else:
    _selected.forward_names(_sys.modules[__name__])

__all__ = ["Value", "COMPILED", "__version__", "draw_dot", "sum", "grad", "linear"]

# Jupyter shows a small Value as its graph.  The compiled Value defines the
# same method itself (calling micrograd_fast.viz.value_svg).
setattr(_engine_py.Value, "_repr_svg_", _viz._repr_svg_)


def draw_dot(root, format="svg", rankdir="LR", max_nodes=_viz.DEFAULT_MAX_NODES):
    """Graphviz picture of ``root``'s expression graph; see micrograd_fast.viz.

    Needs the 'viz' extra (the graphviz package) and, to render, Graphviz's
    ``dot`` program.
    """
    return _viz.draw_dot(root, format=format, rankdir=rankdir, max_nodes=max_nodes)
