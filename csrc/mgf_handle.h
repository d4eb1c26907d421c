/*
 * mgf_handle.h - the CPython side of a Value handle, in C.
 *
 * The one header of csrc/ that includes Python.h: what must run on a raw
 * (possibly dying) object, or must patch the Value type object, and so
 * cannot be written in Cython.  Its invariants:
 *  - a handle's attribute dict is a plain PyObject * field reached through
 *    tp_dictoffset, created on first use; traverse and clear visit it;
 *  - a handle is tracked by the cyclic GC only once it carries Python state
 *    (mgf_state_added), never before;
 *  - a handle leaves its arena slot (mgf_dealloc) before any weakref
 *    callback or finalizer of its dealloc can run;
 *  - a late pin (MGF_F_PINNED) is one strong reference, taken only on a
 *    node already used as a child, and released by reclamation alone.
 * Included once, by the compiled core (micrograd_fast/_engine.pyx).
 */
#ifndef MGF_HANDLE_H
#define MGF_HANDLE_H

#include <Python.h>
#include <structmember.h>
#include "mgf_core.h"

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

#endif /* MGF_HANDLE_H */
