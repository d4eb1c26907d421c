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
 *    node already used as a child, and released or handed over to the
 *    handles above (mgf_hand_over_pins) by reclamation alone;
 *  - the short paths of a + b and a * b (mgf_nb_add, mgf_nb_mul) and of
 *    Value(data) and Value(data, children, local_grads) (mgf_value_call)
 *    run no Python code and allocate nothing: they use a handle from the
 *    freelist and room the arena already has, or leave the whole call to
 *    the general slot;
 *  - calling the class honours a replaced __new__ or __init__, as for any
 *    class, and the composite operators a replaced or overridden +, *, **
 *    or unary - (mgf_own_arith);
 *  - mgf_handles_epoch moves at every event that can give a live handle
 *    another node or make it keeping (see there).
 * Included once, by the compiled core (micrograd_fast/_engine.pyx).
 */
#ifndef MGF_HANDLE_H
#define MGF_HANDLE_H

#include <Python.h>
#include <structmember.h>
#include "mgf_core.h"

/* The C code below works on raw handles (a dying one in dealloc: no new
 * reference may be taken to it), through mgf_handle, a mirror of the struct Cython makes
 * for Value (micrograd_fast/_engine.pxd); mgf_install_handle checks at
 * module init that the two agree, field by field. */
typedef struct {
    PyObject_HEAD
    int64_t idx;
    PyObject *bw, *label, *opname;
    int stateful;
    PyObject *keep;
    PyObject *dict;
    PyObject *weakref;
} mgf_handle;
#define MGF_H(o) ((mgf_handle *)(o))

static mgf_arena *mgf_A;
static PyTypeObject *mgf_value_type;
static destructor mgf_base_dealloc;

/* Instance attributes of Value live in a dict that is created only when
 * the first attribute is set (a per-handle dict would cost more than the
 * whole op).  The slot is a plain PyObject* field reached through
 * tp_dictoffset; these wrappers add it to the GC's traverse and clear. */
static traverseproc mgf_base_traverse;
static inquiry mgf_base_clear;

static int mgf_traverse(PyObject *o, visitproc visit, void *arg) {
    Py_VISIT(MGF_H(o)->dict);
    return mgf_base_traverse ? mgf_base_traverse(o, visit, arg) : 0;
}
static int mgf_clear(PyObject *o) {
    Py_CLEAR(MGF_H(o)->dict);
    return mgf_base_clear ? mgf_base_clear(o) : 0;
}
/* Whether the cyclic GC tracks o, without a call into the interpreter:
 * on the default builds of CPython the GC's header is the two words just
 * before the object, the first of them nonzero exactly while the object
 * is tracked.  mgf_install_handle checks this on a probe and keeps the
 * C-API call when it does not hold. */
static int mgf_gc_head_ok;
static inline int mgf_is_tracked(PyObject *o) {
#ifndef Py_GIL_DISABLED
    if (mgf_gc_head_ok) return ((const uintptr_t *)o)[-2] != 0;
#endif
    return PyObject_GC_IsTracked(o);
}
/* mgf_handles_epoch counts the events after which a live handle may
 * have another node or have become keeping: a reclamation (it moves
 * nodes and rewrites handle.idx), __init__ called again on a handle, and
 * a handle getting Python state (a label, an _op, a _backward,
 * attributes, handles to keep: every such handle passes mgf_track).
 * What an MLPPlan read from its parameter handles holds while the count
 * has not moved. */
static uint64_t mgf_handles_epoch = 1;
/* A handle is tracked by the cyclic GC only while it carries Python
 * state (see _track): these hooks start tracking it when it gets an
 * attribute dict. */
static inline void mgf_track(PyObject *o) {
    mgf_handles_epoch++;
    if (!mgf_is_tracked(o)) PyObject_GC_Track(o);
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

/* `v.data = x` and `v.grad = x`, with x an exact float or int, on a
 * handle of exact type Value without an attribute dict, while the class
 * still has its own data and grad descriptors: the store itself, without
 * the generic attribute protocol (type lookup, descriptor call, argument
 * conversion).  It does what the descriptors' setters (_value.pxi) do for
 * such a number; everything else takes the generic path.  The class is
 * open (its attributes can be replaced): mgf_fast_tag is the class's
 * version tag at which data and grad were last seen to be its own, and
 * any change to the class changes the tag.
 *
 * Reads have no such path on purpose.  A tp_getattro of our own would
 * return v.data in about 110 fewer instructions, but CPython looks
 * methods up without making a bound method (and specializes that lookup)
 * only on types whose tp_getattro is PyObject_GenericGetAttr: with ours,
 * every v.relu(), v.exp() or loss.backward() call would cost about 330
 * instructions more, a net loss on upstream's nn.py, whose forward pass
 * calls relu() once per neuron and point. */
static PyObject *mgf_str_data, *mgf_str_grad, *mgf_own_data, *mgf_own_grad;
static unsigned int mgf_fast_tag;

static inline int mgf_tag_valid(PyTypeObject *t) {
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (!(t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) return 0;
#endif
    return t->tp_version_tag != 0;
}
/* After a store that took the generic path (the lookup it made gave the
 * class a valid version tag): note the tag if data and grad are ours. */
static void mgf_refresh_fast_tag(PyTypeObject *t) {
    PyObject *d, *g;
    mgf_fast_tag = 0;
    if (!mgf_own_data || !mgf_tag_valid(t)) return;
    d = PyDict_GetItemWithError(t->tp_dict, mgf_str_data);
    g = d ? PyDict_GetItemWithError(t->tp_dict, mgf_str_grad) : NULL;
    if (!g) {
        PyErr_Clear();
        return;
    }
    if (d == mgf_own_data && g == mgf_own_grad) mgf_fast_tag = t->tp_version_tag;
}
static int mgf_setattro(PyObject *o, PyObject *name, PyObject *v) {
    int r;
    if ((name == mgf_str_grad || name == mgf_str_data) && Py_TYPE(o) == mgf_value_type) {
        PyTypeObject *t = Py_TYPE(o);
        int64_t i = MGF_H(o)->idx;
        int own = mgf_fast_tag != 0 && t->tp_version_tag == mgf_fast_tag && mgf_tag_valid(t);
        if (own && v != NULL && i > 0 && MGF_H(o)->dict == NULL) {
            double x;
            if (PyFloat_CheckExact(v)) {
                x = PyFloat_AS_DOUBLE(v);
            } else if (PyLong_CheckExact(v)) {
                x = PyLong_AsDouble(v);  /* OverflowError past the doubles, as float(v) */
                if (x == -1.0 && PyErr_Occurred()) return -1;
            } else {
                goto generic;
            }
            if (name == mgf_str_grad)
                mgf_A->nodes[i].grad = x;
            else
                mgf_A->nodes[i].data = x;
            return 0;
        }
        r = PyObject_GenericSetAttr(o, name, v);
        /* a handle with a dict stores here on every call: look at the class
         * again only when its tag is not the one already known to be ours */
        if (r == 0 && !own) mgf_refresh_fast_tag(t);
        goto done;
    }
generic:
    r = PyObject_GenericSetAttr(o, name, v);
done:
    if (r == 0 && MGF_H(o)->dict != NULL) mgf_state_added(o);
    return r;
}
static PyGetSetDef mgf_dict_getset = {
    "__dict__", mgf_get_dict, mgf_set_dict, NULL, NULL};

static int mgf_install_dict(PyTypeObject *t, Py_ssize_t offset) {
    if (offset != (Py_ssize_t)offsetof(mgf_handle, dict)) {
        PyErr_SetString(PyExc_SystemError, "micrograd_fast: Value's dict slot moved");
        return -1;
    }
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
/* 1 if the handle may have user attributes: it has an attribute dict.
 * An empty one counts, since attributes can reach it without a setattr
 * (d = v.__dict__, made before v became a child, then d['x'] = ...): a
 * parent must keep such a handle, and the cyclic GC must see it. */
static inline int mgf_has_attrs(PyObject *o) {
    return MGF_H(o)->dict != NULL;
}
static inline void mgf_drop_dict(PyObject *o) { Py_CLEAR(MGF_H(o)->dict); }

/* Make a static type extensible from Python: PyType_Ready marks every
 * static type immutable; without the flag, type.__setattr__ stores into
 * the type's dict, bumps its version and updates the slots (update_slot)
 * exactly as for a class statement's type. */
static int mgf_open_type(PyTypeObject *t) {
    t->tp_flags &= ~Py_TPFLAGS_IMMUTABLETYPE;
    PyType_Modified(t);
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


/* Plain handles are recycled.  A handle of exact type Value that carries
 * nothing (no Python state, no attribute dict, no weak references, not
 * tracked by the cyclic GC) is kept here when it dies, its four object
 * fields still None, instead of going through Cython's dealloc; the core
 * takes its new handles from here, untracked.  So the plain op path never
 * touches the cyclic GC, and making a handle costs a pop and a reset. */
#define MGF_FREELIST 2048
static PyObject *mgf_free_handles[MGF_FREELIST];
static int mgf_nfree;

/* A handle from the freelist comes back to life. */
static inline PyObject *mgf_revive(void) {
    PyObject *o = mgf_free_handles[--mgf_nfree];
#if defined(Py_REF_DEBUG) || defined(Py_TRACE_REFS) || defined(Py_GIL_DISABLED)
    (void)PyObject_Init(o, mgf_value_type);
#else
    /* its type is Value already (static: no reference to take), so coming
     * back to life is only the reference count */
    Py_SET_REFCNT(o, 1);
#endif
    return o;
}

/* A fresh handle for the core's own use (see _new_handle): idx 0, no
 * Python state, not tracked by the cyclic GC.  NULL with an exception
 * set when memory runs out. */
static inline PyObject *mgf_new_handle(void) {
    PyObject *o;
    if (mgf_nfree > 0) {
        o = mgf_revive();
        MGF_H(o)->idx = 0;
        return o;
    }
    o = (PyObject *)PyObject_GC_New(mgf_handle, mgf_value_type);  /* untracked */
    if (!o) return NULL;
    mgf_handle *h = MGF_H(o);
    h->idx = 0;
    Py_INCREF(Py_None); h->bw = Py_None;
    Py_INCREF(Py_None); h->label = Py_None;
    Py_INCREF(Py_None); h->opname = Py_None;
    h->stateful = 0;
    Py_INCREF(Py_None); h->keep = Py_None;
    h->dict = NULL;
    h->weakref = NULL;
    return o;
}

/* a + b and a * b on two plain Values (or a plain Value and a float or an
 * int), the bulk of any scalar program: the
 * number slots of Value check for that case first and make the node here,
 * in one piece of C, without the general slot of the compiled class
 * (operand dispatch, the method, _binary).  Plain means: exact type
 * Value, initialised, neither of them keeping (no Python state, no
 * attributes: see Ownership), a handle waiting on the freelist and room
 * in the arena.  The node is the one _binary makes, with the same data;
 * every other case goes to the general slot, saved here at module set-up
 * (mgf_install_handle), which also raises the errors. */
static binaryfunc mgf_general_add, mgf_general_mul;

/* Value's own __init__ (saved at set-up): while the class has it, the
 * operators make their result nodes without calling it; once it is
 * replaced (or deleted), upstream's operators, which make their results
 * with Value(...), would run the replacement, so ours do too (_by_init). */
static initproc mgf_own_init;
static inline int mgf_own_init_now(void) {
    return mgf_value_type->tp_init == mgf_own_init;
}
static inline int mgf_plain_operand(mgf_handle *h) {
    return h->idx > 0 && !h->stateful && !mgf_has_attrs((PyObject *)h);  /* see _keeping */
}
static inline PyObject *mgf_plain_binary(uint8_t op, PyObject *a, PyObject *b) {
    mgf_handle *x = MGF_H(a), *y = MGF_H(b);
    mgf_arena *A = mgf_A;
    if (!mgf_plain_operand(x) || !mgf_plain_operand(y) || mgf_nfree == 0 || A->n >= A->cap
        || !mgf_own_init_now())
        return NULL;
    int64_t ix = x->idx, iy = y->idx;
    double xd = A->nodes[ix].data, yd = A->nodes[iy].data;
    PyObject *o = mgf_revive();
    int64_t i = mgf_push_node(A, op, op == MGF_ADD ? xd + yd : xd * yd, 2, (int32_t)ix,
                              (int32_t)iy);
    A->handles[i] = (void *)o;
    MGF_H(o)->idx = i;
    A->nodes[ix].flags |= MGF_F_USED;
    A->nodes[iy].flags |= MGF_F_USED;
    return o;
}
/* A float (a subclass such as numpy.float64 too: its double is read as
 * PyFloat_AsDouble reads it, without calling any method) or an exact int. */
static inline int mgf_plain_number(PyObject *v, double *out) {
    if (PyFloat_Check(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    if (PyLong_CheckExact(v)) {
        *out = PyLong_AsDouble(v);  /* past the doubles: the general call raises */
        if (*out == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return 1;
    }
    return 0;
}
/* A plain Value and a number (a float, a float subclass, an exact int),
 * in either order: the node's second child is a new leaf holding the
 * number (what _binary_const makes, reading the same double; the
 * reflected forms give the same node, the Value first). */
static inline PyObject *mgf_plain_const(uint8_t op, PyObject *v, PyObject *num) {
    mgf_handle *x = MGF_H(v);
    mgf_arena *A = mgf_A;
    double c;
    if (!mgf_plain_operand(x) || mgf_nfree == 0 || A->n + 2 > A->cap || !mgf_own_init_now()
        || !mgf_plain_number(num, &c))  /* past the doubles: the general slot raises */
        return NULL;
    int64_t ix = x->idx;
    double xd = A->nodes[ix].data;
    PyObject *o = mgf_revive();
    int64_t k = mgf_push_node(A, MGF_LEAF, c, 0, 0, 0);
    int64_t i = mgf_push_node(A, op, op == MGF_ADD ? xd + c : xd * c, 2, (int32_t)ix,
                              (int32_t)k);
    A->handles[i] = (void *)o;
    MGF_H(o)->idx = i;
    A->nodes[ix].flags |= MGF_F_USED;
    return o;
}
#define MGF_PLAIN_NUMBER(o) (PyFloat_Check(o) || PyLong_CheckExact(o))

/* The composite operators (unary -, a - b, a / b and the reflected forms)
 * build their nodes directly while the class's +, *, ** and unary - are the
 * core's own.  Once one of those is replaced on the class, or overridden
 * by a subclass, they are made from the operators the class has, as
 * upstream writes them (a - b is a + (-b), 2 + a is a + 2, ...), so the
 * replacement runs: mgf_plain_mixed leaves a number + Value and a number
 * * Value to the general slot then, whose __radd__ and __rmul__ do that.
 * mgf_note_own_arith records the core's slots once the class is set up. */
static binaryfunc mgf_own_add, mgf_own_mul;
static ternaryfunc mgf_own_pow;
static unaryfunc mgf_own_neg;
static void mgf_note_own_arith(PyTypeObject *t) {
    mgf_own_add = t->tp_as_number->nb_add;
    mgf_own_mul = t->tp_as_number->nb_multiply;
    mgf_own_pow = t->tp_as_number->nb_power;
    mgf_own_neg = t->tp_as_number->nb_negative;
}
/* 1 if objects of type t add, multiply, raise and negate with the core's
 * own slots, and Value's __init__ is its own. */
static inline int mgf_own_arith(PyTypeObject *t) {
    const PyNumberMethods *nm = t->tp_as_number;
    return nm != NULL && nm->nb_add == mgf_own_add && nm->nb_multiply == mgf_own_mul
           && nm->nb_power == mgf_own_pow && nm->nb_negative == mgf_own_neg
           && mgf_own_init_now();
}

/* The type's version tag, or 0 when it has no valid one: CPython gives a
 * type a new tag (lazily, on a look-up through the type) whenever its dict
 * changes, so an unchanged tag means nothing was assigned to the class
 * since. */
static inline unsigned int mgf_type_tag(PyTypeObject *t) {
    return mgf_tag_valid(t) ? t->tp_version_tag : 0;
}

/* Out of line: the two-Value case stays short. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static PyObject *mgf_plain_mixed(uint8_t op, PyObject *a, PyObject *b) {
    if (Py_TYPE(a) == mgf_value_type) {
        if (MGF_PLAIN_NUMBER(b)) return mgf_plain_const(op, a, b);
    } else if (Py_TYPE(b) == mgf_value_type && MGF_PLAIN_NUMBER(a)
               && mgf_own_arith(mgf_value_type)) {
        return mgf_plain_const(op, b, a);
    }
    return NULL;
}
static PyObject *mgf_nb_add(PyObject *a, PyObject *b) {
    PyObject *r = Py_TYPE(a) == mgf_value_type && Py_TYPE(b) == mgf_value_type
                      ? mgf_plain_binary(MGF_ADD, a, b)
                      : mgf_plain_mixed(MGF_ADD, a, b);
    return r ? r : mgf_general_add(a, b);
}
static PyObject *mgf_nb_mul(PyObject *a, PyObject *b) {
    PyObject *r = Py_TYPE(a) == mgf_value_type && Py_TYPE(b) == mgf_value_type
                      ? mgf_plain_binary(MGF_MUL, a, b)
                      : mgf_plain_mixed(MGF_MUL, a, b);
    return r ? r : mgf_general_mul(a, b);
}

/* Calling the class.  Value(data) with data a float or an exact int, and
 * microgpt's Value(data, children, local_grads) with exact tuples of one
 * to MGF_PLAIN_KIDS plain Values and as many floats or exact ints, make
 * their node here, in one piece of C: the leaf, or the MGF_LOCAL node,
 * that Value.__init__ makes from the same arguments, on a handle from the
 * freelist and in room the arena has (no reclamation, no growth).  Every
 * other call goes to the class's general call (mgf_general_call, saved at
 * set-up), which parses the arguments and raises the errors.
 *
 * The class is open: once __new__ or __init__ is replaced (its tp_new or
 * tp_init is no longer the one saved at set-up), a call does what calling
 * any class does, tp_new then tp_init, so the replacement runs.  The
 * general call Cython makes for the class would call the original
 * __init__ directly.
 *
 * Restoring __init__ puts the original tp_init back (update_slot knows its
 * wrapper).  Restoring __new__ does not: CPython keeps the generic slot.
 * So a call that finds the original __new__ back in the class puts tp_new
 * back too.
 *
 * The class's __new__ is mgf_new_entry, not the wrapper CPython makes for
 * a static type's tp_new: that wrapper calls the class's current tp_new,
 * which is the generic slot while __new__ is replaced, and its safety check
 * then refuses the call, so a replacement could not hand over to the
 * original (`saved(cls)`), nor could a subclass reach it (the generic slot
 * of a subclass calls the __new__ it finds) before a call of Value itself
 * put tp_new back.  mgf_new_entry makes the handle with the class's own
 * tp_new whatever the slot holds.  CPython gives a subclass whose __new__
 * is that of a class written in C its base's tp_new; for this one it gives
 * the generic slot, so mgf_new_entry puts the base's back on the first
 * call that comes through it. */
#define MGF_PLAIN_KIDS 8
static vectorcallfunc mgf_general_call;
static newfunc mgf_own_new;
static PyObject *mgf_str_new, *mgf_own_new_obj;

/* Value.__new__(cls, *args, **kwargs). */
static PyObject *mgf_new_entry(PyObject *self, PyObject *args, PyObject *kwds) {
    PyObject *sub, *rest, *r;
    PyTypeObject *st;
    (void)self;
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_Format(PyExc_TypeError, "%s.__new__(): not enough arguments",
                     mgf_value_type->tp_name);
        return NULL;
    }
    sub = PyTuple_GET_ITEM(args, 0);
    if (!PyType_Check(sub)) {
        PyErr_Format(PyExc_TypeError, "%s.__new__(X): X is not a type object (%s)",
                     mgf_value_type->tp_name, Py_TYPE(sub)->tp_name);
        return NULL;
    }
    st = (PyTypeObject *)sub;
    if (!PyType_IsSubtype(st, mgf_value_type)) {
        PyErr_Format(PyExc_TypeError, "%s.__new__(%s): %s is not a subtype of %s",
                     mgf_value_type->tp_name, st->tp_name, st->tp_name,
                     mgf_value_type->tp_name);
        return NULL;
    }
    if (st != mgf_value_type && st->tp_new != mgf_own_new && mgf_str_new
        && _PyType_Lookup(st, mgf_str_new) == mgf_own_new_obj) {
        /* a subclass that inherits this __new__: its base's tp_new */
        st->tp_new = mgf_own_new;
        PyType_Modified(st);
    }
    rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (!rest) return NULL;
    r = mgf_own_new(st, rest, kwds);
    Py_DECREF(rest);
    return r;
}
static PyMethodDef mgf_new_def = {
    "__new__", (PyCFunction)(void (*)(void))mgf_new_entry, METH_VARARGS | METH_KEYWORDS,
    "Create and return a new object.  See help(type) for accurate signature."};

static void mgf_repair_new(PyTypeObject *t) {
    PyObject *cur = mgf_own_new_obj ? PyDict_GetItemWithError(t->tp_dict, mgf_str_new) : NULL;
    if (cur == mgf_own_new_obj && cur != NULL) {
        t->tp_new = mgf_own_new;
        PyType_Modified(t);
    }
    PyErr_Clear();
}

static PyObject *mgf_plain_new(PyObject *const *args, Py_ssize_t nargs) {
    mgf_arena *A = mgf_A;
    double x, lg[MGF_PLAIN_KIDS];
    int32_t kid[MGF_PLAIN_KIDS];
    Py_ssize_t n = 0, t;
    if (mgf_nfree == 0 || A->n >= A->cap || !mgf_plain_number(args[0], &x)) return NULL;
    if (nargs == 3) {
        PyObject *kids = args[1], *lgs = args[2];
        if (!PyTuple_CheckExact(kids) || !PyTuple_CheckExact(lgs)) return NULL;
        n = PyTuple_GET_SIZE(kids);
        if (n == 0 || n > MGF_PLAIN_KIDS || PyTuple_GET_SIZE(lgs) != n
            || A->nl + n > A->lcap || (n > 2 && A->ne + n > A->ecap))
            return NULL;
        for (t = 0; t < n; t++) {
            PyObject *k = PyTuple_GET_ITEM(kids, t);
            if (Py_TYPE(k) != mgf_value_type || !mgf_plain_operand(MGF_H(k))
                || !mgf_plain_number(PyTuple_GET_ITEM(lgs, t), &lg[t]))
                return NULL;
            kid[t] = (int32_t)MGF_H(k)->idx;
        }
    } else if (nargs != 1) {
        return NULL;
    }
    PyObject *o = mgf_revive();
    int64_t i;
    if (n == 0) {
        i = mgf_push_node(A, MGF_LEAF, x, 0, 0, 0);
    } else {
        mgf_node *nd;
        i = mgf_push_node(A, MGF_LOCAL, x, (uint32_t)n, kid[0], n == 2 ? kid[1] : 0);
        nd = &A->nodes[i];
        nd->param = (double)A->nl;
        memcpy(A->lg + A->nl, lg, (size_t)n * sizeof(double));
        A->nl += n;
        if (n > 2) {
            nd->k.off = A->ne;
            memcpy(A->edges + A->ne, kid, (size_t)n * sizeof(int32_t));
            A->ne += n;
        }
        for (t = 0; t < n; t++) A->nodes[kid[t]].flags |= MGF_F_USED;
    }
    A->handles[i] = (void *)o;
    MGF_H(o)->idx = i;
    return o;
}
/* What calling a class does (tp_new, then tp_init), for a Value class
 * whose __new__ or __init__ has been replaced. */
static PyObject *mgf_call_slots(PyObject *cls, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames) {
    Py_ssize_t j, nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *tup = PyTuple_New(nargs), *kw = NULL, *r = NULL;
    if (!tup) return NULL;
    for (j = 0; j < nargs; j++) {
        Py_INCREF(args[j]);
        PyTuple_SET_ITEM(tup, j, args[j]);
    }
    if (nkw) {
        kw = PyDict_New();
        if (!kw) goto done;
        for (j = 0; j < nkw; j++)
            if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, j), args[nargs + j]) < 0) goto done;
    }
    r = PyType_Type.tp_call(cls, tup, kw);
done:
    Py_DECREF(tup);
    Py_XDECREF(kw);
    return r;
}
static PyObject *mgf_value_call(PyObject *cls, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    PyTypeObject *t = (PyTypeObject *)cls;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (t == mgf_value_type && t->tp_new != mgf_own_new) mgf_repair_new(t);
    if (t == mgf_value_type && t->tp_new == mgf_own_new && t->tp_init == mgf_own_init) {
        if ((nargs == 1 || nargs == 3) && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
            PyObject *r = mgf_plain_new(args, nargs);
            if (r) return r;
        }
        if (mgf_general_call) return mgf_general_call(cls, args, nargsf, kwnames);
    }
    /* (also when Cython made no call of its own for the class) */
    return mgf_call_slots(cls, args, nargs, kwnames);
}

/* Value's tp_dealloc: the handle leaves its arena slot first, so that no
 * weakref callback or finalizer run by the dealloc can reach it through
 * the arena (e.g. through a parent's _prev); then a plain handle goes to
 * the freelist and any other to Cython's dealloc. */
static void mgf_dealloc(PyObject *o) {
    mgf_handle *h = MGF_H(o);
    int64_t i = h->idx;
    if (i > 0 && i < mgf_A->n && mgf_A->handles[i] == (void *)o) {
        mgf_A->handles[i] = NULL;
        mgf_A->nodes[i].flags &= ~(MGF_F_PYBW | MGF_F_PINNED);
    }
    /* a handle whose _stateful is false has None in _bw, _label, _opname
     * and _keep: whatever stores an object there sets _stateful */
    if (!h->stateful && h->dict == NULL && h->weakref == NULL && Py_TYPE(o) == mgf_value_type
        && mgf_nfree < MGF_FREELIST && !mgf_is_tracked(o)) {
        MGF_ASSERT(h->keep == Py_None && h->bw == Py_None && h->label == Py_None
                   && h->opname == Py_None);
        mgf_free_handles[mgf_nfree++] = o;
        return;
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
    i = MGF_H(o)->idx;
    if (i > 0 && i < mgf_A->n && mgf_A->handles[i] == (void *)o) {
        mgf_node *n = &mgf_A->nodes[i];
        if ((n->flags & MGF_F_USED) && !(n->flags & MGF_F_PINNED)) {
            Py_INCREF(o);
            n->flags |= MGF_F_PINNED;
        }
    }
}
/* Module init: check that mgf_handle mirrors Cython's struct for Value
 * (probe: a Value whose idx is 0x5EED, _stateful true and whose _bw,
 * _label, _opname and _keep are the four objects of marks), then install
 * the dealloc. */
static int mgf_install_handle(PyTypeObject *t, mgf_arena *A, PyObject *probe,
                              PyObject *marks, Py_ssize_t dict_offset) {
    mgf_handle *h = MGF_H(probe);
    if (t->tp_basicsize != (Py_ssize_t)sizeof(mgf_handle)
        || t->tp_weaklistoffset != (Py_ssize_t)offsetof(mgf_handle, weakref)
        || dict_offset != (Py_ssize_t)offsetof(mgf_handle, dict)
        || !PyTuple_Check(marks) || PyTuple_GET_SIZE(marks) != 4
        || h->idx != 0x5EED || h->stateful != 1
        || h->bw != PyTuple_GET_ITEM(marks, 0) || h->label != PyTuple_GET_ITEM(marks, 1)
        || h->opname != PyTuple_GET_ITEM(marks, 2) || h->keep != PyTuple_GET_ITEM(marks, 3)) {
        PyErr_SetString(PyExc_SystemError,
                        "micrograd_fast: Value's fields (micrograd_fast/_engine.pxd) do not "
                        "match mgf_handle (csrc/mgf_handle.h)");
        return -1;
    }
    mgf_str_data = PyUnicode_InternFromString("data");
    mgf_str_grad = PyUnicode_InternFromString("grad");
    if (!mgf_str_data || !mgf_str_grad) return -1;
    mgf_own_data = PyDict_GetItemWithError(t->tp_dict, mgf_str_data);
    mgf_own_grad = mgf_own_data ? PyDict_GetItemWithError(t->tp_dict, mgf_str_grad) : NULL;
    if (!mgf_own_grad) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "micrograd_fast: Value has no data or grad");
        mgf_own_data = mgf_own_grad = NULL;
        return -1;
    }
    {   /* the GC header where mgf_is_tracked looks for it? */
        int was = PyObject_GC_IsTracked(probe), on, off;
        mgf_gc_head_ok = 0;
        if (!was) PyObject_GC_Track(probe);
        on = PyObject_GC_IsTracked(probe) && ((const uintptr_t *)probe)[-2] != 0;
        PyObject_GC_UnTrack(probe);
        off = !PyObject_GC_IsTracked(probe) && ((const uintptr_t *)probe)[-2] == 0;
        if (was) PyObject_GC_Track(probe);
        mgf_gc_head_ok = on && off;
    }
    Py_INCREF(mgf_own_data);  /* kept for the life of the process */
    Py_INCREF(mgf_own_grad);
    mgf_A = A;
    mgf_value_type = t;
    mgf_base_dealloc = t->tp_dealloc;
    t->tp_dealloc = mgf_dealloc;
    /* before mgf_slot_wrappers, so that __add__ and __mul__ wrap these */
    if (t->tp_as_number && t->tp_as_number->nb_add && t->tp_as_number->nb_multiply) {
        mgf_general_add = t->tp_as_number->nb_add;
        mgf_general_mul = t->tp_as_number->nb_multiply;
        t->tp_as_number->nb_add = mgf_nb_add;
        t->tp_as_number->nb_multiply = mgf_nb_mul;
    }
    mgf_own_new = t->tp_new;
    mgf_own_init = t->tp_init;
    mgf_str_new = PyUnicode_InternFromString("__new__");
    if (!mgf_str_new) return -1;
    /* kept for the life of the process (see mgf_new_entry) */
    mgf_own_new_obj = PyCFunction_NewEx(&mgf_new_def, (PyObject *)t, NULL);
    if (!mgf_own_new_obj || PyDict_SetItem(t->tp_dict, mgf_str_new, mgf_own_new_obj) < 0)
        return -1;
    mgf_general_call = t->tp_vectorcall;
    t->tp_vectorcall = mgf_value_call;
    PyType_Modified(t);
    return 0;
}

#endif /* MGF_HANDLE_H */
