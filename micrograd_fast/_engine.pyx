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
  a handle's ``__dealloc__`` clears the slot.  A handle never points at a
  freed or reused slot: handles are the roots of reclamation, and
  reclamation rewrites ``handle.idx`` when it moves a node.
* **Ownership.**  A node is alive while it is reachable from a live handle
  through child edges.  Nodes hold no Python references, except *pins*:
  when a node is used as a child and its handle carries Python state
  (a label, a custom ``_op``, a Python ``_backward``, instance attributes),
  the arena takes a strong reference to that handle (``MGF_F_PINNED``), so
  the state outlives the user's variable as long as a parent needs it.
  Reclamation drops the pin of a handle that no live node uses any more.
  Built-in ops create no reference cycles, so dropping the last handle of a
  graph makes it garbage without CPython's cyclic collector.
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
  Python code runs, so indices read in between stay valid.
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
    static PyObject *mgf_get_dict(PyObject *o, void *ctx) {
        PyObject *d = PyObject_GenericGetDict(o, ctx);
        if (d) mgf_track(o);
        return d;
    }
    static int mgf_set_dict(PyObject *o, PyObject *v, void *ctx) {
        int r = PyObject_GenericSetDict(o, v, ctx);
        if (r == 0) mgf_track(o);
        return r;
    }
    static int mgf_setattro(PyObject *o, PyObject *name, PyObject *v) {
        int r = PyObject_GenericSetAttr(o, name, v);
        if (r == 0 && *MGF_DICTPTR(o) != NULL) mgf_track(o);
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
            PyObject *w = PyDict_GetItemWithError(model->tp_dict, name);
            if (!w) { if (PyErr_Occurred()) return -1; continue; }
            if (Py_TYPE(w) != &PyWrapperDescr_Type) continue;
            struct wrapperbase *base = ((PyWrapperDescrObject *)w)->d_base;
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
    """
    void mgf_track(object o)
    void PyObject_GC_UnTrack(void *o)
    int mgf_install_dict(PyTypeObject *t, Py_ssize_t offset) except -1
    bint mgf_has_attrs(object o)
    void mgf_drop_dict(object o)
    int mgf_open_type(PyTypeObject *t) except -1
    int mgf_slot_wrappers(PyTypeObject *t, object names, PyTypeObject *model) except -1

__all__ = [
    "Value", "COMPILED", "vsum", "layer", "mlp", "mlp_plan", "MLPPlan", "sgd_update", "adam_update",
    "gather", "scatter", "zero_grad", "compact", "arena_stats",
]

COMPILED = True

# the arena and its bookkeeping ----------------------------------------------
cdef mgf_arena A
cdef int64_t MIN_CAP = 1 << 16
cdef int _busy = 0
cdef int64_t _compactions = 0

_OP_NAMES = {
    MGF_LEAF: "", MGF_ADD: "+", MGF_MUL: "*", MGF_POWV: "**", MGF_RELU: "ReLU",
    MGF_TANH: "tanh", MGF_EXP: "exp", MGF_LOG: "log", MGF_SIGMOID: "sigmoid",
    MGF_SUM: "sum", MGF_CUSTOM: "", MGF_LOCAL: "",
}
_ACT_NAMES = ("linear", "relu", "tanh", "sigmoid")


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
    cdef list released
    while A.n + nodes > A.cap:
        if _busy == 0 and A.n > 0:
            released = _compact()
            _fit_capacity(nodes)
            # dropping pins may run arbitrary Python code (finalizers), which
            # may allocate nodes: so check the room again
            released = None
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
    return 0


cdef list _compact():
    """Mark-compact: keep what handles reach, slide it down, remap indices.

    Returns the handles whose pins were dropped; the caller releases them
    once the arena is consistent."""
    global _compactions
    cdef int64_t n = A.n, i, j, e, t, le = 0, lo
    cdef uint32_t m
    cdef mgf_node *o
    cdef int32_t *ch
    cdef void *h
    cdef Value hv
    cdef uint8_t *keep = <uint8_t *>calloc(n if n > 0 else 1, 1)
    cdef int32_t *newidx = <int32_t *>malloc((n if n > 0 else 1) * sizeof(int32_t))
    if keep == NULL or newidx == NULL:
        free(keep)
        free(newidx)
        raise MemoryError("micrograd_fast: no memory to reclaim the node arena")
    # mark: bit 0 = alive, bit 1 = used by a live parent
    keep[0] = 1  # the sentinel
    for i in range(n - 1, -1, -1):
        if A.handles[i] != NULL:
            keep[i] |= 1
        if keep[i]:
            o = &A.nodes[i]
            ch = mgf_children(&A, o)
            for t in range(o.n):
                keep[ch[t]] |= 3
    released = []
    j = 0
    e = 0
    for i in range(n):
        if not keep[i]:
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
        h = A.handles[i]
        if j != i:
            A.nodes[j] = o[0]
            A.handles[j] = h
        if h != NULL:
            hv = <Value>h
            hv.idx = j
            o = &A.nodes[j]
            if o.flags & MGF_F_PINNED:
                if not (keep[i] & 2):
                    o.flags &= ~MGF_F_PINNED
                    released.append(hv)
                    Py_DECREF(hv)  # the list now holds what the pin held
            elif (keep[i] & 2) and (hv._stateful or mgf_has_attrs(hv)):
                Py_INCREF(hv)
                o.flags |= MGF_F_PINNED
        j += 1
    A.n = j
    A.ne = e
    A.nl = le
    free(keep)
    free(newidx)
    _compactions += 1
    MGF_CHECK_ARENA(&A, "after reclamation")
    return released


def compact():
    """Reclaim every node no live Value can reach, now.  Returns arena_stats().

    This happens by itself whenever the arena fills up; calling it is never
    needed, but it makes memory measurements exact."""
    if _busy:
        raise RuntimeError("cannot compact the arena during backward()")
    released = _compact()
    _fit_capacity(0)
    released = None
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
    """Sizes of the node arena: nodes in use, capacity, handles, pins, bytes."""
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


cdef inline void _pin(Value h) noexcept:
    """Called when h's node becomes a child: keep stateful handles alive."""
    cdef mgf_node *o
    if h._stateful or mgf_has_attrs(h):
        o = &A.nodes[h.idx]
        if not (o.flags & MGF_F_PINNED):
            Py_INCREF(h)
            o.flags |= MGF_F_PINNED


cdef inline Value _new_handle():
    """A fresh handle for the core's own use.  It holds no Python state, so
    it cannot be part of a reference cycle: the cyclic GC does not track it
    (a million live Values then cost the collector nothing).  _track()
    starts tracking a handle when it gets a label, a Python _backward or
    attributes."""
    cdef Value h = Value.__new__(Value)
    PyObject_GC_UnTrack(<void *>h)
    return h


cdef inline void _track(Value h) noexcept:
    h._stateful = True
    mgf_track(h)


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
    _pin(x)
    _pin(y)
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
    _pin(x)
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
    _pin(x)
    return out


cdef Value _pow_const(Value x, double e, bint int_exponent):
    """op_pow_const: x ** e for a number e (_op '**e')."""
    cdef double xd = A.nodes[x.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    return _unary(MGF_POWC, x, r, e, MGF_F_INTEXP if int_exponent else 0)


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
        if self.v.idx == 0:
            _uninitialized()
        mgf_local_backward(&A, self.v.idx)

    def __repr__(self):
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
        if h == NULL:
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


def _restore(data, grad, label):
    """Unpickling: a leaf with the saved data, grad and label (mirrors
    _rebuild_value); attributes follow through Value.__setstate__."""
    v = Value(data, label=label)
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
        if self.idx > 0 and A.handles[self.idx] == <void *>self:
            # __init__ called again: a fresh node; the old one is left as if
            # this handle had been dropped (see __dealloc__), and the Python
            # state starts over as in a new Value
            A.handles[self.idx] = NULL
            if A.nodes[self.idx].flags & MGF_F_PINNED:
                Py_DECREF(self)  # the caller still holds a reference
            A.nodes[self.idx].flags &= ~(MGF_F_PYBW | MGF_F_PINNED)
            self._bw = None
            self._label = None
            self._opname = None
            self._stateful = False
        _reserve(1, n if n > 2 else 0)
        if local and mgf_reserve_lg(&A, n) < 0:
            raise MemoryError("micrograd_fast: cannot grow the local gradient array")
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
        _register(self, i)
        if op_name:
            self._opname = op_name
            self._stateful = True
        if n and not local:
            self._stateful = True
        if label is not None and label != "":
            self._label = label
            self._stateful = True
        if not self._stateful and type(self) is Value and not mgf_has_attrs(self):
            PyObject_GC_UnTrack(<void *>self)  # see _new_handle
        for k in kids:
            _pin(<Value>k)

    def __dealloc__(self):
        cdef int64_t i = self.idx
        if 0 < i < A.n and A.handles[i] == <void *>self:
            A.handles[i] = NULL
            A.nodes[i].flags &= ~(MGF_F_PYBW | MGF_F_PINNED)
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
        return "" if self._label is None else self._label

    @label.setter
    def label(self, value):
        self._label = value
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
        if mgf_has_attrs(self):
            return (_restore, args, dict(<object>self._dict))
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

    Adds in order, like the builtin sum, so the data is the same; plain
    numbers are folded into the data and make no node (mirrors vsum)."""
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
    if isinstance(start, Value):
        _pin(<Value>start)
    for t in range(n):
        item = items[t]
        if isinstance(item, Value):
            _pin(<Value>item)
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


cdef class MLPPlan:
    """A checked, frozen stack of fused layers for mlp() (see mlp_plan).

    It holds its own references to the parameter Values (per layer, per
    neuron: w_0..w_{nin-1}, b), so the lists it was made from may change
    afterwards without touching it, and mlp() needs no checks per call."""
    cdef tuple params
    cdef PyObject **p
    cdef Py_ssize_t nl, n_in, n_out, maxw, nodes, edges
    cdef Py_ssize_t chain_nodes  # unfused: nodes made from Value inputs alone
    cdef Py_ssize_t *width  # nl + 1 widths, width[0] = n_in
    cdef int *act
    cdef int32_t *buf       # scratch: two rows of maxw + 1 node indices

    def __dealloc__(self):
        free(self.width)
        free(self.act)
        free(self.buf)

    @property
    def nin(self):
        return self.n_in

    @property
    def nout(self):
        return self.n_out

    def __len__(self):
        return self.nl

    def __repr__(self):
        sizes = [self.width[l] for l in range(self.nl + 1)]
        acts = [_ACT_NAMES[self.act[l]] for l in range(self.nl)]
        return f"MLPPlan(sizes={sizes}, acts={acts})"


def mlp_plan(spec, nin=None):
    """Check a stack of layers once, for repeated mlp() calls (mirrors mlp_plan).

    spec: sequence of (W, B, act) as for mlp().  nin: the input width
    (taken from the first weight row when not given).  The plan keeps the
    parameter Values it was given: make a new one when they are replaced."""
    layers = tuple(spec)
    cdef Py_ssize_t nl = len(layers), l, j, t, width, nout
    if nl == 0:
        raise ValueError("mlp needs at least one layer")
    cdef MLPPlan plan = MLPPlan.__new__(MLPPlan)
    plan.width = <Py_ssize_t *>malloc((nl + 1) * sizeof(Py_ssize_t))
    plan.act = <int *>malloc(nl * sizeof(int))
    if plan.width == NULL or plan.act == NULL:
        raise MemoryError("micrograd_fast: no memory for an mlp plan")
    if nin is None:
        try:
            width = len(tuple(tuple(layers[0])[0])[0])
        except (TypeError, IndexError, ValueError):
            width = 0
    else:
        width = nin
        if width < 0:
            raise ValueError("nin must not be negative")
    plan.nl = nl
    plan.n_in = plan.maxw = width
    items = []
    for l in range(nl):
        item = layers[l]
        if not isinstance(item, tuple) or len(item) != 3:
            raise TypeError("mlp: spec items must be (W, B, act) tuples")
        W, B, act = item
        rows = tuple(W)
        biases = tuple(B)
        nout = len(rows)
        if len(biases) != nout:
            raise ValueError(f"layer has {nout} weight rows but {len(biases)} biases")
        for j in range(nout):
            row = rows[j]
            if not isinstance(row, (list, tuple)):
                raise TypeError(f"weight rows must be lists or tuples, not {type(row).__name__}")
            row = tuple(row)
            if len(row) != width:
                raise ValueError(
                    f"neuron {j} has {len(row)} weights, expected {width} (one per input)")
            for w in row:
                _check_param(<PyObject *>w, "a weight")
            _check_param(<PyObject *>biases[j], "a bias")
            items.extend(row)
            items.append(biases[j])
        plan.act[l] = _act_code(act)
        plan.width[l] = width
        plan.edges += nout * (2 * width + 1)
        plan.nodes += nout
        plan.chain_nodes += nout * (2 * width + (plan.act[l] != MGF_ACT_LINEAR))
        width = nout
        if width > plan.maxw:
            plan.maxw = width
    plan.width[nl] = width
    plan.n_out = width
    plan.params = tuple(items)
    plan.p = PySequence_Fast_ITEMS(plan.params)
    plan.buf = <int32_t *>malloc(2 * (plan.maxw + 1) * sizeof(int32_t))
    if plan.buf == NULL:
        raise MemoryError("micrograd_fast: no memory for an mlp plan")
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
                _pin(<Value>xi[t])
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
                        _pin(<Value>p[k + t])
                    _pin(<Value>p[k + m_in])
                    acc = mgf_chain_neuron(&A, wbuf, cur, consts,
                                           <int32_t>(<Value>p[k + m_in]).idx,
                                           <uint32_t>m_in, &z)
                    if act != MGF_ACT_LINEAR:
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
                    _pin(<Value>p[k + t])
                ch[2 * m_in] = <int32_t>(<Value>p[k + m_in]).idx
                _pin(<Value>p[k + m_in])
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


cdef inline Py_ssize_t _check_state(params, double[::1] buf, str name) except -1:
    cdef Py_ssize_t n = len(params)
    if buf.shape[0] != n:
        raise ValueError(f"{name} has {buf.shape[0]} entries for {n} parameters")
    return n


def sgd_update(params, double lr, double momentum, double[::1] buf, bint first):
    """SGD step over params (mirrors sgd_update): p.data -= lr * g, or with
    momentum buf = momentum * buf + g (buf = g on the first step)."""
    if buf is None and momentum != 0.0:  # without momentum it may be None
        raise TypeError("momentum buffer must be a 1-D float64 NumPy array, not None")
    cdef Py_ssize_t i, n = len(params) if buf is None else _check_state(params, buf, "momentum buffer")
    _check_values(params, n, "a parameter")  # all or nothing: check before updating
    cdef Value p
    cdef mgf_node *o
    cdef double g
    for i in range(n):
        p = _as_value(params[i], "a parameter")
        o = &A.nodes[p.idx]
        g = o.grad
        if momentum == 0.0:
            o.data = o.data - lr * g
        else:
            buf[i] = g if first else momentum * buf[i] + g
            o.data = o.data - lr * buf[i]


def adam_update(params, double[::1] m, double[::1] v, double t, double lr,
                double beta1, double beta2, double eps, double weight_decay,
                bint decoupled):
    """Adam / AdamW step over params (mirrors adam_update); t is the 1-based
    step number."""
    cdef Py_ssize_t i, n = _check_state(params, m, "first moment")
    _check_state(params, v, "second moment")
    if not t >= 1.0:
        raise ValueError(f"adam step number must be >= 1, not {t!r}")
    cdef double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t)
    if bc1 == 0.0 or bc2 == 0.0:
        raise ZeroDivisionError("adam bias correction is zero (beta1 or beta2 ** t == 1)")
    _check_values(params, n, "a parameter")  # all or nothing: check before updating
    cdef double g, mhat, vhat, upd
    cdef Value p
    cdef mgf_node *o
    for i in range(n):
        p = _as_value(params[i], "a parameter")
        o = &A.nodes[p.idx]
        g = o.grad
        if not decoupled and weight_decay != 0.0:
            g = g + weight_decay * o.data
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * (g * g)
        mhat = m[i] / bc1
        vhat = v[i] / bc2
        upd = mhat / (sqrt(vhat) + eps)
        if decoupled:
            upd = upd + weight_decay * o.data
        o.data = o.data - lr * upd


def gather(values, which="data"):
    """The data (or grads) of values as a float64 NumPy array."""
    import numpy
    cdef Py_ssize_t i, n = len(values)
    cdef bint grad = _which(which)
    out = numpy.empty(n, dtype=numpy.float64)
    cdef double[::1] dst = out
    cdef Value p
    for i in range(n):
        p = _as_value(values[i], "each item")
        dst[i] = A.nodes[p.idx].grad if grad else A.nodes[p.idx].data
    return out


def scatter(values, array, which="data"):
    """Write array into the data (or grads) of values."""
    import numpy
    cdef Py_ssize_t i, n = len(values)
    cdef bint grad = _which(which)
    src_arr = numpy.ascontiguousarray(array, dtype=numpy.float64)
    if src_arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got {src_arr.ndim} dimensions")
    cdef double[::1] src = src_arr
    if src.shape[0] != n:
        raise ValueError(f"got {src.shape[0]} numbers for {n} values")
    _check_values(values, n, "each item")  # all or nothing: check before writing
    cdef Value p
    for i in range(n):
        p = _as_value(values[i], "each item")
        if grad:
            A.nodes[p.idx].grad = src[i]
        else:
            A.nodes[p.idx].data = src[i]


def zero_grad(values):
    """Set every grad to 0.0."""
    cdef Value p
    items = tuple(values)
    _check_values(items, len(items), "each item")  # all or nothing
    for v in items:
        p = <Value>v
        A.nodes[p.idx].grad = 0.0


cdef int _check_values(object values, Py_ssize_t n, str what) except -1:
    """TypeError (or RuntimeError) unless values[0..n) are all initialized Values."""
    cdef Py_ssize_t i
    for i in range(n):
        _as_value(values[i], what)
    return 0


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
    mgf_slot_wrappers(<PyTypeObject *>Value, (
        "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
        "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__neg__"), <PyTypeObject *>float)
    return mgf_open_type(<PyTypeObject *>Value)


_setup_value_type()
if mgf_resize_nodes(&A, MIN_CAP) < 0:
    raise MemoryError("micrograd_fast: cannot allocate the node arena")
mgf_push(&A, MGF_LEAF, float("nan"))
