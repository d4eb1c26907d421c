# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# the Value handle: making nodes, ownership (_keep), backward, the Value class.

# making nodes --------------------------------------------------------------------
cdef inline void _register(Value h, int64_t i) noexcept:
    A.handles[i] = <void *>h
    h.idx = i


cdef inline bint _own_arith(Value v) noexcept:
    """v's class adds, multiplies, raises and negates with the core's own
    slots (nothing replaced on the class, nothing overridden by a subclass):
    then the composite operators build their nodes directly."""
    return mgf_own_arith(Py_TYPE(v))


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
    attributes.  It comes from the handle freelist when one is there (see
    mgf_new_handle)."""
    return <Value>mgf_new_handle()


cdef inline int _track(Value h) except -1:
    """h got Python state: GC-track it, and late-pin it if its node is a child."""
    h._stateful = True
    mgf_state_added(h)
    return 0


cdef Value _binary(uint8_t op, Value x, Value y, double data):
    """A node with two Value children (a + b, a * b, a ** b with a Value
    exponent; two plain Values are added and multiplied by mgf_nb_add and
    mgf_nb_mul without coming here)."""
    if x.idx == 0 or y.idx == 0:
        _uninitialized()
    cdef Value out = _new_handle()
    _reserve(1, 0)
    cdef int64_t i = mgf_push_node(&A, op, data, 2, <int32_t>x.idx, <int32_t>y.idx)
    _register(out, i)
    _use(x)
    _use(y)
    if _keeping(x) or _keeping(y):  # the slow path, out of line
        _keep2(out, x, y)
    if not mgf_own_init_now():
        _by_init(out, (x, y))
    return out


cdef Value _binary_const(uint8_t op, Value x, double c, double data):
    """A node whose second child is a new leaf holding the number c, as
    micrograd does with `Value(other)`."""
    if x.idx == 0:
        _uninitialized()
    cdef Value k_ = None
    if not mgf_own_init_now():
        # upstream's Value(other) first, through the class: its data is
        # what the replaced __init__ made of c
        k_ = Value(c)
        data = _data(x) + _data(k_) if op == MGF_ADD else _data(x) * _data(k_)
        return _binary(op, x, k_, data)
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
    if not mgf_own_init_now():
        _by_init(out, (x,))
    return out


cdef int _by_init(Value out, tuple kids) except -1:
    """Value.__init__ is replaced on the class: upstream's operators make
    their results with Value(data, children, op), so the replacement runs
    on the node just made, with the same arguments (as the pure engine's
    operators do, which call the class).  The node keeps its op and
    rule when the replacement leaves it as a node of those children
    without a rule of its own (it called the original __init__ with them,
    perhaps with other data); otherwise it is what the replacement made."""
    cdef mgf_node saved = A.nodes[out.idx]
    cdef mgf_node *o
    cdef int32_t *ch
    cdef Py_ssize_t t
    name = out._op
    type(out).__init__(out, saved.data, kids, name)
    if out.idx == 0 or A.handles[out.idx] != <void *>out:
        return 0
    o = &A.nodes[out.idx]
    if o.op != MGF_CUSTOM or o.flags & MGF_F_PYBW or o.n != saved.n or out._bw is not None:
        return 0
    ch = mgf_children(&A, o)
    for t in range(o.n):
        if ch[t] != (<Value>kids[t]).idx:
            return 0
    o.op = saved.op
    o.param = saved.param
    o.aux = saved.aux
    o.flags |= saved.flags & (MGF_F_INTEXP | MGF_F_EM1_SAME | MGF_F_EM1_DOWN)
    if out._opname == name:
        out._opname = None  # the op's own name
    return 0


cdef Value _pow_const(Value x, double e, bint int_exponent):
    """op_pow_const: x ** e for a number e (_op '**e')."""
    cdef double xd = A.nodes[x.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    return _unary(MGF_POWC, x, r, e, MGF_F_INTEXP if int_exponent else 0)


cdef Value _pow_big_int(Value x, object other, double e):
    """x ** other for an int exponent of size 2**53 or more (as the pure
    engine's _exponent_minus_one): the derivative's exponent is other - 1 computed on
    the int, then rounded, which is e itself or the double below e where
    e - 1.0 would round otherwise (node flags MGF_F_EM1_SAME / _DOWN).  The
    caller names the node after the int as given (_name_pow: the double may
    have lost it)."""
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
    cdef double xd = A.nodes[x.idx].data, r = 0.0
    cdef int err = mgf_pow_forward(xd, e, &r)
    if err:
        _math_error(err, xd, e, "**")
    return _unary(MGF_POWC, x, r, e, flags)


cdef Value _name_pow(Value out, object other):
    """out = x ** other: its _op shows other as given ('**True', '**1/3',
    an int beyond the doubles), as upstream's f-string does, where the
    name the node gives from its double would differ; the handle holds it."""
    name = f"**{other}"
    if name != out._op:
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
cdef inline int64_t _sweep(uint8_t *seen, int64_t i, int64_t *visited) noexcept nogil:
    """Visit marked nodes from index i downward (Value.backward's loop),
    counting them in visited: mgf_sweep over the arena.

    seen[k] is 1 once a visited parent has marked node k.  Each visited
    node marks its children and applies its local rule.  Returns the index
    of a node whose rule is Python code (its children already marked; the
    caller runs the rule and resumes below it), or 0 when the sweep is done
    (node 0 is the sentinel, never marked)."""
    return mgf_sweep(&A, seen, i, visited)


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


def _none_rule():
    """What a node's rule is after `node._backward = None` (the getter gives
    None back): calling it fails as calling None does."""
    raise TypeError("'NoneType' object is not callable")


ctypedef struct _keyed:
    int64_t key
    Py_ssize_t pos


cdef int _by_key(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const _keyed *>a).key, y = (<const _keyed *>b).key
    return (x > y) - (x < y)


def _creation_order(values):
    """The Values in the order their nodes were made (mirrors
    _creation_order): backward() visits the reachable ones in the reverse of
    this order.  The arena's indices are that order (reclamation keeps it),
    and they are all read before any Python code can run (a reclamation
    between two reads would move the nodes)."""
    cdef list vs = list(values)
    cdef Py_ssize_t n = len(vs), t
    for t in range(n):
        if not isinstance(vs[t], Value):
            raise TypeError(f"_creation_order: expected Values, not {type(vs[t]).__name__}")
        if (<Value>vs[t]).idx == 0:
            _uninitialized()
    cdef _keyed *keys = <_keyed *>malloc((n + 1) * sizeof(_keyed))
    if keys == NULL:
        raise MemoryError()
    try:
        for t in range(n):
            keys[t].key = (<Value>vs[t]).idx
            keys[t].pos = t
        qsort(keys, <size_t>n, sizeof(_keyed), _by_key)
        return [vs[keys[t].pos] for t in range(n)]
    finally:
        free(keys)


cdef str _node_op_name(const mgf_node *o):
    """The _op a node of this op shows, unless a label was set on its handle."""
    if o.op == MGF_NEURON:
        return _OP_NAMES[MGF_NEURON] + _ACT_NAMES[o.aux]
    if o.op == MGF_LAYER:
        return _OP_NAMES[MGF_LAYER] + _ACT_NAMES[o.aux & MGF_AUX_ACT]
    return _OP_NAMES[o.op]


cdef list _child_handles(Value v):
    """v's children in order, as Values: the handle a child already has,
    else a new one (so a node has one handle at a time).  A block's output
    shows the children of a fused neuron (mgf_layer_kids)."""
    if v.idx == 0:
        _uninitialized()
    cdef uint32_t n = A.nodes[v.idx].n, t
    cdef bint shown = A.nodes[v.idx].op == MGF_LAYER
    if shown:
        n = <uint32_t>mgf_layer_kids(&A, &A.nodes[v.idx], NULL)
    if n == 0:
        return []
    spare = [_new_handle() for t in range(n)]  # allocate first (may run GC)
    cdef int32_t *kids = NULL
    if shown:
        kids = <int32_t *>malloc(n * sizeof(int32_t))
        if kids == NULL:
            raise MemoryError("micrograd_fast: no memory for _prev")
    cdef mgf_node *o = &A.nodes[v.idx]
    cdef int32_t *ch
    if shown:
        mgf_layer_kids(&A, o, kids)
        ch = kids
    else:
        ch = mgf_children(&A, o)
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
    free(kids)
    return spare


cdef int _no_deleter(object v, str name) except -1:
    # what deleting a property without a deleter raises (Cython's default
    # would be NotImplementedError)
    raise AttributeError(f"property {name!r} of {type(v).__name__!r} object has no deleter")


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
        if isinstance(item, Value) or not _is_number(item, &d):
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


def _rebuild_value(data, grad, label, cls=None):
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


# the reconstructor's name in pickles made by earlier versions
_restore = _rebuild_value


cdef bint _init_again(Value self, tuple kids, Py_ssize_t n) except -1:
    """``__init__`` called again on a Value: True when its node is changed
    where it stands (every graph that uses the node sees the new one, as
    upstream's parents hold the very object), False when it gets a fresh
    node instead (mirrors _init_again).

    In place when every new child was made before the Value (creation order
    stays a topological order).  Otherwise (a child made after it, or the
    Value itself among its children: that child is the node as it was) a
    fresh node, which only a Value that has never been a child may have;
    one that has been is refused.  So is a change in place of a used node
    while a backward() pass runs."""
    cdef Py_ssize_t t
    cdef bint used = (A.nodes[self.idx].flags & (MGF_F_USED | MGF_F_WASUSED)) != 0
    cdef bint older = True
    for t in range(n):
        if kids[t] is self or (<Value>kids[t]).idx >= self.idx:
            older = False
    if not older:
        if used:
            raise ValueError(
                "__init__ called again on a Value that has been a child: its new children "
                "must have been made before it (not after it, nor the Value itself); "
                "make a new Value instead")
        return False
    if used and _busy:
        raise RuntimeError(
            "__init__ called again on a Value that has been a child, while a backward() "
            "pass is running: call it after the pass")
    return True


cdef int _rewire(Value self, uint8_t op, double x, tuple kids, Py_ssize_t n,
                 tuple lgt) except -1:
    """Change self's node in place (mgf_rewire): room first, then no Python
    code until the node is rewritten."""
    global mgf_handles_epoch
    cdef Py_ssize_t t
    cdef int32_t *ix = <int32_t *>malloc((n if n > 0 else 1) * sizeof(int32_t))
    cdef double *lg = <double *>malloc((n if n > 0 else 1) * sizeof(double))
    if ix == NULL or lg == NULL:
        free(ix)
        free(lg)
        raise MemoryError("micrograd_fast: no memory to rewire a node")
    try:
        if lgt is not None:
            for t in range(n):
                lg[t] = <double>lgt[t]
        _reserve(0, n if n > 2 else 0)  # (may move the nodes: indices read after)
        if lgt is not None and mgf_reserve_lg(&A, n) < 0:
            raise MemoryError("micrograd_fast: cannot grow the local gradient array")
        for t in range(n):
            ix[t] = <int32_t>(<Value>kids[t]).idx
        mgf_handles_epoch += 1  # this handle may stop or start keeping
        mgf_rewire(&A, self.idx, op, x, <uint32_t>n, ix, lg)
        A.nodes[self.idx].flags &= ~MGF_F_PYBW
    finally:
        free(ix)
        free(lg)
    return 0


cdef int _start_state(Value self, tuple kids, Py_ssize_t n, object op_name, bint local,
                      object label) except -1:
    """__init__'s Python state, as in a new Value (attributes excepted)."""
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
    if type(self) is not Value:
        # an instance of a subclass is Python state of its own (its class,
        # its slots): a node made from it keeps it, as upstream's _prev
        # holds the very object
        self._stateful = True
    if not self._stateful and type(self) is Value and not mgf_has_attrs(self):
        PyObject_GC_UnTrack(<void *>self)  # see _new_handle
    elif self._stateful:
        mgf_state_added(self)  # (a node rewired in place may be a child)
    return 0


@cython.freelist(1024)
cdef class Value:
    """A scalar that remembers how it was computed (a handle onto an arena node).

    Value(data, _children=(), _op='', label='')
    Value(data, children, local_grads): a node whose backward adds
    local_grads[t] * out.grad to children[t] (mirrors Value).
    """

    __array_ufunc__ = None  # NumPy scalars hand arithmetic over to us

    def __init__(self, data, _children=(), _op="", label="", *, children=None,
                 local_grads=None):
        global mgf_handles_epoch
        cdef double x = _as_float(data, "data")
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
        cdef uint8_t op = MGF_LOCAL if local else (MGF_CUSTOM if n else MGF_LEAF)
        if self.idx > 0 and A.handles[self.idx] == <void *>self:
            # __init__ called again: in place when it can be (see _init_again)
            if _init_again(self, kids, n):
                _rewire(self, op, x, kids, n, lgt if local else None)
                _start_state(self, kids, n, op_name, local, label)
                return
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
            mgf_handles_epoch += 1  # this handle gets another node
            if A.nodes[self.idx].flags & MGF_F_PINNED:
                Py_DECREF(self)  # the caller still holds a reference
            A.nodes[self.idx].flags &= ~(MGF_F_PYBW | MGF_F_PINNED)
        cdef int64_t i = mgf_push(&A, op, x)
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
        _start_state(self, kids, n, op_name, local, label)

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
        cdef double x = _as_float(value, "data")
        if self.idx == 0:
            _uninitialized()
        A.nodes[self.idx].data = x

    @data.deleter
    def data(self):
        _no_deleter(self, "data")

    @property
    def grad(self):
        if self.idx == 0:
            _uninitialized()
        return A.nodes[self.idx].grad

    @grad.setter
    def grad(self, value):
        cdef double x = _as_float(value, "grad")
        if self.idx == 0:
            _uninitialized()
        A.nodes[self.idx].grad = x

    @grad.deleter
    def grad(self):
        _no_deleter(self, "grad")

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

    @label.deleter
    def label(self):
        _no_deleter(self, "label")

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
        return _node_op_name(o)

    @_op.setter
    def _op(self, value):
        # a label for drawings (mirrors Value._op)
        if self.idx == 0:
            _uninitialized()
        if not isinstance(value, str):
            raise TypeError(f"_op must be a str, not {type(value).__name__}")
        self._opname = value
        _track(self)

    @_op.deleter
    def _op(self):
        _no_deleter(self, "_op")

    @property
    def _prev(self):
        """The set of this node's children, as the Values the user holds."""
        return set(_child_handles(self))

    @_prev.setter
    def _prev(self, value):
        _refuse_rewiring("_prev")

    @_prev.deleter
    def _prev(self):
        _no_deleter(self, "_prev")

    @property
    def _children(self):
        """This node's children as a tuple, in order, repeats included."""
        return tuple(_child_handles(self))

    @_children.setter
    def _children(self, value):
        _refuse_rewiring("_children")

    @_children.deleter
    def _children(self):
        _no_deleter(self, "_children")

    @property
    def _local_grads(self):
        """d self / d child for each child in _children, at the current data
        (mgf_local_grads); () for leaves and nodes with a Python _backward
        rule and no local gradients."""
        if self.idx == 0:
            _uninitialized()
        cdef uint32_t n = A.nodes[self.idx].n, k, t
        if A.nodes[self.idx].op == MGF_LAYER:
            n = <uint32_t>mgf_layer_kids(&A, &A.nodes[self.idx], NULL)
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
            return None if self._bw is _none_rule else self._bw
        cdef _LocalRule rule = _LocalRule.__new__(_LocalRule)
        rule.v = self
        return rule

    @_backward.setter
    def _backward(self, fn):
        if self.idx == 0:
            _uninitialized()
        if isinstance(fn, _LocalRule) and (<_LocalRule>fn).v is self:
            # its own built-in rule given back: the node's rule runs in C again
            self._bw = None
            A.nodes[self.idx].flags &= ~MGF_F_PYBW
            return
        # anything else is stored as given, as an attribute would be: None
        # or a number fails when backward() calls it, as upstream's does
        self._bw = _none_rule if fn is None else fn
        _track(self)
        A.nodes[self.idx].flags |= MGF_F_PYBW

    @_backward.deleter
    def _backward(self):
        _no_deleter(self, "_backward")

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
            return (_rebuild_value, args, state)
        return (_rebuild_value, args)

    def __setstate__(self, state):
        # attributes are restored once the leaf exists, so one may refer
        # back to the Value itself
        for k, v in state.items():
            setattr(self, k, v)

    # operators ---------------------------------------------------------------
    # (the composite ones, from __neg__ on, fall back to upstream's
    # definitions from +, * and ** when the class's are not the core's: see
    # _own_arith)
    def __add__(self, other):  # Value.__add__
        cdef double c
        if isinstance(other, Value):
            return _binary(MGF_ADD, self, <Value>other, _data(self) + _data(<Value>other))
        if not _is_number(other, &c):
            return NotImplemented
        return _binary_const(MGF_ADD, self, c, _data(self) + c)

    def __radd__(self, other):  # Value.__radd__
        cdef double c
        if not _own_arith(self):
            return self.__add__(other)
        if not _is_number(other, &c):
            return NotImplemented
        return _binary_const(MGF_ADD, self, c, _data(self) + c)

    def __mul__(self, other):  # Value.__mul__
        cdef double c
        if isinstance(other, Value):
            return _binary(MGF_MUL, self, <Value>other, _data(self) * _data(<Value>other))
        if not _is_number(other, &c):
            return NotImplemented
        return _binary_const(MGF_MUL, self, c, _data(self) * c)

    def __rmul__(self, other):  # Value.__rmul__
        cdef double c
        if not _own_arith(self):
            return self.__mul__(other)
        if not _is_number(other, &c):
            return NotImplemented
        return _binary_const(MGF_MUL, self, c, _data(self) * c)

    def __neg__(self):  # Value.__neg__: self * -1
        if not _own_arith(self):
            return self * -1
        return _binary_const(MGF_MUL, self, -1.0, mgf_times_minus_one(_data(self)))

    def __sub__(self, other):  # Value.__sub__: self + (-other)
        cdef double c
        cdef Value neg
        if isinstance(other, Value):
            if not (_own_arith(self) and _own_arith(<Value>other)):
                return self + (-other)
            neg = -other
            return _binary(MGF_ADD, self, neg, _data(self) + _data(neg))
        if not _own_arith(self) or (type(other) is not float and type(other) is not int):
            # a number of another type is negated by its own __neg__ before
            # it is read, as upstream's self + (-other) does (an int
            # subclass gives an int)
            if not _is_number_type(other):
                return NotImplemented
            return self + (-other)
        _is_number(other, &c)  # an exact float or int (OverflowError past the doubles)
        # -other as upstream makes it: an int is negated as an int, so -0
        # is 0 (+0.0), where -0.0 would turn a -0.0 sum's sign
        c = -c if (c != 0.0 or type(other) is float) else 0.0
        return _binary_const(MGF_ADD, self, c, _data(self) + c)

    def __rsub__(self, other):  # Value.__rsub__: (-self) + other
        cdef double c
        if not _is_number(other, &c):
            return NotImplemented
        if not _own_arith(self):
            return (-self) + other
        cdef Value neg = -self
        return _binary_const(MGF_ADD, neg, c, _data(neg) + c)

    def __truediv__(self, other):  # Value.__truediv__: self * other**-1
        cdef double c, r = 0.0
        cdef Value inv
        cdef int err
        cdef bint own = _own_arith(self)
        if isinstance(other, Value):
            if not own:
                return self * other**-1
            inv = _pow_const(other, -1.0, True)
            return _binary(MGF_MUL, self, inv, _data(self) * _data(inv))
        if not _is_number(other, &c):
            return NotImplemented
        err = mgf_pow_forward(c, -1.0, &r)
        if err:
            _math_error(err, c, -1.0, "**")
        if not own:
            return self * r
        return _binary_const(MGF_MUL, self, r, _data(self) * r)

    def __rtruediv__(self, other):  # Value.__rtruediv__: self**-1 * other
        cdef double c
        if not _is_number(other, &c):
            return NotImplemented
        if not _own_arith(self):
            return self**-1 * other
        cdef Value inv = _pow_const(self, -1.0, True)
        return _binary_const(MGF_MUL, inv, c, _data(inv) * c)

    def __pow__(self, other, mod):  # Value.__pow__
        cdef double e
        if mod is not None:
            return NotImplemented
        if isinstance(other, Value):
            return _pow_value(self, other)
        if not _is_number(other, &e):
            return NotImplemented
        if PyIndex_Check(other) and not (-9007199254740992.0 < e < 9007199254740992.0):
            return _name_pow(_pow_big_int(self, other, e), other)
        if type(other) is not float and type(other) is not int:
            return _name_pow(_pow_const(self, e, PyIndex_Check(other) != 0), other)
        return _pow_const(self, e, PyIndex_Check(other) != 0)

    def __rpow__(self, other, mod):  # Value.__rpow__: Value(other) ** self
        cdef double c
        if mod is not None or not _is_number(other, &c):
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

    def gelu(self):  # Value.gelu
        return _unary(MGF_GELU, self, mgf_gelu(_data(self)), 0.0, 0)

    # replay and backpropagation --------------------------------------------------
    def recompute(self):
        """Re-evaluate every node below this one from its leaves' current data
        (mirrors Value.recompute): in creation order, in C, with each op's
        forward math, no node made; every non-leaf node's grad is set to 0.
        Leaves are not touched.  The graph then holds the data and grads a
        rebuild from the same leaves would give, bit for bit.  A node whose
        forward is Python's is a RuntimeError (nothing changed); a forward
        error raises what building that op would, the nodes before it
        recomputed and the rest as they were."""
        _recompute(self)

    def backward(self):
        """Set this node's grad to 1 and push gradients to everything below
        it (Value.backward): reverse creation order over the reachable
        nodes, iteratively, accumulating into grads as micrograd does."""
        global _busy, _seen_dirty
        if self.idx == 0:
            _uninitialized()
        cdef int64_t root = self.idx, i, visited = 0
        cdef bint finished = False
        cdef bint shared = _busy == 0  # a nested pass gets a map of its own
        cdef uint8_t *seen = _seen_map(root + 1) if shared else <uint8_t *>calloc(root + 1, 1)
        cdef void *h
        if seen == NULL:
            raise MemoryError("micrograd_fast: no memory for the backward pass")
        seen[root] = 1
        A.nodes[root].grad = 1.0
        _busy += 1
        try:
            i = root
            while True:
                i = _sweep(seen, i, &visited)
                if i <= 0:
                    break
                h = A.handles[i]
                if h != NULL and (<Value>h)._bw is not None:
                    (<Value>h)._bw()
                i -= 1  # resume below the node just handled
                if i <= 0:
                    break
            finished = True
        finally:
            _busy -= 1
            if not shared:
                free(seen)
            elif not finished:
                _seen_dirty = True  # a rule raised: bytes below it are still set
        _note_graph(visited)
