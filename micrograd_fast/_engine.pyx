# cython: freethreading_compatible = False
"""The compiled core of micrograd_fast.

Every function here has a twin of the same name in the pure engine
(``_engine_py.py``), or is a compiled-only helper listed with its reason in
``tests/test_twin_names.py``; the two give bit-identical numbers.

The node arena: invariants
==========================
* **One arena per process.**  ``A.nodes[i]`` is node ``i``: its data, grad,
  op code, op parameter and children.  Children live inline (up to two) or
  in ``A.edges`` (more than two).
* **Creation order is a topological order.**  A node's children always have
  smaller indices than the node itself: they must exist before it can be
  made, and reclamation keeps relative order.  So no sort is ever needed.
* **Handles.**  A Python ``Value`` is a handle holding one index.
  ``A.handles[i]`` is a *borrowed* pointer to node ``i``'s handle, or NULL.
  There is at most one handle per node at a time (``_prev`` reuses it);
  a handle's tp_dealloc clears the slot.  Every slot from ``A.n`` to
  ``A.cap`` is NULL, so a node is made without a store to its slot:
  growth copies the slots in use into a zeroed array, and reclamation
  clears each slot it moves a handle out of and the slot of each handle
  it drops.  A handle never points at a freed or reused slot: handles
  are the roots of reclamation, and
  reclamation rewrites ``handle.idx`` when it moves a node (or sets it to 0
  when it drops a late-pinned handle that only the pin kept, see below).
* **Ownership (Python state).**  A node is alive while it is reachable from
  a live handle through child edges.  A handle is *keeping* when it carries
  Python state (a label, a custom ``_op``, a Python ``_backward``, an
  attribute dict, even an empty one, or a class of its own: an instance of
  a subclass) or keeps other handles.  When a node is made, its new handle
  takes strong references to its keeping children's handles (``_keep``, a
  tuple) and becomes keeping itself, GC-tracked, with ``_keep`` visited by
  tp_traverse.  So above a stateful node every handle is held by the one
  above it, as Python objects hold each other in the pure engine: dropping
  the top frees the handles by reference counting (or by one gc.collect()
  when closures make cycles), and the next reclamation frees their nodes.
  Fused ops (``mlp``, ``layer``) whose inner nodes have no handles give
  each output a ``_keep`` of the keeping parameters and inputs.  Plain
  graphs never build a tuple nor touch the cyclic GC.  Freeing a long
  chain of handles does not recurse deeply on the C stack: every link goes
  through a ``_keep`` tuple, whose dealloc uses CPython's trashcan (a
  trashcan on ``Value`` itself would cost every op's dealloc).
  The only references the arena holds are *late pins* (``MGF_F_PINNED``):
  state added to a handle whose node is already a child (``MGF_F_USED``)
  makes the arena take a strong reference, which the next reclamation
  releases if no live parent uses the node, and otherwise hands over to
  the nearest live handles above the node, into their ``_keep``
  (``mgf_hand_over_pins``; a holder that a live parent uses is passed up
  in turn): after a reclamation no used node is pinned, and every cycle
  is one the collector sees.  A pinned handle that nothing else
  references is not a root.  A reclamation that handed pins over and left
  the arena half full collects and compacts again (``_reclaim``).
* **Re-entrancy.**  From the start of a reclamation's mark to the end of
  its compaction no Python code runs: no Python allocation, no decref that
  can free anything.  Released pins go into a C array and are decref'd once
  the arena is consistent; whatever Python code then runs (finalizers that
  build Values) finds a consistent arena, and ``_make_room`` checks the
  room again afterwards.  A handle's tp_dealloc (``mgf_dealloc``) leaves
  its arena slot before Cython's dealloc runs weakref callbacks.
* **Reclamation (mark-compact).**  When the arena is full, a reverse sweep
  marks every node reachable from a handle, then a forward pass slides the
  live nodes down (order kept), remaps child indices and ``handle.idx``,
  and the capacity is set to the smallest power of two (at least
  ``MIN_CAP``) holding four times the recent peak of what had to be live
  (twice past ``ROOMY_CAP`` nodes: what is live is slid down, so rarer
  reclamations move less per node made), a peak that loses a quarter at
  each reclamation; it is resized only when too small or more than four
  times too large, so a training loop keeps one capacity (an explicit
  ``compact()`` fits it to what is live now).
  No reclamation happens while a backward pass runs (``_busy``): the
  arena grows instead, because Python ``_backward`` functions may allocate.
* **Backward order.**  ``backward()`` marks the root in a byte map and
  sweeps indices downward, visiting only marked nodes (unmarked stretches
  skipped eight at a time); each visited node marks its children and
  applies its local rule.  That is reverse creation order over the reachable nodes, the order
  the pure engine uses.  A node whose handle has a Python ``_backward``
  hands control back to Python for that node, then the sweep resumes.
  The sweep clears each byte it visits, so a pass that runs to the end
  leaves the outermost pass's map zero for the next one; a pass stopped by
  a raising rule marks the map dirty (``_seen_dirty``) and the next pass
  zeroes it first.
* **Ordering of a new node.**  Anything that can run Python code (allocating
  a handle, converting a number, computing a value that may raise) happens
  before room is reserved; from ``_reserve`` to the node's registration no
  Python code runs, so indices read in between stay valid.  The new
  handle's ``_keep`` tuple is made after the registration.
* **``__init__`` called again** changes the handle's node where it stands
  (``mgf_rewire``: every parent sees the new node, as upstream's hold the
  very object) when every new child comes before it; the out-of-line lists
  of later nodes shift to keep node order.  Otherwise the handle gets a
  fresh node (room is reserved while its old node is still registered: it
  may be among the new children), which a node that has ever been a child
  (``MGF_F_USED`` or ``MGF_F_WASUSED``) may not: that is a ValueError.
* **Local derivatives.**  ``Value(data, children, local_grads)`` makes a
  node of op MGF_LOCAL: its children are stored like any node's, its local
  derivatives (one per child, in order) in ``A.lg``, a double array whose
  lists are in node order; the node's ``param`` is its list's offset.
  Reclamation slides these lists down with their nodes, and shrinks an
  oversized array as it does the edge array.  Such a node holds
  no Python state: its backward runs in C like a built-in op's.
  ``_local_grads`` gives every node's local derivatives (mgf_local_grads).
* **Blocks (a layer over a batch, MGF_LAYER).**  A head node, then its
  outputs, made in one piece of C (``_block.pxi``, ``mgf_layer_build``).
  The head's children are the parameters and inputs; its ``A.lg`` list
  (the local-derivative array, moved by reclamation like MGF_LOCAL's)
  holds the block's sizes and one gradient slot per output, zero between
  passes.  Each output's only child is the head, so the head lives while
  any output does, and comes after them in a backward pass: reached
  outputs store their slot, and the head then applies the whole block's
  rule with the dense kernels of ``csrc/mgf_block.h``, each sum in the
  order written at the top of that header (the row-by-row graph's).  The
  heads of one batch call are chained: a head applies the rules of the
  block below's outputs itself and marks that head instead of them.
  Shown to Python, an output is a fused neuron (``mgf_layer_kids``).
  The kernels pick their vector width once, at run time.
* **An extensible class.**  ``Value`` is a static extension type; module
  set-up clears Py_TPFLAGS_IMMUTABLETYPE (Python 3.10 and later), so class
  attributes can be set, replaced and deleted as on a Python class, and
  type.__setattr__ updates the operator slots as it does for Python
  classes (a replaced ``__add__`` is used by ``a + b``; restoring the
  original wrapper restores the compiled slot).  Calling the class runs a
  replaced ``__new__`` or ``__init__`` (``mgf_value_call``); restoring the
  original ``__new__`` restores the class's own tp_new.  While ``__init__``
  is replaced, every operator's result runs it too (``_by_init``), as
  upstream's ``Value(data, children, op)`` does, and a number operand is
  made with ``Value(number)`` first.  The composite
  operators (unary ``-``, ``a - b``, ``a / b``, the reflected forms) build
  their nodes directly only while ``+``, ``*``, ``**`` and unary ``-`` are
  the core's own slots and ``__init__`` its own; otherwise they are made from the class's
  operators, as upstream writes them, so a replacement runs.
* **Short paths.**  ``a + b`` and ``a * b`` on plain Values (or a plain
  Value and a float or int), ``Value(data)`` and ``Value(data, children,
  local_grads)`` with plain children are made in C (``csrc/mgf_handle.h``)
  when a handle waits on the freelist and the arena has room: the same
  node the general path makes, with no Python code run and nothing
  allocated in between; any other case takes the general path.
* **A network's parameters between calls.**  An ``MLPPlan`` remembers its
  parameters' node indices and whether any of them is keeping, and reuses
  them on the next call (after that call's ``_reserve``) while
  ``mgf_handles_epoch`` has not moved.  That count moves at every event
  that can give a live handle another node or make it keeping: a
  reclamation, ``__init__`` called again on a handle, a handle getting
  Python state (``mgf_track``, which every such handle passes).  Debug
  builds check the reused indices against the arena's handle slots.
* **Files.**  One extension module, split by concern: this file (the
  invariants, every extern, module set-up) includes ``_arena.pxi`` (growth,
  reclamation, invariant checks), ``_numbers.pxi`` (number conversion),
  ``_value.pxi`` (making nodes, ownership, backward, the ``Value`` class),
  ``_fused.pxi`` (n-ary sum, fused neurons and layers, MLP plans),
  ``_block.pxi`` (blocks: batch calls, ``linear``) and
  ``_kernels.pxi`` (optimizer updates, gather/scatter).  The plain C of
  the arena is ``csrc/mgf_core.h``, the blocks' kernels
  ``csrc/mgf_block.h`` (with its template ``mgf_block_kernel.h``); the CPython side of a handle (attribute
  dict, GC hooks, dealloc, late pins, the open class, the short paths) is
  ``csrc/mgf_handle.h``; ``src/`` declares both for Cython.
* **Threads.**  Every entry point runs with the GIL held; the GIL is never
  released while the arena is touched, so concurrent threads are safe.
"""

cimport cython
import gc as _gc
import operator
import sys
from cpython.object cimport Py_TYPE, PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

from mgf_core cimport *
from mgf_codes cimport *
from mgf_handle cimport *
from mgf_block cimport *

cdef extern from "Python.h":
    double PyFloat_AsDouble(object) except? -1.0
    int PyIndex_Check(object)
    PyObject **PySequence_Fast_ITEMS(object)
    void PyObject_GC_UnTrack(void *o)
    Py_ssize_t Py_REFCNT(void *o)
    void _decref_raw "Py_DECREF"(void *o)

cdef extern from "math.h" nogil:
    double nextafter(double, double)
    const double INFINITY
    double pow(double, double)
    double sqrt(double)


from micrograd_fast._vocab import ARENA_API as _ARENA_API, ENGINE_API as _ENGINE_API

__all__ = list(_ENGINE_API + _ARENA_API)

COMPILED = True

# the core, one file per concern (one extension module)
include "_arena.pxi"
include "_numbers.pxi"
include "_value.pxi"
include "_fused.pxi"
include "_block.pxi"
include "_kernels.pxi"
include "_grad.pxi"
include "_replay.pxi"


# module set-up: the lazily created attribute dict, and the sentinel node 0
# (a handle whose idx is 0 was never initialized)
cdef int _setup_value_type() except -1:
    cdef Value probe = Value.__new__(Value)
    mgf_install_dict(<PyTypeObject *>Value, <char *>&probe._dict - <char *><PyObject *>probe)
    # the C side reads handles through a mirror of Value's struct: marks in
    # every field let it check the layout
    marks = (object(), object(), object(), object())
    probe.idx = 0x5EED
    probe._stateful = True
    probe._bw, probe._label, probe._opname, probe._keep = marks
    mgf_install_handle(<PyTypeObject *>Value, &A, probe, marks,
                       <char *>&probe._dict - <char *><PyObject *>probe)
    probe.idx = 0
    mgf_slot_wrappers(<PyTypeObject *>Value, (
        "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
        "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__"), <PyTypeObject *>float)
    mgf_note_own_arith(<PyTypeObject *>Value)
    return mgf_open_type(<PyTypeObject *>Value)


_setup_value_type()
if mgf_resize_nodes(&A, MIN_CAP) < 0:
    raise MemoryError("micrograd_fast: cannot allocate the node arena")
mgf_push(&A, MGF_LEAF, float("nan"))
