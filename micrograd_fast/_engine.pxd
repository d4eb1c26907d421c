# The compiled core's Value handle, for other Cython modules to cimport.

from cpython.object cimport PyObject
from libc.stdint cimport int64_t


cdef class Value:
    cdef int64_t idx          # the node this handle stands for (0: none yet)
    cdef object _bw           # a Python _backward assigned by the user, or None
    cdef object _label        # label, or None for ''
    cdef object _opname       # _op given to the constructor, or None
    cdef bint _stateful       # keeping: carries Python state or keeps other handles
    cdef object _keep         # None, or a tuple of the keeping child handles it keeps alive
    cdef PyObject *_dict      # instance attributes, created on first use
    cdef object __weakref__
