# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# building blocks for nn: n-ary sum, fused neurons and layers, MLP plans.

# building blocks for nn: n-ary sum, fused neurons, optimizer updates -------------
from micrograd_fast._vocab import ACTIVATIONS as _ACTIVATIONS

_ACT_CODES = {name: code for code, name in enumerate(_ACT_NAMES)}


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
    cdef double acc, start_number = 0.0
    cdef object item
    cdef uint16_t aux = 0  # how recompute re-adds it (mgf_recompute)
    if isinstance(start, Value):
        acc = _data(_as_value(start, "start"))
        k = 1
        aux |= MGF_AUX_SUM_VSTART
    else:
        acc = _as_float(start, "start")
        start_number = acc
    for t in range(n):
        item = items[t]
        if isinstance(item, Value):
            acc = acc + _data(_as_value(item, "sum item"))
            k += 1
        else:
            acc = acc + _as_float(item, "sum item")
            aux |= MGF_AUX_SUM_FOLDED
    cdef Value out = _new_handle()
    _reserve(1, k if k > 2 else 0)
    cdef int64_t i = mgf_push(&A, MGF_SUM, acc)
    cdef mgf_node *o = &A.nodes[i]
    cdef int32_t *ch
    o.n = <uint32_t>k
    o.param = start_number
    o.aux = aux
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


cdef int _check_act(object act) except -1:
    """The code of an activation name (mirrors _check_act)."""
    try:
        return _ACT_CODES[act]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {act!r}; expected one of {', '.join(_ACTIVATIONS)}") from None



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
    cdef int32_t *idx       # the parameters' node indices, in params order, as of
                            # the last call that read them
    cdef uint64_t epoch     # mgf_handles_epoch when idx and any_keep were read; 0: never
    cdef bint any_keep      # then: some parameter was keeping
    cdef double *xd         # scratch: one layer's input data (maxw + 1)
    cdef bint ready         # set last by mlp_plan: the arrays are filled in
    cdef object pids        # for blocks: the ids of params, once all are distinct
                            # (a frozenset), or False when one repeats; None: not yet

    def __cinit__(self, token=None):
        if token is not _PLAN_TOKEN:
            raise TypeError("MLPPlan objects are made by mlp_plan()")

    def __dealloc__(self):
        free(self.width)
        free(self.act)
        free(self.buf)
        free(self.idx)
        free(self.xd)

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
        acts.append(_check_act(act))
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
    plan.idx = <int32_t *>malloc((len(params) + 1) * sizeof(int32_t))
    plan.xd = <double *>malloc((maxw + 1) * sizeof(double))
    if (plan.width == NULL or plan.act == NULL or plan.buf == NULL or plan.idx == NULL
            or plan.xd == NULL):
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


# The methods micrograd's Neuron graph applies the activations with, as the
# class has them (an activation's op is the Value method of its name), and
# the class's version tag when its ops were last found to be the core's own.
_OWN_ACT_METHODS = {name: Value.__dict__.get(name) for name in _ACT_NAMES if name != "linear"}
cdef unsigned int _own_ops_tag = 0


cdef inline bint _class_ops_own() except -1:
    """Whether +, * and the activations' methods of the class are still the
    core's own: one compare while nothing was assigned to the class since
    the last full check (its version tag is unchanged)."""
    cdef unsigned int tag = mgf_type_tag(<PyTypeObject *>Value)
    if tag != 0 and tag == _own_ops_tag:
        return True
    return _class_ops_own_check()


cdef bint _class_ops_own_check() except -1:
    global _own_ops_tag
    if not mgf_own_arith(<PyTypeObject *>Value):
        return False
    methods = Value.__dict__
    for name, method in _OWN_ACT_METHODS.items():
        if methods.get(name) is not method:
            return False
    getattr(Value, "__add__")  # a look-up through the type gives it a tag
    _own_ops_tag = mgf_type_tag(<PyTypeObject *>Value)
    return True


def _mlp_through_class(MLPPlan plan, tuple xs):
    """micrograd's Neuron graph made with the class's operators, as
    upstream's nn.py makes it (mirrors _mlp_through_class): taken when one
    of them was replaced on the class (Value.__add__ = logged_add), so the
    replacement runs for every node, as it would upstream."""
    cdef Py_ssize_t k = 0, l, j, m_in
    cur = list(xs)
    for l in range(plan.nl):
        m_in = plan.width[l]
        act = _ACT_NAMES[plan.act[l]]
        nxt = []
        for j in range(plan.width[l + 1]):
            w = plan.params[k:k + m_in]
            acc = sum((wi * xi for wi, xi in zip(w, cur)), plan.params[k + m_in])
            nxt.append(acc if act == "linear" else getattr(acc, act)())
            k += m_in + 1
        cur = nxt
    return cur


cdef list _run_plan(MLPPlan plan, tuple xs, bint fused):
    """The forward pass of a plan (in the pure engine, the body of mlp);
    only the outputs get handles.

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
    if nin > 64:
        consts = <double *>malloc(nin * sizeof(double))
        if consts == NULL:
            raise MemoryError("micrograd_fast: no memory for mlp")
    cdef PyObject **xi = PySequence_Fast_ITEMS(xs)
    cdef int32_t *cur
    cdef int32_t *nxt
    cdef int32_t *tmp
    cdef int32_t acc
    cdef double z
    cdef int act
    cdef PyObject **p = plan.p
    cdef bint any_keep = False
    try:
        for t in range(nin):
            if isinstance(<object>xi[t], Value):
                _as_value(<object>xi[t], "an input")
            else:
                consts[n_const] = _as_float(<object>xi[t], "input")
                n_const += 1
        if not fused and not _class_ops_own():
            return _mlp_through_class(plan, xs)
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
        # the parameters' current node indices, and whether any of them is
        # keeping (after _reserve: a reclamation there moves nodes).  What
        # the last call read still holds while mgf_handles_epoch has not
        # moved (no reclamation, no __init__ again, no handle given Python
        # state): then the parameter handles are not touched.  Debug builds
        # check the indices against the arena's handle slots.
        if plan.epoch == mgf_handles_epoch:
            any_keep = plan.any_keep
            mgf_assert_indices_current(&A, plan.idx, <void **>p, plan.nparams)
        else:
            for t in range(plan.nparams):
                plan.idx[t] = <int32_t>(<Value>p[t]).idx
                if _keeping(<Value>p[t]):
                    any_keep = True
            plan.any_keep = any_keep
            plan.epoch = mgf_handles_epoch
        k = 0
        if fused:
            # one kernel call per layer
            for l in range(plan.nl):
                m_in = plan.width[l]
                m_out = plan.width[l + 1]
                mgf_fused_layer(&A, plan.idx + k, cur, <uint32_t>m_in, <uint32_t>m_out,
                                plan.act[l], plan.xd, nxt)
                k += m_out * (m_in + 1)
                tmp = cur
                cur = nxt
                nxt = tmp
        else:
            for l in range(plan.nl):
                m_in = plan.width[l]
                m_out = plan.width[l + 1]
                act = plan.act[l]
                for j in range(m_out):
                    # (mgf_chain_neuron marks the children it links as used)
                    acc = mgf_chain_neuron(&A, plan.idx + k, cur, consts, plan.idx[k + m_in],
                                           <uint32_t>m_in, &z)
                    if act != MGF_ACT_LINEAR:
                        A.nodes[acc].flags |= MGF_F_USED
                        acc = <int32_t>mgf_push_node(&A, mgf_act_ops[act], mgf_activate(act, z),
                                                     1, acc, 0)
                    nxt[j] = acc
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
    # the arena is consistent: each output keeps the keeping parameters and
    # inputs (its inner nodes have no handles to keep them)
    cdef list kept = None
    for t in range(plan.nparams if any_keep else 0):
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
    the names in nn.ACTIVATIONS.  x: the inputs, Values or numbers
    (numbers become leaves).  fused=True makes one node per neuron;
    fused=False micrograd's graph of '*', '+' and activation nodes.  Returns
    the last layer's outputs as a list of Values; the other nodes get no
    Python objects until user code reaches them through _prev."""
    xs = x if type(x) is tuple else tuple(x)  # a private copy of the inputs
    if type(spec) is MLPPlan:
        return _run_plan(<MLPPlan>spec, xs, fused)
    return _run_plan(mlp_plan(spec, len(xs)), xs, fused)


def _mlp_call(MLPPlan plan, x, bint fused):
    """nn.MLP's common call (mirrors _mlp_call): mlp(plan, x, fused=fused)
    when x is a list of plan.nin items, its one output itself when there
    is one; None for any other x (the caller then takes its general path)."""
    plan._check_ready()
    if type(x) is not list or len(<list>x) != plan.n_in:
        return None
    outs = _run_plan(plan, tuple(<list>x), fused)
    return outs[0] if plan.n_out == 1 else outs


def layer(W, B, x, act, *, fused=True):
    """Neurons act(b + w_0*x_0 + w_1*x_1 + ...): one node each (fused), or
    micrograd's chain of nodes (fused=False).

    W: nout rows of nin weight Values, B: nout bias Values, x: nin inputs
    (Values or numbers), act: one of the names in nn.ACTIVATIONS.
    Returns the nout outputs (mirrors layer)."""
    return mlp(((W, B, act),), x, fused=fused)
