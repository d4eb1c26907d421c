# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# numbers: what counts as a real number, conversion to double, math errors.

# numbers ------------------------------------------------------------------------
cdef extern from "Python.h":
    double PyFloat_AS_DOUBLE(object) noexcept
    double PyLong_AsDouble(object) except? -1.0


cdef inline bint _is_number(object x, double *out) except -1:
    """Store x as a double and return True if x is a real number, else False
    (mirrors _is_number)."""
    if type(x) is float:
        out[0] = PyFloat_AS_DOUBLE(x)
        return True
    if type(x) is int:  # exact int: no nb_float, no temporary float
        out[0] = PyLong_AsDouble(x)  # OverflowError past the doubles, as float(x)
        return True
    if isinstance(x, (str, bytes, bytearray)):
        return False
    try:
        out[0] = PyFloat_AsDouble(x)
    except TypeError:
        return False
    return True


cdef bint _is_number_type(object x):
    """True if x's type makes a number (it has __float__ or __index__ and
    is not text or complex), without reading x (the pure engine's
    _is_number)."""
    if isinstance(x, (str, bytes, bytearray, complex)):
        return False
    t = type(x)
    return hasattr(t, "__float__") or hasattr(t, "__index__")


cdef inline double _as_float(object x, str what) except? -1.0:
    """A real number as double, TypeError for anything else (mirrors
    _as_float)."""
    cdef double d
    if type(x) is float:
        return PyFloat_AS_DOUBLE(x)
    if not _is_number(x, &d):
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
