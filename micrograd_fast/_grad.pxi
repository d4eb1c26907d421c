# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# grad(), gradients as Values, differentiable again with create_graph=True.

cdef list _value_list(object xs, str what):
    """A Value or a sequence of Values, as a list of initialized Values."""
    items = [xs] if isinstance(xs, Value) else list(xs)
    for v in items:
        _as_value(v, f"grad() {what} item")
    return items


cdef list _seed_list(object grad_outputs, Py_ssize_t n):
    """grad_outputs: None (1.0 each), one Value or number for one output, or
    a sequence of them, one per output; as a list of Values or floats."""
    if grad_outputs is None:
        return [1.0] * n
    seeds = [grad_outputs] if isinstance(grad_outputs, Value) or _is_number_type(
        grad_outputs) else list(grad_outputs)
    if len(seeds) != n:
        raise ValueError(f"grad(): {len(seeds)} grad_outputs for {n} outputs")
    for k in range(n):
        if isinstance(seeds[k], Value):
            _as_value(seeds[k], "grad() grad_outputs item")
        else:
            seeds[k] = _as_float(seeds[k], "grad_outputs item")
    return seeds


cdef int64_t _mark_below(uint8_t *mark, int64_t top) noexcept nogil:
    """Mark every node below the marked ones (children of marked nodes, down
    from top); returns how many nodes are marked."""
    cdef int64_t i, count = 0
    cdef uint32_t t
    cdef mgf_node *o
    cdef int32_t *ch
    i = top
    while i > 0:
        if mark[i]:
            count += 1
            o = &A.nodes[i]
            ch = mgf_children(&A, o)
            for t in range(o.n):
                mark[ch[t]] = 1
        i -= 1
    return count


def grad(outputs, inputs, grad_outputs=None, *, create_graph=False):
    """The gradients of outputs with respect to inputs, as a list of Values
    (mirrors grad).

    outputs: a Value or a sequence of Values; inputs: a Value or a sequence
    of Values; grad_outputs: what each output's gradient starts from (1.0
    by default; Values make the result depend on them).  An input the
    outputs do not depend on gets Value(0.0).  No ``.grad`` field is
    changed.

    create_graph=False: leaf Values holding the numbers backward() would
    accumulate, bit for bit.  create_graph=True: the gradients are built as
    graph nodes from the ordinary ops (mgf_grad_graph), in one pass without
    recursion, so grad() of them, or backward() from them, gives higher
    derivatives; a node whose rule is a Python _backward, or fixed local
    gradients, or gelu, is refused with RuntimeError."""
    global _busy
    outs = _value_list(outputs, "outputs")
    ins = _value_list(inputs, "inputs")
    seeds = _seed_list(grad_outputs, len(outs))
    if create_graph:
        seeds = [s if isinstance(s, Value) else Value(s) for s in seeds]
        return _grad_graph(outs, ins, seeds)
    return [Value(x) for x in _grad_numbers(outs, ins, seeds)]


cdef list _grad_numbers(list outs, list ins, list seeds):
    """backward()'s sweep from the outputs, into grads zeroed for it and put
    back after (Python rules run as in backward())."""
    global _busy
    cdef Py_ssize_t k, nin = len(ins), nout = len(outs)
    cdef int64_t top = 0, i, r, nreach, visited = 0
    cdef void *h
    for v in outs:
        if (<Value>v).idx > top:
            top = (<Value>v).idx
    cdef uint8_t *mark = <uint8_t *>calloc(top + 1, 1)
    cdef uint8_t *seen = <uint8_t *>calloc(top + 1, 1)
    cdef int64_t *reach = NULL
    cdef double *saved = NULL
    cdef double *result = <double *>calloc(nin if nin > 0 else 1, sizeof(double))
    try:
        if mark == NULL or seen == NULL or result == NULL:
            raise MemoryError("micrograd_fast: no memory for grad()")
        for v in outs:
            mark[(<Value>v).idx] = 1
        nreach = _mark_below(mark, top)
        reach = <int64_t *>malloc((nreach if nreach > 0 else 1) * sizeof(int64_t))
        saved = <double *>malloc((nreach if nreach > 0 else 1) * sizeof(double))
        if reach == NULL or saved == NULL:
            raise MemoryError("micrograd_fast: no memory for grad()")
        r = 0
        for i in range(top, 0, -1):
            if mark[i]:
                reach[r] = i
                saved[r] = A.nodes[i].grad
                A.nodes[i].grad = 0.0
                r += 1
        # the seeds: the first for an output is its grad, a repeat adds
        for k in range(nout):
            i = (<Value>outs[k]).idx
            if seen[i]:
                A.nodes[i].grad += _seed_data(seeds[k])
            else:
                A.nodes[i].grad = _seed_data(seeds[k])
            seen[i] = 1
        _busy += 1  # no reclamation moves the nodes meanwhile
        try:
            i = top
            while True:
                i = _sweep(seen, i, &visited)
                if i <= 0:
                    break
                h = A.handles[i]
                if h != NULL and (<Value>h)._bw is not None:
                    (<Value>h)._bw()
                i -= 1
                if i <= 0:
                    break
            for k in range(nin):
                i = (<Value>ins[k]).idx
                result[k] = A.nodes[i].grad if i <= top and mark[i] else 0.0
        finally:
            _busy -= 1
            for r in range(nreach):
                A.nodes[reach[r]].grad = saved[r]
        return [result[k] for k in range(nin)]
    finally:
        free(mark)
        free(seen)
        free(reach)
        free(saved)
        free(result)


cdef double _seed_data(object s) except? -1.0:
    if isinstance(s, Value):
        return A.nodes[(<Value>s).idx].data
    return <double>s


cdef str _refused_name(int64_t i):
    """How grad(create_graph=True) names node i, refused."""
    cdef mgf_node *o = &A.nodes[i]
    cdef void *h = A.handles[i]
    op = (<Value>h)._op if h != NULL else _node_op_name(o)
    if o.flags & MGF_F_PYBW:
        why = "its rule is a Python _backward, which has no derivative of its own"
    elif o.op == MGF_LOCAL:
        why = "its local gradients are fixed numbers (Value(data, children, local_grads))"
    else:
        why = "its rule is not written as nodes (no higher derivatives of it)"
    return f"grad(create_graph=True): cannot differentiate the rule of the node with _op {op!r}: {why}"


cdef int64_t _grad_graph_room(list outs, uint8_t *mark, int32_t *gi, int64_t top,
                              int64_t *refused) noexcept:
    """Mark the nodes below the outputs, set their gradient to none, and
    count the room mgf_grad_graph needs; *refused: the first node (from the
    top) whose rule it cannot write, or 0."""
    cdef int64_t i, room = 0
    memset(mark, 0, top + 1)
    for v in outs:
        mark[(<Value>v).idx] = 1
    _mark_below(mark, top)
    refused[0] = 0
    for i in range(top, -1, -1):
        gi[i] = -1
        if i > 0 and mark[i]:
            if mgf_grad_graph_refuses(&A.nodes[i]):
                refused[0] = i
                return 0
            room += mgf_grad_graph_room(&A.nodes[i])
    return room + 2 * len(outs)


cdef list _grad_graph(list outs, list ins, list seeds):
    """The gradient graph (mgf_grad_graph): marked, checked and counted
    first, then room (a reclamation moves the nodes: then again), then
    built in C; handles for the results last."""
    global _busy
    cdef Py_ssize_t k, nin = len(ins), nout = len(outs)
    cdef int64_t top = 0, i, room, refused = 0, compactions
    cdef int32_t s
    for v in outs:
        if (<Value>v).idx > top:
            top = (<Value>v).idx
    cdef uint8_t *mark = <uint8_t *>calloc(top + 1, 1)
    cdef int32_t *gi = <int32_t *>malloc((top + 1) * sizeof(int32_t))
    cdef int32_t *res = <int32_t *>malloc((nin if nin > 0 else 1) * sizeof(int32_t))
    try:
        if mark == NULL or gi == NULL or res == NULL:
            raise MemoryError("micrograd_fast: no memory for grad()")
        while True:
            top = 0
            for v in outs:
                if (<Value>v).idx > top:
                    top = (<Value>v).idx
            room = _grad_graph_room(outs, mark, gi, top, &refused)
            if refused:
                raise RuntimeError(_refused_name(refused))
            compactions = _compactions
            _reserve(room, 0)
            if _compactions == compactions:
                break  # no node moved: the marks hold
        _busy += 1  # from here the indices stay valid (room is had by growing)
        try:
            for k in range(nout):
                i = (<Value>outs[k]).idx
                s = <int32_t>(<Value>seeds[k]).idx
                gi[i] = s if gi[i] < 0 else mgf_gg_add(&A, gi[i], s)
            mgf_grad_graph(&A, mark, gi, top)
            for k in range(nin):
                i = (<Value>ins[k]).idx
                res[k] = gi[i] if i <= top and mark[i] else -1
            # the results: the handle a node has, else a new one that keeps
            # the keeping Values its graph reaches (see Ownership)
            spare = [_new_handle() for k in range(nin)]
            kept = [v for v in seeds if _keeping(<Value>v)]
            for i in range(top, 0, -1):
                if mark[i] and A.handles[i] != NULL and _keeping(<Value>A.handles[i]):
                    kept.append(<Value>A.handles[i])
            kept_t = tuple(kept)
            out = []
            for k in range(nin):
                if res[k] < 0:
                    out.append(None)
                elif A.handles[res[k]] != NULL:
                    out.append(<Value>A.handles[res[k]])
                else:
                    _register(<Value>spare[k], res[k])
                    if kept_t:
                        _set_keep(<Value>spare[k], kept_t)
                    out.append(spare[k])
        finally:
            _busy -= 1
    finally:
        free(mark)
        free(gi)
        free(res)
    return [Value(0.0) if v is None else v for v in out]
