# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# optimizer updates and array kernels over parameter lists.

_F64_FORMATS = frozenset(("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d"))


cdef double[::1] _check_state(object arr, Py_ssize_t n, str name):
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


cdef tuple _check_values(object values, str what):
    """One private snapshot of values (any iterable), every item an
    initialized Value (TypeError / RuntimeError otherwise).  The updates
    below read only this tuple, after every check: all or nothing (mirrors
    _check_values)."""
    cdef tuple items = _seq(values)
    cdef Py_ssize_t i
    for i in range(len(items)):
        _as_value(items[i], what)
    return items


# The node indices of the last list of Values an update or zero_grad went
# over (an optimizer's own list, step after step).  They still hold for a
# list of n items when the arena's handle slot at each index holds that
# item (mgf_indices_current): then the item is a live Value whose node is
# there, and nothing is read through the items themselves.
cdef int32_t *_last_idx = NULL
cdef Py_ssize_t _last_n = -1


cdef int32_t *_indices_of(object items, str what) except NULL:
    """The node indices of items (a list or tuple), from the last call's
    when they hold, else checked as _checked_in_place checks them."""
    global _last_idx, _last_n
    cdef Py_ssize_t i, n = len(items)
    cdef PyObject **p = PySequence_Fast_ITEMS(items)
    if n == _last_n and mgf_indices_current(&A, _last_idx, <void **>p, n):
        return _last_idx
    _checked_in_place(items, what)
    cdef int32_t *idx = <int32_t *>realloc(_last_idx, (n + 1) * sizeof(int32_t))
    if idx == NULL:
        raise MemoryError("micrograd_fast: no memory for a parameter list")
    _last_idx = idx
    for i in range(n):
        _last_idx[i] = <int32_t>(<Value>p[i]).idx
    _last_n = n
    return _last_idx


cdef object _checked_in_place(object values, str what):
    """values itself when it is a list or a tuple, every item checked as
    _check_values checks it, else _check_values(values).  For loops that
    run no Python code between this check and their last read of the
    items: nothing can then change the list (an optimizer's step over its
    own list of parameters copies nothing)."""
    cdef Py_ssize_t i
    cdef PyObject **p
    if type(values) is list or type(values) is tuple:
        p = PySequence_Fast_ITEMS(values)
        for i in range(len(values)):
            _as_value(<object>p[i], what)
        return values
    return _check_values(values, what)


def sgd_update(params, double lr, double momentum, buf, bint first, double weight_decay=0.0):
    """SGD step over params (mirrors sgd_update): p.data -= lr * g, or with
    momentum buf = momentum * buf + g (buf = g on the first step); g is
    the grad, plus weight_decay * p.data when weight_decay is not 0."""
    items = params if type(params) is list or type(params) is tuple else _check_values(
        params, "a parameter")
    cdef int32_t *idx = _indices_of(items, "a parameter")  # (checks them)
    cdef Py_ssize_t i, n = len(items)
    cdef double[::1] mom
    if buf is not None or momentum != 0.0:  # without momentum it may be None
        mom = _check_state(buf, n, "buf")
        # reading a buffer may run Python code (a __buffer__ of Python's):
        # the items again, after it (the cache's check); nothing runs below
        if len(items) != n:
            raise ValueError("the parameter list changed while buf was read")
        idx = _indices_of(items, "a parameter")
    cdef mgf_node *o
    cdef double g
    for i in range(n):
        o = &A.nodes[idx[i]]
        g = o.grad
        if weight_decay != 0.0:
            g = g + weight_decay * o.data
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
    cdef tuple items = _check_values(params, "a parameter")
    cdef Py_ssize_t i, n = len(items)
    cdef double[::1] m1 = _check_state(m, n, "m")
    cdef double[::1] m2 = _check_state(v, n, "v")
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
    cdef bint grad = _check_which(which)
    cdef tuple items = _check_values(values, "each item")
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
    cdef bint grad = _check_which(which)
    cdef tuple items = _check_values(values, "each item")
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
    items = values if type(values) is list or type(values) is tuple else _check_values(
        values, "each item")
    cdef int32_t *idx = _indices_of(items, "each item")
    cdef Py_ssize_t i
    for i in range(len(items)):
        A.nodes[idx[i]].grad = 0.0


cdef bint _check_which(object which) except -1:
    """True for 'grad', False for 'data' (mirrors _check_which)."""
    if which == "data":
        return False
    if which == "grad":
        return True
    raise ValueError(f"which must be 'data' or 'grad', not {which!r}")
