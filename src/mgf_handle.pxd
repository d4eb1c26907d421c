# Declarations of csrc/mgf_handle.h for Cython (the CPython side of a
# Value handle: attribute dict, GC hooks, dealloc, late pins, open class).

from cpython.object cimport PyTypeObject
from libc.stdint cimport uint64_t

from mgf_core cimport mgf_arena


cdef extern from "mgf_handle.h":
    uint64_t mgf_handles_epoch
    void mgf_track(object o)
    void mgf_note_own_arith(PyTypeObject *t)
    bint mgf_own_arith(PyTypeObject *t)
    bint mgf_own_init_now()
    unsigned int mgf_type_tag(PyTypeObject *t)
    int mgf_install_dict(PyTypeObject *t, Py_ssize_t offset) except -1
    bint mgf_has_attrs(object o)
    void mgf_drop_dict(object o)
    int mgf_open_type(PyTypeObject *t) except -1
    int mgf_slot_wrappers(PyTypeObject *t, object names, PyTypeObject *model) except -1
    void mgf_state_added(object o)
    int mgf_install_handle(PyTypeObject *t, mgf_arena *A, object probe, tuple marks,
                           Py_ssize_t dict_offset) except -1
    object mgf_new_handle()
