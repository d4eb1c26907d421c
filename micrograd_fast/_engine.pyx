# cython: freethreading_compatible = False
"""The compiled core of micrograd_fast.

Every rule here mirrors a function of the pure engine (``_engine_py.py``),
named in a comment; the two give bit-identical numbers.

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
  a handle's tp_dealloc clears the slot.  A handle never points at a
  freed or reused slot: handles are the roots of reclamation, and
  reclamation rewrites ``handle.idx`` when it moves a node (or sets it to 0
  when it drops a late-pinned handle that only the pin kept, see below).
* **Ownership (Python state).**  A node is alive while it is reachable from
  a live handle through child edges.  A handle is *keeping* when it carries
  Python state (a label, a custom ``_op``, a Python ``_backward``, instance
  attributes) or keeps other handles.  When a node is made, its new handle
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
  makes the arena take a strong reference, released by the first
  reclamation in which no live parent uses the node; a pinned handle that
  nothing else references is not a root.  (A late pin in a cycle is freed by
  one reclamation, one gc.collect() and one more reclamation.)
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
  and the capacity is reset to twice the live size (at least ``MIN_CAP``).
  No reclamation happens while a backward pass runs (``_busy``): the
  arena grows instead, because Python ``_backward`` functions may allocate.
* **Backward order.**  ``backward()`` marks the root in a byte map and
  sweeps indices downward, visiting only marked nodes (unmarked stretches
  skipped eight at a time); each visited node marks its children and
  applies its local rule.  That is reverse creation order over the reachable nodes, the order
  the pure engine uses.  A node whose handle has a Python ``_backward``
  hands control back to Python for that node, then the sweep resumes.
* **Ordering of a new node.**  Anything that can run Python code (allocating
  a handle, converting a number, computing a value that may raise) happens
  before room is reserved; from ``_reserve`` to the node's registration no
  Python code runs, so indices read in between stay valid.  The new
  handle's ``_keep`` tuple is made after the registration.  ``__init__``
  called again reserves room while the handle's old node is still
  registered (it may be among the new children), then detaches it.
* **Local derivatives.**  ``Value(data, children, local_grads)`` makes a
  node of op MGF_LOCAL: its children are stored like any node's, its local
  derivatives (one per child, in order) in ``A.lg``, a double array whose
  lists are in node order; the node's ``param`` is its list's offset.
  Reclamation slides these lists down with their nodes.  Such a node holds
  no Python state: its backward runs in C like a built-in op's.
  ``_local_grads`` gives every node's local derivatives (mgf_local_grads).
* **An extensible class.**  ``Value`` is a static extension type; module
  set-up clears Py_TPFLAGS_IMMUTABLETYPE (Python 3.10 and later), so class
  attributes can be set, replaced and deleted as on a Python class, and
  type.__setattr__ updates the operator slots as it does for Python
  classes (a replaced ``__add__`` is used by ``a + b``; restoring the
  original wrapper restores the compiled slot).  Python 3.9 refuses to set
  attributes on any static type: there the class stays closed.
* **Threads.**  Every entry point runs with the GIL held; the GIL is never
  released while the arena is touched, so concurrent threads are safe.
"""

cimport cython
import operator
import sys
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

from mgf_core cimport *

cdef extern from "Python.h":
    double PyFloat_AsDouble(object) except? -1.0
    int PyIndex_Check(object)

cdef extern from *:
    """
    /* Instance attributes of Value live in a dict that is created only when
     * the first attribute is set (a per-handle dict would cost more than the
     * whole op).  The slot is a plain PyObject* field reached through
     * tp_dictoffset; these wrappers add it to the GC's traverse and clear. */
    static Py_ssize_t mgf_dict_offset;
    static traverseproc mgf_base_traverse;
    static inquiry mgf_base_clear;
    #define MGF_DICTPTR(o) ((PyObject **)((char *)(o) + mgf_dict_offset))

    static int mgf_traverse(PyObject *o, visitproc visit, void *arg) {
        Py_VISIT(*MGF_DICTPTR(o));
        return mgf_base_traverse ? mgf_base_traverse(o, visit, arg) : 0;
    }
    static int mgf_clear(PyObject *o) {
        Py_CLEAR(*MGF_DICTPTR(o));
        return mgf_base_clear ? mgf_base_clear(o) : 0;
    }
    /* A handle is tracked by the cyclic GC only while it carries Python
     * state (see _track): these hooks start tracking it when it gets an
     * attribute dict. */
    static inline void mgf_track(PyObject *o) {
        if (!PyObject_GC_IsTracked(o)) PyObject_GC_Track(o);
    }
    static void mgf_state_added(PyObject *o);
    static PyObject *mgf_get_dict(PyObject *o, void *ctx) {
        PyObject *d = PyObject_GenericGetDict(o, ctx);
        if (d) mgf_state_added(o);
        return d;
    }
    static int mgf_set_dict(PyObject *o, PyObject *v, void *ctx) {
        int r = PyObject_GenericSetDict(o, v, ctx);
        if (r == 0) mgf_state_added(o);
        return r;
    }
    static int mgf_setattro(PyObject *o, PyObject *name, PyObject *v) {
        int r = PyObject_GenericSetAttr(o, name, v);
        if (r == 0 && *MGF_DICTPTR(o) != NULL) mgf_state_added(o);
        return r;
    }
    static PyGetSetDef mgf_dict_getset = {
        "__dict__", mgf_get_dict, mgf_set_dict, NULL, NULL};

    static int mgf_install_dict(PyTypeObject *t, Py_ssize_t offset) {
        mgf_dict_offset = offset;
        t->tp_dictoffset = offset;
        mgf_base_traverse = t->tp_traverse;
        mgf_base_clear = t->tp_clear;
        t->tp_traverse = mgf_traverse;
        t->tp_clear = mgf_clear;
        t->tp_setattro = mgf_setattro;
        PyObject *d = PyDescr_NewGetSet(t, &mgf_dict_getset);
        if (!d) return -1;
        int r = PyDict_SetItemString(t->tp_dict, "__dict__", d);
        Py_DECREF(d);
        PyType_Modified(t);
        return r;
    }
    /* 1 if the handle has user attributes. */
    static inline int mgf_has_attrs(PyObject *o) {
        PyObject *d = *MGF_DICTPTR(o);
        return d != NULL && PyDict_GET_SIZE(d) > 0;
    }
    static inline void mgf_drop_dict(PyObject *o) { Py_CLEAR(*MGF_DICTPTR(o)); }

    /* Make a static type extensible from Python: PyType_Ready marks every
     * static type immutable (3.10+); without the flag, type.__setattr__
     * stores into the type's dict, bumps its version and updates the
     * slots (update_slot) exactly as for a class statement's type.  Python
     * 3.9 has no such flag and refuses attributes on any static type: the
     * type stays closed there. */
    static int mgf_open_type(PyTypeObject *t) {
    #ifdef Py_TPFLAGS_IMMUTABLETYPE
        t->tp_flags &= ~Py_TPFLAGS_IMMUTABLETYPE;
        PyType_Modified(t);
    #endif
        return 0;
    }

    /* Cython lists binary operators such as __add__ as plain methods of the
     * type.  Assigning a plain method to a class makes its slot the generic
     * one (a dictionary lookup per operation), so restoring a replaced
     * __add__ to the saved original would leave `a + b` slower.  This
     * replaces each named entry by a slot wrapper around the type's own
     * number slot, made from the same slot table entry that `model` (a
     * built-in type such as float) uses for that name: update_slot then
     * recognises a restored wrapper and puts the compiled slot back.
     * Calling the wrapper runs the same slot function, so behaviour is
     * unchanged. */
    static int mgf_slot_wrappers(PyTypeObject *t, PyObject *names, PyTypeObject *model) {
        Py_ssize_t i, lo = offsetof(PyHeapTypeObject, as_number),
                      hi = lo + (Py_ssize_t)sizeof(PyNumberMethods);
        if (!t->tp_as_number) return 0;
        for (i = 0; i < PyTuple_GET_SIZE(names); i++) {
            PyObject *name = PyTuple_GET_ITEM(names, i);
            PyObject *cur = PyDict_GetItemWithError(t->tp_dict, name);
            if (!cur) { if (PyErr_Occurred()) return -1; continue; }
            if (Py_TYPE(cur) != &PyMethodDescr_Type) continue;
            /* the model's descriptor, looked up as an attribute: since 3.12
             * the dict of a core static type such as float is kept by the
             * interpreter, and its tp_dict is NULL */
            PyObject *w = PyObject_GetAttr((PyObject *)model, name);
            if (!w) {
                if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
                PyErr_Clear();
                continue;
            }
            int is_wrapper = Py_TYPE(w) == &PyWrapperDescr_Type;
            /* d_base points into CPython's static slot table */
            struct wrapperbase *base = is_wrapper ? ((PyWrapperDescrObject *)w)->d_base : NULL;
            Py_DECREF(w);
            if (!is_wrapper) continue;
            Py_ssize_t off = (Py_ssize_t)base->offset;
            if (off < lo || off + (Py_ssize_t)sizeof(void *) > hi) continue;
            void *fn = *(void **)((char *)t->tp_as_number + (off - lo));
            if (!fn) continue;
            PyObject *d = PyDescr_NewWrapper(t, base, fn);
            if (!d) return -1;
            int r = PyDict_SetItem(t->tp_dict, name, d);
            Py_DECREF(d);
            if (r < 0) return -1;
        }
        PyType_Modified(t);
        return 0;
    }
    /* Handle deallocation and late pins work on the raw object (it may be
     * dying: no new reference may be taken to it), so they are written in
     * C: the arena and the offset of Value.idx are set at module init. */
    static mgf_arena *mgf_A;
    static Py_ssize_t mgf_idx_offset;
    static destructor mgf_base_dealloc;
    #define MGF_IDX(o) (*(int64_t *)((char *)(o) + mgf_idx_offset))

    /* Value's tp_dealloc: the handle leaves its arena slot first, so that no
     * weakref callback or finalizer run by the dealloc can reach it through
     * the arena (e.g. through a parent's _prev), then Cython's dealloc. */
    static void mgf_dealloc(PyObject *o) {
        int64_t i = MGF_IDX(o);
        if (i > 0 && i < mgf_A->n && mgf_A->handles[i] == (void *)o) {
            mgf_A->handles[i] = NULL;
            mgf_A->nodes[i].flags &= ~(MGF_F_PYBW | MGF_F_PINNED);
        }
        mgf_base_dealloc(o);
    }
    /* Python state was just added to handle o.  If its node is already a
     * child (parents made before it was keeping do not keep it), the arena
     * takes a late pin: a strong reference, released by a reclamation in
     * which no live parent uses the node. */
    static void mgf_state_added(PyObject *o) {
        int64_t i;
        mgf_track(o);
        i = MGF_IDX(o);
        if (i > 0 && i < mgf_A->n && mgf_A->handles[i] == (void *)o) {
            mgf_node *n = &mgf_A->nodes[i];
            if ((n->flags & MGF_F_USED) && !(n->flags & MGF_F_PINNED)) {
                Py_INCREF(o);
                n->flags |= MGF_F_PINNED;
            }
        }
    }
    static int mgf_install_dealloc(PyTypeObject *t, mgf_arena *A, Py_ssize_t idx_offset) {
        mgf_A = A;
        mgf_idx_offset = idx_offset;
        mgf_base_dealloc = t->tp_dealloc;
        t->tp_dealloc = mgf_dealloc;
        PyType_Modified(t);
        return 0;
    }
    """
    void mgf_track(object o)
    void PyObject_GC_UnTrack(void *o)
    int mgf_install_dict(PyTypeObject *t, Py_ssize_t offset) except -1
    bint mgf_has_attrs(object o)
    void mgf_drop_dict(object o)
    int mgf_open_type(PyTypeObject *t) except -1
    int mgf_slot_wrappers(PyTypeObject *t, object names, PyTypeObject *model) except -1
    void mgf_state_added(object o)
    int mgf_install_dealloc(PyTypeObject *t, mgf_arena *A, Py_ssize_t idx_offset) except -1
    Py_ssize_t Py_REFCNT(void *o)
    void _decref_raw "Py_DECREF"(void *o)

__all__ = [
    "Value", "COMPILED", "vsum", "layer", "mlp", "mlp_plan", "MLPPlan", "sgd_update", "adam_update",
    "gather", "scatter", "zero_grad", "compact", "arena_stats",
]

COMPILED = True

# the arena and its bookkeeping ----------------------------------------------
cdef mgf_arena A
cdef int64_t MIN_CAP = 1 << 16
cdef int64_t MIN_ECAP = 1 << 16
cdef int _busy = 0
cdef int64_t _compactions = 0

_OP_NAMES = {
    MGF_LEAF: "", MGF_ADD: "+", MGF_MUL: "*", MGF_POWV: "**", MGF_RELU: "ReLU",
    MGF_TANH: "tanh", MGF_EXP: "exp", MGF_LOG: "log", MGF_SIGMOID: "sigmoid",
    MGF_SUM: "sum", MGF_CUSTOM: "", MGF_LOCAL: "",
}
_ACT_NAMES = ("linear", "relu", "tanh", "sigmoid")

# Value._label holds this when the label was set to None (None in _label
# means the default label, '').
cdef object _NO_LABEL = object()


cdef int _grow(int64_t more) except -1:
    cdef int64_t cap = A.cap * 2
    if cap < MIN_CAP:
        cap = MIN_CAP
    if cap < A.n + more:
        cap = A.n + more
    if cap > MGF_MAX_NODES:
        cap = MGF_MAX_NODES
    if A.n + more > cap or mgf_resize_nodes(&A, cap) < 0:
        raise MemoryError(
            f"micrograd_fast: cannot grow the node arena to {A.n + more} nodes")
    return 0


cdef inline int _reserve(int64_t nodes, int64_t edges) except -1:
    """Room for `nodes` more nodes and `edges` more edges (see the ordering
    invariant: no Python code may run between this and the registration)."""
    if A.n + nodes <= A.cap and A.ne + edges <= A.ecap:
        return 0
    return _make_room(nodes, edges)


cdef int _make_room(int64_t nodes, int64_t edges) except -1:
    while A.n + nodes > A.cap:
        if _busy == 0 and A.n > 0:
            # releasing late pins at the end of _compact may run Python code
            # (finalizers) that makes nodes: so the loop checks the room again
            _note_cycle()
            _compact()
            _fit_capacity(nodes)
        else:
            _grow(nodes)
    if A.ne + edges > A.ecap and mgf_reserve_edges(&A, edges) < 0:
        raise MemoryError("micrograd_fast: cannot grow the edge array")
    return 0


cdef int _fit_capacity(int64_t more) except -1:
    """After a compaction: capacity = twice what is live, at least MIN_CAP."""
    cdef int64_t target = 2 * (A.n + more)
    if target < MIN_CAP:
        target = MIN_CAP
    if target > MGF_MAX_NODES:
        target = MGF_MAX_NODES
    if A.cap < target or A.cap > 2 * target:
        if mgf_resize_nodes(&A, target) < 0:
            if A.cap < A.n + more:
                raise MemoryError("micrograd_fast: cannot grow the node arena")
    _fit_edges()
    return 0


# Nodes and edges made since the last reclamation (see _fit_edges).
cdef int64_t _base_n = 0, _base_ne = 0, _cycle_n = 0, _cycle_ne = 0


cdef inline void _note_cycle() noexcept:
    """Just before a reclamation: how many nodes and edges the cycle that
    ends here made."""
    global _cycle_n, _cycle_ne
    _cycle_n = A.n - _base_n
    _cycle_ne = A.ne - _base_ne


cdef void _fit_edges() noexcept:
    """After a compaction: shrink an oversized edge array, so that one huge
    n-ary node does not hold its memory for ever.

    The size wanted is what is live plus what the next cycle is expected to
    add: the free node slots times the edges per node of the cycle that
    just ended (at least twice what is live, at least MIN_ECAP).  The array
    shrinks to that only when it is more than twice as large, so a steady
    workload keeps its array and never reallocates it.  Growing is left to
    mgf_reserve_edges; a failed shrink keeps the larger array."""
    global _base_n, _base_ne
    cdef int64_t target = 2 * A.ne
    cdef double need = A.ne
    if _cycle_n > 0 and _cycle_ne > 0:
        need += <double>_cycle_ne / <double>_cycle_n * <double>(A.cap - A.n)
    if need > target:
        target = <int64_t>need if need < 4e18 else A.ecap
    if target < MIN_ECAP:
        target = MIN_ECAP
    if A.ecap > 2 * target:
        mgf_resize_edges(&A, target)
    _base_n = A.n
    _base_ne = A.ne


cdef int _compact() except -1:
    """Mark-compact: keep what handles reach, slide it down, remap indices.

    No Python code runs from the mark to the end of the compaction (see the
    re-entrancy invariant): the late pins it drops are collected in a C
    array and released only once the arena is consistent again."""
    global _compactions
    cdef int64_t n = A.n, i, j, e, t, le = 0, lo, nrel = 0
    cdef uint32_t m
    cdef mgf_node *o
    cdef int32_t *ch
    cdef void *h
    cdef uint8_t *keep = <uint8_t *>calloc(n if n > 0 else 1, 1)
    cdef int32_t *newidx = <int32_t *>malloc((n if n > 0 else 1) * sizeof(int32_t))
    cdef void **released = <void **>malloc((n if n > 0 else 1) * sizeof(void *))
    if keep == NULL or newidx == NULL or released == NULL:
        free(keep)
        free(newidx)
        free(released)
        raise MemoryError("micrograd_fast: no memory to reclaim the node arena")
    # mark: bit 0 = alive, bit 1 = used by a live parent.  Handles are roots,
    # except a late-pinned one that only the pin references.
    keep[0] = 1  # the sentinel
    for i in range(n - 1, -1, -1):
        h = A.handles[i]
        if h != NULL and not ((A.nodes[i].flags & MGF_F_PINNED) and Py_REFCNT(h) == 1):
            keep[i] |= 1
        if keep[i]:
            o = &A.nodes[i]
            ch = mgf_children(&A, o)
            for t in range(o.n):
                keep[ch[t]] |= 3
    j = 0
    e = 0
    for i in range(n):
        h = A.handles[i]
        if not keep[i]:
            if h != NULL:
                # a late-pinned handle nothing else uses: it leaves the arena
                (<Value>h).idx = 0
                released[nrel] = h
                nrel += 1
            continue
        newidx[i] = <int32_t>j
        o = &A.nodes[i]
        m = o.n
        if m <= 2:
            if m >= 1:
                o.k.c[0] = newidx[o.k.c[0]]
            if m == 2:
                o.k.c[1] = newidx[o.k.c[1]]
        else:
            # edges move down in node order, so this never overwrites
            # an entry that is still to be read
            for t in range(m):
                A.edges[e + t] = newidx[A.edges[o.k.off + t]]
            o.k.off = e
            e += m
        if o.op == MGF_LOCAL:
            # local derivatives: in node order too, so they only move down
            lo = MGF_LG_OFF(o)
            if lo != le:
                for t in range(m):
                    A.lg[le + t] = A.lg[lo + t]
            o.param = <double>le
            le += m
        if not (keep[i] & 2):
            o.flags &= ~MGF_F_USED  # no live parent: state added later needs no pin
            if o.flags & MGF_F_PINNED:
                o.flags &= ~MGF_F_PINNED
                released[nrel] = h
                nrel += 1
        if j != i:
            A.nodes[j] = o[0]
            A.handles[j] = h
        if h != NULL:
            (<Value>h).idx = j
        j += 1
    A.n = j
    A.ne = e
    A.nl = le
    free(keep)
    free(newidx)
    _compactions += 1
    MGF_CHECK_ARENA(&A, "after reclamation")
    # the arena is consistent: dropping the pins may now run Python code
    for i in range(nrel):
        _decref_raw(released[i])
    free(released)
    return 0


def compact():
    """Reclaim every node no live Value can reach, now.  Returns arena_stats().

    This happens by itself whenever the arena fills up; calling it is never
    needed, but it makes memory measurements exact."""
    if _busy:
        raise RuntimeError("cannot compact the arena during backward()")
    _note_cycle()
    _compact()
    _fit_capacity(0)
    return arena_stats()


_CHECK_NAMES = {
    MGF_CHECK_SIZES: "sizes exceed capacities", MGF_CHECK_SENTINEL: "node 0 is not the sentinel",
    MGF_CHECK_OP: "unknown op code", MGF_CHECK_EDGES: "children list outside or out of order",
    MGF_CHECK_CHILD: "a child index not below its parent's", MGF_CHECK_PIN: "pin without a handle",
    MGF_CHECK_LGRADS: "local derivatives outside or out of order",
}


def _check_invariants():
    """Check the arena's invariants in O(nodes + edges); True, or AssertionError.

    The structural checks are mgf_check (csrc/mgf_core.h); here in addition
    every handle must point back at its own slot."""
    cdef int64_t where = -1, i
    cdef int err = mgf_check(&A, &where)
    if err:
        raise AssertionError(
            f"arena invariant broken at node {where}: {_CHECK_NAMES.get(err, err)}")
    for i in range(A.n):
        if A.handles[i] != NULL and (<Value>A.handles[i]).idx != i:
            raise AssertionError(f"arena invariant broken at node {i}: "
                                 f"its handle points at node {(<Value>A.handles[i]).idx}")
    return True


def arena_stats():
    """Sizes of the node arena: nodes in use, capacity, edges in use, edge
    capacity, handles, pins, bytes."""
    cdef int64_t i, handles = 0, pinned = 0
    for i in range(A.n):
        if A.handles[i] != NULL:
            handles += 1
            if A.nodes[i].flags & MGF_F_PINNED:
                pinned += 1
    return {
        "nodes": A.n,
        "capacity": A.cap,
        "edges": A.ne,
        "edge_capacity": A.ecap,
        "local_grads": A.nl,
        "handles": handles,
        "pinned": pinned,
        "compactions": _compactions,
        "node_bytes": sizeof(mgf_node) + sizeof(void *),
        "bytes": (A.cap * (sizeof(mgf_node) + sizeof(void *)) + A.ecap * sizeof(int32_t)
                  + A.lcap * sizeof(double)),
    }


# numbers ------------------------------------------------------------------------
cdef inline bint _number(object x, double *out) except -1:
    """Store x as a double and return True if x is a real number, else False
    (mirrors _is_number / _as_float)."""
    if type(x) is float:
        out[0] = <double>x
        return True
    if isinstance(x, (str, bytes, bytearray)):
        return False
    try:
        out[0] = PyFloat_AsDouble(x)
    except TypeError:
        return False
    return True


cdef inline double _as_double(object x, str what) except? -1.0:
    """_as_float: a real number as double, TypeError for anything else."""
    cdef double d
    if type(x) is float:
        return <double>x
    if not _number(x, &d):
        raise TypeError(f"Value {what} must be a real number, not {type(x).__name__}")
    return d


cdef int _math_error(int err, double x, double e, str op) except -1:
    if err == MGF_EZERODIV:
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    if err == MGF_EOVERFLOW:
        raise OverflowError(f"{op} overflowed: result too large")
    if op == "log":
        raise ValueError(f"log of a non-positive value {x!r}")
    raise ValueError(
        f"negative number {x!r} cannot be raised to the fractional power {e!r}")


# making nodes --------------------------------------------------------------------
cdef inline void _register(Value h, int64_t i) noexcept:
    A.handles[i] = <void *>h
    h.idx = i


cdef inline void _use(Value h) noexcept:
    """h's node has just become a child of a new node."""
    A.nodes[h.idx].flags |= MGF_F_USED


cdef inline bint _keeping(Value h) noexcept:
    """h carries Python state or keeps other handles (see Ownership)."""
    return h._stateful or mgf_has_attrs(h)


cdef inline void _set_keep(Value out, tuple kept) noexcept:
    out._keep = kept
    out._stateful = True
    mgf_track(out)


cdef int _keep1(Value out, Value x) except -1:
    """out keeps its child x if x is keeping (after registration: allocates)."""
    if _keeping(x):
        _set_keep(out, (x,))
    return 0


cdef int _keep2(Value out, Value x, Value y) except -1:
    cdef bint kx = _keeping(x), ky = _keeping(y)
    if not (kx or ky):
        return 0
    if kx and ky:
        _set_keep(out, (x, y))
    elif kx:
        _set_keep(out, (x,))
    elif ky:
        _set_keep(out, (y,))
    return 0


cdef int _keep_many(Value out, object items, Value skip) except -1:
    """out keeps the keeping Values among items (a tuple), skip excepted."""
    cdef list kept = None
    for v in items:
        if isinstance(v, Value) and v is not skip and _keeping(<Value>v):
            if kept is None:
                kept = []
            kept.append(v)
    if kept is not None:
        _set_keep(out, tuple(kept))
    return 0


cdef inline Value _new_handle():
    """A fresh handle for the core's own use.  It holds no Python state, so
    it cannot be part of a reference cycle: the cyclic GC does not track it
    (a million live Values then cost the collector nothing).  _track()
    starts tracking a handle when it gets a label, a Python _backward or
    attributes."""
    cdef Value h = Value.__new__(Value)
    PyObject_GC_UnTrack(<void *>h)
    return h


cdef inline int _track(Value h) except -1:
    """h got Python state: GC-track it, and late-pin it if its node is a child."""
    h._stateful = True
    mgf_state_added(h)
    return 0


cdef Value _binary(uint8_t op, Value x, Value y, double data):
    """A node with two Value children (op_add / op_mul / op_pow_value)."""
    if x.idx == 0 or y.idx == 0:
        _uninitialized()
    cdef Value out = _new_handle()
    _reserve(1, 0)
    cdef int64_t i = mgf_push(&A, op, data)
    cdef mgf_node *o = &A.nodes[i]
    o.n = 2
    o.k.c[0] = <int32_t>x.idx
    o.k.c[1] = <int32_t>y.idx
    _register(out, i)
    _use(x)
    _use(y)
    if _keeping(x) or _keeping(y):  # the slow path, out of line
        _keep2(out, x, y)
    return out


cdef Value _binary_const(uint8_t op, Value x, double c, double data):
    """A node whose second child is a new leaf holding the number c, as
    micrograd does with `Value(other)`."""
    if x.idx == 0:
        _uninitialized()
    cdef Value out = _new_handle()
    _reserve(2, 0)
    cdef int64_t k = mgf_push(&A, MGF_LEAF, c)
    cdef int64_t i = mgf_push(&A, op, data)
    cdef mgf_node *o = &A.nodes[i]
    o.n = 2
    o.k.c[0] = <int32_t>x.idx
    o.k.c[1] = <int32_t>k
    _register(out, i)
    _use(x)
    if _keeping(x):
        _keep1(out, x)
    return out


cdef Value _unary(uint8_t op, Value x, double data, double param, uint8_t flags):
    if x.idx == 0:
        _uninitialized()
    cdef Value out = _new_handle()
    _reserve(1, 0)
    cdef int64_t i = mgf_push(&A, op, data)
    cdef mgf_node *o = &A.nodes[i]
    o.n = 1
    o.k.c[0] = <int32_t>x.idx
    o.param = param
    o.flags = flags
    _register(out, i)
    _use(x)
    if _keeping(x):
        _keep1(out, x)
    return out


cdef Value _pow_const(Value x, double e, bint int_exponent):
    """op_pow_const: x ** e for a number e (_op '**e')."""
    cdef double xd = A.nodes[x.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    return _unary(MGF_POWC, x, r, e, MGF_F_INTEXP if int_exponent else 0)


cdef Value _pow_big_int(Value x, object other, double e):
    """x ** other for an int exponent of size 2**53 or more (mirrors
    _exponent_minus_one): the derivative's exponent is other - 1 computed on
    the int, then rounded, which is e itself or the double below e where
    e - 1.0 would round otherwise (node flags MGF_F_EM1_SAME / _DOWN); the
    _op shows the int as given (held by the handle: the double lost it)."""
    cdef double em1
    cdef uint8_t flags = MGF_F_INTEXP
    try:
        em1 = float(operator.index(other) - 1)
    except (TypeError, OverflowError):
        em1 = e - 1.0
    if em1 != e - 1.0:
        if em1 == e:
            flags |= MGF_F_EM1_SAME
        elif em1 == nextafter(e, -INFINITY):
            flags |= MGF_F_EM1_DOWN
    name = f"**{other}"
    cdef double xd = A.nodes[x.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    cdef Value out = _unary(MGF_POWC, x, r, e, flags)
    out._opname = name
    _track(out)
    return out


cdef Value _pow_value(Value x, Value y):
    """op_pow_value: x ** y with gradients for both."""
    cdef double xd = A.nodes[x.idx].data, e = A.nodes[y.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    return _binary(MGF_POWV, x, y, r)


cdef inline double _data(Value v) noexcept:
    return A.nodes[v.idx].data


cdef int _uninitialized() except -1:
    raise RuntimeError("this Value was never initialized (Value.__new__ without __init__)")


# the backward sweep -------------------------------------------------------------
cdef int64_t _sweep(uint8_t *seen, int64_t i) noexcept nogil:
    """Visit marked nodes from index i downward (Value.backward's loop).

    seen[k] is 1 once a visited parent has marked node k.  Each visited
    node marks its children and applies its local rule.  Returns the index
    of a node whose rule is Python code (its children already marked; the
    caller runs the rule and resumes below it), or 0 when the sweep is done
    (node 0 is the sentinel, never marked).  Unmarked stretches are skipped
    eight bytes at a time."""
    cdef mgf_node *nodes = A.nodes
    cdef int32_t *edges = A.edges
    cdef double *lg = A.lg
    cdef mgf_node *o
    cdef int32_t *ch
    cdef uint32_t t, n
    cdef uint64_t chunk
    while True:
        while not seen[i]:
            if i >= 8:
                memcpy(&chunk, seen + i - 8, 8)
                if chunk == 0:
                    i -= 8
                    continue
            i -= 1
            if i <= 0:
                return 0
        o = &nodes[i]
        n = o.n
        if n <= 2:
            if n >= 1:
                seen[o.k.c[0]] = 1
                if n == 2:
                    seen[o.k.c[1]] = 1
        else:
            ch = edges + o.k.off
            for t in range(n):
                seen[ch[t]] = 1
        if o.flags & MGF_F_PYBW:
            return i
        mgf_rule(nodes, edges, lg, o)
        i -= 1
        if i <= 0:
            return 0


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef class _LocalRule:
    """What `node._backward` gives for built-in ops: applies the node's local
    chain rule once, like micrograd's per-node closure."""
    cdef Value v

    def __call__(self):
        if self.v is None:  # made with _LocalRule.__new__: bound to nothing
            raise RuntimeError("this local chain rule belongs to no Value")
        if self.v.idx == 0:
            _uninitialized()
        mgf_local_backward(&A, self.v.idx)

    def __repr__(self):
        if self.v is None or self.v.idx == 0:
            return "<local chain rule of no node>"
        return f"<local chain rule of {self.v._op!r} node>"


cdef list _child_handles(Value v):
    """v's children in order, as Values: the handle a child already has,
    else a new one (so a node has one handle at a time)."""
    if v.idx == 0:
        _uninitialized()
    cdef uint32_t n = A.nodes[v.idx].n, t
    if n == 0:
        return []
    spare = [_new_handle() for t in range(n)]  # allocate first (may run GC)
    cdef mgf_node *o = &A.nodes[v.idx]
    cdef int32_t *ch = mgf_children(&A, o)
    cdef void *h
    cdef Value hv
    for t in range(n):
        h = A.handles[ch[t]]
        if h == NULL or Py_REFCNT(h) == 0:
            # no handle, or one being deallocated (a subclass's weakref
            # callbacks run before its slot is cleared): a fresh one
            hv = spare[t]
            _register(hv, ch[t])
        else:
            spare[t] = <Value>h
    return spare


cdef int _refuse_rewiring(str name) except -1:
    raise AttributeError(
        f"{name} cannot be assigned: a Value's children are fixed when it is made "
        "(the graph lives in the node arena and cannot be rewired); "
        "make a new Value(data, children, ...) instead")


cdef tuple _local_grads_tuple(object lgs, Py_ssize_t n):
    """microgpt's local derivatives: a sequence of n real numbers, as a
    tuple of floats (mirrors _local_grads_tuple)."""
    cdef double d
    cdef Py_ssize_t t
    cdef bint floats = True
    if type(lgs) is tuple:
        # the common case, a tuple of floats, is used as it is
        for item in <tuple>lgs:
            if type(item) is not float:
                floats = False
                break
        if floats:
            if len(<tuple>lgs) != n:
                raise ValueError(f"got {len(<tuple>lgs)} local gradients for {n} children")
            return <tuple>lgs
    if isinstance(lgs, (str, bytes, bytearray)):
        items = None
    else:
        try:
            items = tuple(lgs)
        except TypeError:
            items = None
    if items is None:
        raise TypeError(
            "Value()'s third argument must be an _op string or a sequence of local "
            f"gradients (numbers), not {type(lgs).__name__}")
    out = []
    for item in items:
        if isinstance(item, Value) or not _number(item, &d):
            raise TypeError(
                f"local gradients must be real numbers, not {type(item).__name__}")
        out.append(d)
    if len(out) != n:
        raise ValueError(f"got {len(out)} local gradients for {n} children")
    return tuple(out)


def _slot_state(obj):  # mirrors _slot_state
    """The values of the ``__slots__`` a Value subclass declares, by
    attribute name (unset slots are left out), for pickling."""
    state = {}
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__")
        if slots is None:
            continue
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = "_" + klass.__name__.lstrip("_") + name
            try:
                state[name] = getattr(obj, name)
            except AttributeError:
                pass
    return state


def _restore(data, grad, label, cls=None):
    """Unpickling: a leaf with the saved data, grad and label (mirrors
    _rebuild_value); attributes follow through Value.__setstate__.  cls: a
    subclass of Value to rebuild as (its own __init__ is not called)."""
    if cls is None or cls is Value:
        v = Value(data, label=label)
    else:
        if not (isinstance(cls, type) and issubclass(cls, Value)):
            raise TypeError(f"cannot rebuild a Value as {cls!r}")
        v = cls.__new__(cls)
        Value.__init__(v, data, label=label)
    v.grad = grad
    return v


@cython.freelist(1024)
cdef class Value:
    """A scalar that remembers how it was computed (a handle onto an arena node).

    Value(data, _children=(), _op='', label='')
    Value(data, children, local_grads): a node whose backward adds
    local_grads[t] * out.grad to children[t] (mirrors Value.__init__).
    """

    __array_ufunc__ = None  # NumPy scalars hand arithmetic over to us

    def __init__(self, data, _children=(), _op="", label="", *, children=None,
                 local_grads=None):
        cdef double x = _as_double(data, "data")
        kids = tuple(_children)
        if children is not None:
            if kids:
                raise TypeError("Value() got children both as _children and as children=")
            kids = tuple(children)
        cdef Py_ssize_t n = len(kids), t
        cdef Value c
        for k in kids:
            _as_value(k, "Value children")
        if n > 0xFFFFFFF:
            raise ValueError("too many children")
        # the third argument: an _op string, or microgpt's local derivatives
        cdef tuple lgt = None  # exact floats: reading them runs no Python code
        if isinstance(_op, str):
            op_name = _op
            if local_grads is not None:
                lgt = _local_grads_tuple(local_grads, n)
        else:
            if local_grads is not None:
                raise TypeError("Value() got local_grads both as the third argument "
                                "and as local_grads=")
            op_name = ""
            lgt = _local_grads_tuple(_op, n)
        cdef bint local = lgt is not None and n > 0
        # room first, while an old node of this handle is still registered:
        # a reclamation here must keep it (it may be among the children)
        _reserve(1, n if n > 2 else 0)
        if local and mgf_reserve_lg(&A, n) < 0:
            raise MemoryError("micrograd_fast: cannot grow the local gradient array")
        if self.idx > 0 and A.handles[self.idx] == <void *>self:
            # __init__ called again: a fresh node; the old one is left as if
            # this handle had been dropped, and the Python state starts over
            # as in a new Value
            A.handles[self.idx] = NULL
            if A.nodes[self.idx].flags & MGF_F_PINNED:
                Py_DECREF(self)  # the caller still holds a reference
            A.nodes[self.idx].flags &= ~(MGF_F_PYBW | MGF_F_PINNED)
        cdef int64_t i = mgf_push(&A, MGF_LOCAL if local else (MGF_CUSTOM if n else MGF_LEAF), x)
        cdef mgf_node *o = &A.nodes[i]
        o.n = <uint32_t>n
        if local:
            o.param = <double>A.nl
            for t in range(n):
                A.lg[A.nl + t] = <double>lgt[t]
            A.nl += n
        if n <= 2:
            for t in range(n):
                o.k.c[t] = <int32_t>(<Value>kids[t]).idx
        else:
            o.k.off = A.ne
            for t in range(n):
                A.edges[A.ne + t] = <int32_t>(<Value>kids[t]).idx
            A.ne += n
        cdef int32_t *ch = mgf_children(&A, o)
        for t in range(n):
            A.nodes[ch[t]].flags |= MGF_F_USED  # (self among kids: its old node)
        _register(self, i)
        # the arena is consistent: Python objects may be made from here on
        self._bw = None
        self._label = None
        self._opname = None
        self._keep = None
        self._stateful = False
        if n:
            _keep_many(self, kids, self)
        if op_name:
            self._opname = op_name
            self._stateful = True
        if n and not local:
            self._stateful = True
        if label is None:  # kept as given: reads back None
            self._label = _NO_LABEL
            self._stateful = True
        elif type(label) is not str or len(<str>label) != 0:
            self._label = label
            self._stateful = True
        if not self._stateful and type(self) is Value and not mgf_has_attrs(self):
            PyObject_GC_UnTrack(<void *>self)  # see _new_handle
        elif self._stateful:
            mgf_track(self)

    def __dealloc__(self):
        # the arena slot was cleared by mgf_dealloc, before weakref callbacks
        mgf_drop_dict(self)

    # data, grad, label, _op, _prev, _backward ------------------------------
    @property
    def data(self):
        if self.idx == 0:
            _uninitialized()
        return A.nodes[self.idx].data

    @data.setter
    def data(self, value):
        cdef double x = _as_double(value, "data")
        if self.idx == 0:
            _uninitialized()
        A.nodes[self.idx].data = x

    @property
    def grad(self):
        if self.idx == 0:
            _uninitialized()
        return A.nodes[self.idx].grad

    @grad.setter
    def grad(self, value):
        cdef double x = _as_double(value, "grad")
        if self.idx == 0:
            _uninitialized()
        A.nodes[self.idx].grad = x

    @property
    def label(self):
        if self._label is None:
            return ""
        if self._label is _NO_LABEL:
            return None
        return self._label

    @label.setter
    def label(self, value):
        self._label = _NO_LABEL if value is None else value
        _track(self)

    @property
    def _op(self):
        if self.idx == 0:
            _uninitialized()
        if self._opname is not None:
            return self._opname
        cdef mgf_node *o = &A.nodes[self.idx]
        if o.op == MGF_POWC:
            if o.flags & MGF_F_INTEXP:
                return f"**{int(o.param)}"
            return f"**{o.param!r}"
        if o.op == MGF_NEURON:
            return "neuron_" + _ACT_NAMES[o.aux]
        return _OP_NAMES[o.op]

    @_op.setter
    def _op(self, value):
        # a label for drawings (mirrors the pure engine's _op setter)
        if self.idx == 0:
            _uninitialized()
        if not isinstance(value, str):
            raise TypeError(f"_op must be a str, not {type(value).__name__}")
        self._opname = value
        _track(self)

    @property
    def _prev(self):
        """The set of this node's children, as the Values the user holds."""
        return set(_child_handles(self))

    @_prev.setter
    def _prev(self, value):
        _refuse_rewiring("_prev")

    @property
    def _children(self):
        """This node's children as a tuple, in order, repeats included."""
        return tuple(_child_handles(self))

    @_children.setter
    def _children(self, value):
        _refuse_rewiring("_children")

    @property
    def _local_grads(self):
        """d self / d child for each child in _children, at the current data
        (mgf_local_grads); () for leaves and nodes with a Python _backward
        rule and no local gradients."""
        if self.idx == 0:
            _uninitialized()
        cdef uint32_t n = A.nodes[self.idx].n, k, t
        if n == 0 or A.nodes[self.idx].op == MGF_CUSTOM:
            return ()
        cdef double small[4]
        cdef double *buf = small
        if n > 4:
            buf = <double *>malloc(n * sizeof(double))
            if buf == NULL:
                raise MemoryError("micrograd_fast: no memory for local gradients")
        try:
            k = mgf_local_grads(&A, &A.nodes[self.idx], buf)
            return tuple([buf[t] for t in range(k)])
        finally:
            if buf != small:
                free(buf)

    @property
    def _backward(self):
        """This node's local chain rule: a Python function assigned by the
        user, or the built-in rule of its op."""
        if self._bw is not None:
            return self._bw
        cdef _LocalRule rule = _LocalRule.__new__(_LocalRule)
        rule.v = self
        return rule

    @_backward.setter
    def _backward(self, fn):
        if self.idx == 0:
            _uninitialized()
        if fn is None or isinstance(fn, _LocalRule):
            self._bw = None
            A.nodes[self.idx].flags &= ~MGF_F_PYBW
            return
        if not callable(fn):
            raise TypeError(f"_backward must be callable, not {type(fn).__name__}")
        self._bw = fn
        _track(self)
        A.nodes[self.idx].flags |= MGF_F_PYBW

    def __repr__(self):
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    def _repr_svg_(self):
        """Jupyter shows a Value as its graph (None when Graphviz is absent
        or the graph is too large to draw)."""
        from micrograd_fast.viz import value_svg
        return value_svg(self)

    def __reduce__(self):
        """pickle / copy / deepcopy give a leaf with the same data, grad,
        label and attributes; the graph below is not copied (mirrors
        Value.__reduce__)."""
        args = (self.data, self.grad, self.label)
        state = dict(<object>self._dict) if mgf_has_attrs(self) else {}
        if type(self) is not Value:  # a subclass comes back as itself
            args += (type(self),)
            state.update(_slot_state(self))
        if state:
            return (_restore, args, state)
        return (_restore, args)

    def __setstate__(self, state):
        # attributes are restored once the leaf exists, so one may refer
        # back to the Value itself
        for k, v in state.items():
            setattr(self, k, v)

    # operators ---------------------------------------------------------------
    def __add__(self, other):  # Value.__add__
        cdef double c
        if isinstance(other, Value):
            return _binary(MGF_ADD, self, other, _data(self) + _data(<Value>other))
        if not _number(other, &c):
            return NotImplemented
        return _binary_const(MGF_ADD, self, c, _data(self) + c)

    def __radd__(self, other):  # Value.__radd__
        cdef double c
        if not _number(other, &c):
            return NotImplemented
        return _binary_const(MGF_ADD, self, c, _data(self) + c)

    def __mul__(self, other):  # Value.__mul__
        cdef double c
        if isinstance(other, Value):
            return _binary(MGF_MUL, self, other, _data(self) * _data(<Value>other))
        if not _number(other, &c):
            return NotImplemented
        return _binary_const(MGF_MUL, self, c, _data(self) * c)

    def __rmul__(self, other):  # Value.__rmul__
        cdef double c
        if not _number(other, &c):
            return NotImplemented
        return _binary_const(MGF_MUL, self, c, _data(self) * c)

    def __neg__(self):  # Value.__neg__: self * -1
        return _binary_const(MGF_MUL, self, -1.0, _data(self) * -1.0)

    def __sub__(self, other):  # Value.__sub__: self + (-other)
        cdef double c
        cdef Value neg
        if isinstance(other, Value):
            neg = -other
            return _binary(MGF_ADD, self, neg, _data(self) + _data(neg))
        if not _number(other, &c):
            return NotImplemented
        return _binary_const(MGF_ADD, self, -c, _data(self) + (-c))

    def __rsub__(self, other):  # Value.__rsub__: (-self) + other
        cdef double c
        if not _number(other, &c):
            return NotImplemented
        cdef Value neg = -self
        return _binary_const(MGF_ADD, neg, c, _data(neg) + c)

    def __truediv__(self, other):  # Value.__truediv__: self * other**-1
        cdef double c, r = 0.0
        cdef Value inv
        cdef int err
        if isinstance(other, Value):
            inv = _pow_const(other, -1.0, True)
            return _binary(MGF_MUL, self, inv, _data(self) * _data(inv))
        if not _number(other, &c):
            return NotImplemented
        err = mgf_pow_forward(c, -1.0, &r)
        if err:
            _math_error(err, c, -1.0, "**")
        return _binary_const(MGF_MUL, self, r, _data(self) * r)

    def __rtruediv__(self, other):  # Value.__rtruediv__: self**-1 * other
        cdef double c
        if not _number(other, &c):
            return NotImplemented
        cdef Value inv = _pow_const(self, -1.0, True)
        return _binary_const(MGF_MUL, inv, c, _data(inv) * c)

    def __pow__(self, other, mod):  # Value.__pow__
        cdef double e
        if mod is not None:
            return NotImplemented
        if isinstance(other, Value):
            return _pow_value(self, other)
        if not _number(other, &e):
            return NotImplemented
        if PyIndex_Check(other) and not (-9007199254740992.0 < e < 9007199254740992.0):
            return _pow_big_int(self, other, e)
        return _pow_const(self, e, PyIndex_Check(other) != 0)

    def __rpow__(self, other, mod):  # Value.__rpow__: Value(other) ** self
        cdef double c
        if mod is not None or not _number(other, &c):
            return NotImplemented
        return _pow_value(Value(c), self)

    def relu(self):  # Value.relu
        return _unary(MGF_RELU, self, mgf_relu(_data(self)), 0.0, 0)

    def tanh(self):  # Value.tanh
        return _unary(MGF_TANH, self, mgf_tanh(_data(self)), 0.0, 0)

    def exp(self):  # Value.exp
        cdef double x = _data(self), r = 0.0
        cdef int err = mgf_exp_forward(x, &r)
        if err:
            _math_error(err, x, 0.0, "exp")
        return _unary(MGF_EXP, self, r, 0.0, 0)

    def log(self):  # Value.log
        cdef double x = _data(self), r = 0.0
        cdef int err = mgf_log_forward(x, &r)
        if err:
            _math_error(err, x, 0.0, "log")
        return _unary(MGF_LOG, self, r, 0.0, 0)

    def sigmoid(self):  # Value.sigmoid
        return _unary(MGF_SIGMOID, self, mgf_sigmoid(_data(self)), 0.0, 0)

    # backpropagation -----------------------------------------------------------
    def backward(self):
        """Set this node's grad to 1 and push gradients to everything below
        it (Value.backward): reverse creation order over the reachable
        nodes, iteratively, accumulating into grads as micrograd does."""
        global _busy
        if self.idx == 0:
            _uninitialized()
        cdef int64_t root = self.idx, i
        cdef uint8_t *seen = <uint8_t *>calloc(root + 1, 1)
        cdef void *h
        if seen == NULL:
            raise MemoryError("micrograd_fast: no memory for the backward pass")
        seen[root] = 1
        A.nodes[root].grad = 1.0
        _busy += 1
        try:
            i = root
            while True:
                i = _sweep(seen, i)
                if i <= 0:
                    break
                h = A.handles[i]
                if h != NULL and (<Value>h)._bw is not None:
                    (<Value>h)._bw()
                i -= 1  # resume below the node just handled
                if i <= 0:
                    break
        finally:
            _busy -= 1
            free(seen)


cdef extern from "math.h" nogil:
    double nextafter(double, double)
    const double INFINITY
    double pow(double, double)
    double sqrt(double)


# building blocks for nn: n-ary sum, fused neurons, optimizer updates -------------
_ACT_CODES = {"linear": MGF_ACT_LINEAR, "relu": MGF_ACT_RELU,
              "tanh": MGF_ACT_TANH, "sigmoid": MGF_ACT_SIGMOID}


cdef inline Value _as_value(object v, str what):
    if not isinstance(v, Value):
        raise TypeError(f"{what} must be a Value, not {type(v).__name__}")
    if (<Value>v).idx == 0:
        _uninitialized()
    return <Value>v


def vsum(values, start=0.0):
    """One n-ary sum node (_op 'sum'): start + values[0] + values[1] + ...

    Adds in order, like the builtin sum over Values, so the data is the same
    (never the compensated float sum of Python 3.12+); plain numbers are
    folded into the data and make no node (mirrors vsum)."""
    # a private, immutable copy: converting a number may run Python code,
    # which must not be able to change the items between the passes below
    items = values if type(values) is tuple else tuple(values)
    cdef Py_ssize_t n = len(items), t, k = 0
    cdef double acc
    cdef object item
    if isinstance(start, Value):
        acc = _data(_as_value(start, "start"))
        k = 1
    else:
        acc = _as_double(start, "start")
    for t in range(n):
        item = items[t]
        if isinstance(item, Value):
            acc = acc + _data(_as_value(item, "sum item"))
            k += 1
        else:
            acc = acc + _as_double(item, "sum item")
    cdef Value out = _new_handle()
    _reserve(1, k if k > 2 else 0)
    cdef int64_t i = mgf_push(&A, MGF_SUM, acc)
    cdef mgf_node *o = &A.nodes[i]
    cdef int32_t *ch
    o.n = <uint32_t>k
    if k > 2:
        o.k.off = A.ne
        A.ne += k
    ch = mgf_children(&A, o)
    k = 0
    if isinstance(start, Value):
        ch[0] = <int32_t>(<Value>start).idx
        k = 1
    for t in range(n):
        item = items[t]
        if isinstance(item, Value):
            ch[k] = <int32_t>(<Value>item).idx
            k += 1
    _register(out, i)
    for t in range(<Py_ssize_t>o.n):
        A.nodes[ch[t]].flags |= MGF_F_USED
    # the arena is consistent: the keeping items may now be collected
    if isinstance(start, Value) and _keeping(<Value>start):
        _keep_many(out, (start,) + items, None)
    else:
        _keep_many(out, items, None)
    return out


cdef int _act_code(object act) except -1:
    try:
        return _ACT_CODES[act]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {act!r}: expected one of {sorted(_ACT_CODES)}") from None


cdef extern from "Python.h":
    PyObject **PySequence_Fast_ITEMS(object)


cdef inline object _seq(object o):
    """o as a tuple (o itself if it is one).  Never a list read in place:
    Python code runs between checking and using these items (an input's
    __float__, finalizers run by a GC pass or by reclamation), and it must
    not be able to change them."""
    if type(o) is tuple:
        return o
    return tuple(o)


cdef inline int _check_param(PyObject *o, str what) except -1:
    if (<PyObject *>o).ob_type == <PyTypeObject *>Value and (<Value>o).idx != 0:
        return 0
    _as_value(<object>o, what)
    return 0


# The widest input a fused neuron takes (mirrors _MAX_NIN): its node's
# children count, 2 * nin + 1, stays far inside uint32.
_MAX_NIN = 0x7FFFFFF
cdef object _PLAN_TOKEN = object()


cdef class MLPPlan:
    """A checked, frozen stack of fused layers for mlp() (see mlp_plan).

    It holds its own references to the parameter Values (per layer, per
    neuron: w_0..w_{nin-1}, b), so the lists it was made from may change
    afterwards without touching it, and mlp() needs no checks per call.
    Only mlp_plan() makes one: MLPPlan() is a TypeError."""
    cdef tuple params
    cdef PyObject **p
    cdef Py_ssize_t nl, n_in, n_out, maxw, nodes, edges, nparams
    cdef Py_ssize_t chain_nodes  # unfused: nodes made from Value inputs alone
    cdef Py_ssize_t *width  # nl + 1 widths, width[0] = n_in
    cdef int *act
    cdef int32_t *buf       # scratch: two rows of maxw + 1 node indices
    cdef bint ready         # set last by mlp_plan: the arrays are filled in

    def __cinit__(self, token=None):
        if token is not _PLAN_TOKEN:
            raise TypeError("MLPPlan objects are made by mlp_plan()")

    def __dealloc__(self):
        free(self.width)
        free(self.act)
        free(self.buf)

    cdef int _check_ready(self) except -1:
        if not self.ready:
            raise TypeError("this MLPPlan was not completed by mlp_plan()")
        return 0

    @property
    def nin(self):
        self._check_ready()
        return self.n_in

    @property
    def nout(self):
        self._check_ready()
        return self.n_out

    def __len__(self):
        self._check_ready()
        return self.nl

    def __reduce_ex__(self, protocol):
        raise TypeError("an MLPPlan does not pickle or copy: make one with mlp_plan()")

    def __repr__(self):
        if not self.ready:
            return "<MLPPlan (incomplete)>"
        sizes = [self.width[l] for l in range(self.nl + 1)]
        acts = [_ACT_NAMES[self.act[l]] for l in range(self.nl)]
        return f"MLPPlan(sizes={sizes}, acts={acts})"


cdef Py_ssize_t _check_nin(object nin) except -1:
    """nin as an int in [0, _MAX_NIN] (mirrors _check_nin)."""
    try:
        n = operator.index(nin)
    except TypeError:
        raise TypeError(f"nin must be an int, not {type(nin).__name__}") from None
    if n < 0:
        raise ValueError("nin must not be negative")
    if n > _MAX_NIN:
        raise ValueError(f"nin must be at most {_MAX_NIN}, got {n}")
    return n


cdef tuple _as_row(object row):
    try:
        return tuple(row)
    except TypeError:
        raise TypeError(
            f"weight rows must be sequences of Values, not {type(row).__name__}") from None


def mlp_plan(spec, nin=None):
    """Check a stack of layers once, for repeated mlp() calls (mirrors mlp_plan).

    spec: sequence of (W, B, act) as for mlp().  nin: the input width
    (taken from the first weight row when not given).  The plan keeps the
    parameter Values it was given: make a new one when they are replaced.

    Everything is read into private tuples and checked (in the order the
    pure engine checks) before the plan's C arrays are made."""
    layers = tuple(spec)
    cdef Py_ssize_t nl = len(layers), l, j, width = -1, nout, maxw = 0, nodes = 0, edges = 0
    cdef Py_ssize_t chain_nodes = 0
    if nl == 0:
        raise ValueError("mlp needs at least one layer")
    if nin is not None:
        width = _check_nin(nin)
    widths = []
    acts = []
    items = []
    for l in range(nl):
        item = layers[l]
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError("mlp: spec items must be (W, B, act) tuples")
        W, B, act = item
        acts.append(_act_code(act))
        rows = tuple([_as_row(row) for row in W])
        biases = tuple(B)
        nout = len(rows)
        if len(biases) != nout:
            raise ValueError(f"layer has {nout} weight rows but {len(biases)} biases")
        if width < 0:
            width = _check_nin(len(<tuple>rows[0]) if nout > 0 else 0)
        for j in range(nout):
            row = <tuple>rows[j]
            if len(row) != width:
                raise ValueError(
                    f"neuron {j} has {len(row)} weights, expected {width} (one per input)")
            for w in row:
                _check_param(<PyObject *>w, "a weight")
            _check_param(<PyObject *>biases[j], "a bias")
            items.extend(row)
            items.append(biases[j])
        widths.append(width)
        if width > maxw:
            maxw = width
        edges += nout * (2 * width + 1)
        nodes += nout
        chain_nodes += nout * (2 * width + (<int>acts[l] != MGF_ACT_LINEAR))
        width = nout
    widths.append(width)
    if width > maxw:
        maxw = width
    params = tuple(items)
    cdef MLPPlan plan = MLPPlan.__new__(MLPPlan, _PLAN_TOKEN)
    plan.params = params
    plan.nparams = len(params)
    plan.width = <Py_ssize_t *>malloc((nl + 1) * sizeof(Py_ssize_t))
    plan.act = <int *>malloc(nl * sizeof(int))
    plan.buf = <int32_t *>malloc(2 * (maxw + 1) * sizeof(int32_t))
    if plan.width == NULL or plan.act == NULL or plan.buf == NULL:
        raise MemoryError("micrograd_fast: no memory for an mlp plan")
    for l in range(nl):
        plan.width[l] = <Py_ssize_t>widths[l]
        plan.act[l] = <int>acts[l]
    plan.width[nl] = width
    plan.nl = nl
    plan.n_in = plan.width[0]
    plan.n_out = width
    plan.maxw = maxw
    plan.nodes = nodes
    plan.edges = edges
    plan.chain_nodes = chain_nodes
    plan.p = PySequence_Fast_ITEMS(plan.params)
    plan.ready = True
    return plan


cdef inline double _act_forward(int act, double z) noexcept:
    """The activation as the Value method computes it (relu, tanh, sigmoid)."""
    if act == MGF_ACT_RELU:
        return mgf_relu(z)
    if act == MGF_ACT_TANH:
        return mgf_tanh(z)  # the function Value.tanh uses
    if act == MGF_ACT_SIGMOID:
        return mgf_sigmoid(z)
    return z


cdef uint8_t[4] _ACT_OPS
_ACT_OPS[MGF_ACT_LINEAR] = MGF_LEAF  # no node
_ACT_OPS[MGF_ACT_RELU] = MGF_RELU
_ACT_OPS[MGF_ACT_TANH] = MGF_TANH
_ACT_OPS[MGF_ACT_SIGMOID] = MGF_SIGMOID


cdef list _run_plan(MLPPlan plan, tuple xs, bint fused):
    """The forward pass of a plan (mirrors mlp); only the outputs get handles.

    fused: one MGF_NEURON node per neuron, children w_0..w_{nin-1},
    x_0..x_{nin-1}, b; plain-number inputs become leaves once per call.
    Otherwise micrograd's Neuron graph, node for node in its creation order:
    per neuron acc = b, then for each input j a leaf (when x_j is a number,
    one per neuron, as `w * x` makes it), the '*' node (w_j, x_j) and the
    '+' node (acc, w_j*x_j); then the activation's node unless linear."""
    cdef Py_ssize_t nin = len(xs), t, l, j, k, c = 0, n_const = 0, m_in, m_out
    plan._check_ready()
    if nin != plan.n_in:
        raise ValueError(f"mlp expects {plan.n_in} inputs, got {nin}")
    cdef double local[64]
    cdef double *consts = local
    cdef int32_t wlocal[64]
    cdef int32_t *wbuf = wlocal  # one neuron's weight indices
    if nin > 64 or plan.maxw > 64:
        consts = <double *>malloc((nin if nin > 0 else 1) * sizeof(double))
        wbuf = <int32_t *>malloc(plan.maxw * sizeof(int32_t))
        if consts == NULL or wbuf == NULL:
            free(consts)
            free(wbuf)
            raise MemoryError("micrograd_fast: no memory for mlp")
    cdef PyObject **xi = PySequence_Fast_ITEMS(xs)
    cdef int32_t *cur
    cdef int32_t *nxt
    cdef int32_t *tmp
    cdef int32_t *ch
    cdef mgf_node *o
    cdef int64_t i
    cdef int32_t acc
    cdef double z
    cdef uint32_t m
    cdef int act
    cdef PyObject **p = plan.p
    try:
        for t in range(nin):
            if isinstance(<object>xi[t], Value):
                _as_value(<object>xi[t], "an input")
            else:
                consts[n_const] = _as_double(<object>xi[t], "input")
                n_const += 1
        outs = [_new_handle() for t in range(plan.n_out)]  # allocate first (may run GC)
        if fused:
            _reserve(n_const + plan.nodes, plan.edges)
        else:
            _reserve(plan.chain_nodes + n_const * plan.width[1], 0)
        # from here on no Python code runs until the outputs are registered
        cur = plan.buf
        nxt = plan.buf + plan.maxw + 1
        for t in range(nin):
            if isinstance(<object>xi[t], Value):
                cur[t] = <int32_t>(<Value>xi[t]).idx
                _use(<Value>xi[t])
            elif fused:
                cur[t] = <int32_t>mgf_push(&A, MGF_LEAF, consts[c])
                c += 1
            else:
                cur[t] = <int32_t>(-1 - c)  # consts[c]: a leaf per neuron, made below
                c += 1
        k = 0
        for l in range(plan.nl):
            m_in = plan.width[l]
            m_out = plan.width[l + 1]
            act = plan.act[l]
            m = <uint32_t>(2 * m_in + 1)
            for j in range(m_out):
                if not fused:
                    for t in range(m_in):
                        wbuf[t] = <int32_t>(<Value>p[k + t]).idx
                    # (mgf_chain_neuron marks the children it links as used)
                    acc = mgf_chain_neuron(&A, wbuf, cur, consts,
                                           <int32_t>(<Value>p[k + m_in]).idx,
                                           <uint32_t>m_in, &z)
                    if act != MGF_ACT_LINEAR:
                        A.nodes[acc].flags |= MGF_F_USED
                        acc = <int32_t>mgf_push_node(&A, _ACT_OPS[act], _act_forward(act, z),
                                                     1, acc, 0)
                    nxt[j] = acc
                    k += m_in + 1
                    continue
                i = mgf_push(&A, MGF_NEURON, 0.0)
                o = &A.nodes[i]
                o.n = m
                o.aux = <uint16_t>act
                if m > 2:
                    o.k.off = A.ne
                    A.ne += m
                ch = mgf_children(&A, o)
                for t in range(m_in):
                    ch[t] = <int32_t>(<Value>p[k + t]).idx
                    ch[m_in + t] = cur[t]
                    A.nodes[ch[t]].flags |= MGF_F_USED
                    A.nodes[cur[t]].flags |= MGF_F_USED
                ch[2 * m_in] = <int32_t>(<Value>p[k + m_in]).idx
                A.nodes[ch[2 * m_in]].flags |= MGF_F_USED
                o.data = mgf_neuron_forward(A.nodes, ch, <uint32_t>m_in, act)
                nxt[j] = <int32_t>i
                k += m_in + 1
            tmp = cur
            cur = nxt
            nxt = tmp
        for t in range(plan.n_out):
            if A.handles[cur[t]] == NULL:
                _register(<Value>outs[t], cur[t])
        # an output that is an existing Value (a linear neuron without
        # inputs is its bias) is that Value, as in micrograd
        for t in range(plan.n_out):
            if A.handles[cur[t]] != <void *>outs[t]:
                outs[t] = <Value>A.handles[cur[t]]
    finally:
        if consts != local:
            free(consts)
            free(wbuf)
    # the arena is consistent: each output keeps the keeping parameters and
    # inputs (its inner nodes have no handles to keep them)
    cdef list kept = None
    for t in range(plan.nparams):
        if _keeping(<Value>p[t]):
            if kept is None:
                kept = []
            kept.append(<object>p[t])
    for t in range(nin):
        if isinstance(<object>xi[t], Value) and _keeping(<Value>xi[t]):
            if kept is None:
                kept = []
            kept.append(<object>xi[t])
    if kept is not None:
        kept_t = tuple(kept)
        for t in range(plan.n_out):
            _set_keep(<Value>outs[t], kept_t)
    return outs


def mlp(spec, x, *, fused=True):
    """Forward pass of a stack of layers (mirrors mlp).

    spec: an MLPPlan from mlp_plan(), or a sequence of (W, B, act) with W a
    sequence of weight rows (Values), B the biases (Values) and act one of
    'relu', 'tanh', 'sigmoid', 'linear'.  x: the inputs, Values or numbers
    (numbers become leaves).  fused=True makes one node per neuron;
    fused=False micrograd's graph of '*', '+' and activation nodes.  Returns
    the last layer's outputs as a list of Values; the other nodes get no
    Python objects until user code reaches them through _prev."""
    xs = x if type(x) is tuple else tuple(x)  # a private copy of the inputs
    if type(spec) is MLPPlan:
        return _run_plan(<MLPPlan>spec, xs, fused)
    return _run_plan(mlp_plan(spec, len(xs)), xs, fused)


def layer(W, B, x, act, *, fused=True):
    """Neurons act(b + w_0*x_0 + w_1*x_1 + ...): one node each (fused), or
    micrograd's chain of nodes (fused=False).

    W: nout rows of nin weight Values, B: nout bias Values, x: nin inputs
    (Values or numbers), act: 'relu', 'tanh', 'sigmoid' or 'linear'.
    Returns the nout outputs (mirrors layer)."""
    return mlp(((W, B, act),), x, fused=fused)


_F64_FORMATS = frozenset(("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d"))


cdef double[::1] _state_view(object arr, Py_ssize_t n, str name):
    """An optimizer state array as a typed view (mirrors _check_state): any
    writeable, C-contiguous, 1-D buffer of native float64 with n entries.
    TypeError for an object that is no buffer, ValueError for a buffer of
    another kind; checked here so both engines raise the same types."""
    try:
        view = memoryview(arr)
    except TypeError:
        raise TypeError(f"{name} must be a 1-D float64 array, not {type(arr).__name__}") from None
    with view:
        if view.format not in _F64_FORMATS or view.ndim != 1 or not view.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous 1-D float64 array "
                             f"(got format {view.format!r}, {view.ndim} dimensions)")
        if view.readonly:
            raise ValueError(f"{name} must be writeable")
        if view.shape[0] != n:
            raise ValueError(f"{name}: expected {n} entries (one per parameter), got {view.shape[0]}")
    cdef double[::1] out = arr
    if out.shape[0] != n:  # an exporter may hand out another buffer the second time
        raise ValueError(f"{name}: expected {n} entries (one per parameter), got {out.shape[0]}")
    return out


cdef tuple _checked_values(object values, str what):
    """One private snapshot of values (any iterable), every item an
    initialized Value (TypeError / RuntimeError otherwise).  The updates
    below read only this tuple, after every check: all or nothing."""
    cdef tuple items = _seq(values)
    cdef Py_ssize_t i
    for i in range(len(items)):
        _as_value(items[i], what)
    return items


def sgd_update(params, double lr, double momentum, buf, bint first):
    """SGD step over params (mirrors sgd_update): p.data -= lr * g, or with
    momentum buf = momentum * buf + g (buf = g on the first step)."""
    cdef tuple items = _checked_values(params, "a parameter")
    cdef Py_ssize_t i, n = len(items)
    cdef double[::1] mom
    if buf is not None or momentum != 0.0:  # without momentum it may be None
        mom = _state_view(buf, n, "buf")
    cdef mgf_node *o
    cdef double g
    for i in range(n):
        o = &A.nodes[(<Value>items[i]).idx]
        g = o.grad
        if momentum == 0.0:
            o.data = o.data - lr * g
        else:
            mom[i] = g if first else momentum * mom[i] + g
            o.data = o.data - lr * mom[i]


def adam_update(params, m, v, double t, double lr,
                double beta1, double beta2, double eps, double weight_decay,
                bint decoupled):
    """Adam / AdamW step over params (mirrors adam_update); t is the 1-based
    step number."""
    cdef tuple items = _checked_values(params, "a parameter")
    cdef Py_ssize_t i, n = len(items)
    cdef double[::1] m1 = _state_view(m, n, "m")
    cdef double[::1] m2 = _state_view(v, n, "v")
    if not t >= 1.0:
        raise ValueError(f"adam step number must be >= 1, not {t!r}")
    cdef double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t)
    if bc1 == 0.0 or bc2 == 0.0:
        raise ZeroDivisionError("adam bias correction is zero (beta1 or beta2 ** t == 1)")
    cdef double g, mhat, vhat, upd
    cdef mgf_node *o
    for i in range(n):
        o = &A.nodes[(<Value>items[i]).idx]
        g = o.grad
        if not decoupled and weight_decay != 0.0:
            g = g + weight_decay * o.data
        m1[i] = beta1 * m1[i] + (1.0 - beta1) * g
        m2[i] = beta2 * m2[i] + (1.0 - beta2) * (g * g)
        mhat = m1[i] / bc1
        vhat = m2[i] / bc2
        upd = mhat / (sqrt(vhat) + eps)
        if decoupled:
            upd = upd + weight_decay * o.data
        o.data = o.data - lr * upd


def gather(values, which="data"):
    """The data (or grads) of values as a float64 NumPy array."""
    import numpy
    cdef bint grad = _which(which)
    cdef tuple items = _checked_values(values, "each item")
    cdef Py_ssize_t i, n = len(items)
    out = numpy.empty(n, dtype=numpy.float64)
    cdef double[::1] dst = out
    cdef mgf_node *o
    for i in range(n):
        o = &A.nodes[(<Value>items[i]).idx]
        dst[i] = o.grad if grad else o.data
    return out


def scatter(values, array, which="data"):
    """Write array into the data (or grads) of values."""
    import numpy
    cdef bint grad = _which(which)
    cdef tuple items = _checked_values(values, "each item")
    cdef Py_ssize_t i, n = len(items)
    src_arr = numpy.ascontiguousarray(array, dtype=numpy.float64)
    if src_arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got {src_arr.ndim} dimensions")
    cdef double[::1] src = src_arr
    if src.shape[0] != n:
        raise ValueError(f"got {src.shape[0]} numbers for {n} values")
    cdef mgf_node *o
    for i in range(n):
        o = &A.nodes[(<Value>items[i]).idx]
        if grad:
            o.grad = src[i]
        else:
            o.data = src[i]


def zero_grad(values):
    """Set every grad to 0.0."""
    cdef tuple items = _checked_values(values, "each item")
    cdef Py_ssize_t i
    for i in range(len(items)):
        A.nodes[(<Value>items[i]).idx].grad = 0.0


cdef bint _which(object which) except -1:
    if which == "data":
        return False
    if which == "grad":
        return True
    raise ValueError(f"which must be 'data' or 'grad', not {which!r}")


# module set-up: the lazily created attribute dict, and the sentinel node 0
# (a handle whose idx is 0 was never initialized)
cdef int _setup_value_type() except -1:
    cdef Value probe = Value.__new__(Value)
    mgf_install_dict(<PyTypeObject *>Value, <char *>&probe._dict - <char *><PyObject *>probe)
    mgf_install_dealloc(<PyTypeObject *>Value, &A,
                        <char *>&probe.idx - <char *><PyObject *>probe)
    mgf_slot_wrappers(<PyTypeObject *>Value, (
        "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
        "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__"), <PyTypeObject *>float)
    return mgf_open_type(<PyTypeObject *>Value)


_setup_value_type()
if mgf_resize_nodes(&A, MIN_CAP) < 0:
    raise MemoryError("micrograd_fast: cannot allocate the node arena")
mgf_push(&A, MGF_LEAF, float("nan"))
