# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# replay, Value.recompute(): a graph re-evaluated from its leaves in C.

# The plan of the last graph recomputed: the indices of the nodes below its
# root that are not leaves, ascending (creation order), read while
# mgf_handles_epoch had the value _plan_epoch: every event that can move a
# node or change a node's children moves that count (a reclamation,
# __init__ again), so the plan holds while it has not moved.
cdef int32_t *_plan = NULL
cdef uint8_t *_plan_four = NULL  # 1 where four neurons start that run side by side
cdef int64_t _plan_n = 0, _plan_cap = 0, _plan_root = -1
cdef uint64_t _plan_epoch = 0


cdef str _replay_refusal(int64_t i, int why):
    cdef void *h = A.handles[i]
    cdef mgf_node *o = &A.nodes[i]
    op = (<Value>h)._op if h != NULL else _node_op_name(o)
    if why == 1:
        reason = ("its forward is Python's (a custom op, or Value(data, children, "
                  "local_grads)): build the graph again instead")
    elif why == 2:
        reason = "it belongs to a gradient graph: call grad() again instead"
    elif why == 3:
        reason = ("a micrograd_fast.sum folded plain numbers into its data: make them "
                  "Values to replay it")
    else:
        reason = "its op has no case in recompute"
    return f"recompute(): cannot recompute the node with _op {op!r}: {reason}"


cdef int _make_plan(int64_t root) except -1:
    """The plan of root's graph (see _plan), checked: a node that cannot be
    recomputed is a RuntimeError, and the plan is not kept."""
    global _plan, _plan_four, _plan_n, _plan_cap, _plan_root, _plan_epoch
    cdef uint8_t *mark = <uint8_t *>calloc(root + 1, 1)
    cdef int64_t i, n, k = 0, w
    cdef int why
    cdef int32_t *p
    cdef uint8_t *four
    if mark == NULL:
        raise MemoryError("micrograd_fast: no memory for recompute()")
    try:
        mark[root] = 1
        n = _mark_below(mark, root)
        for i in range(1, root + 1):
            if mark[i] and A.nodes[i].op != MGF_LEAF:
                why = mgf_replay_refuses(&A.nodes[i])
                if why:
                    _plan_root = -1
                    raise RuntimeError(_replay_refusal(i, why))
        _plan_root = -1
        if n > _plan_cap:
            p = <int32_t *>realloc(_plan, n * sizeof(int32_t))
            if p == NULL:
                raise MemoryError("micrograd_fast: no memory for recompute()")
            _plan = p
            four = <uint8_t *>realloc(_plan_four, n)
            if four == NULL:
                raise MemoryError("micrograd_fast: no memory for recompute()")
            _plan_four, _plan_cap = four, n
        for i in range(1, root + 1):
            if mark[i] and A.nodes[i].op != MGF_LEAF:
                _plan[k] = <int32_t>i
                k += 1
        i = 0
        while i < k:
            _plan_four[i] = i + 4 <= k and mgf_neurons4(A.nodes, A.edges, _plan + i)
            if _plan_four[i]:
                _plan_four[i + 1] = _plan_four[i + 2] = _plan_four[i + 3] = 0
                i += 4
            else:
                i += 1
        # a block's head followed in the plan by all its outputs, in order
        # (the common case): the head writes them itself (mgf_recompute's
        # bulk case, _plan_four 2) and they leave the plan
        n = 0
        i = 0
        while i < k:
            _plan[n] = _plan[i]
            _plan_four[n] = _plan_four[i]
            w = mgf_layer_outputs_follow(&A, _plan + i, k - i)
            if w >= 0:
                _plan_four[n] = 2
                i += 1 + w
            else:
                i += 1
            n += 1
        k = n
        _plan_n = k
        _plan_root = root
        _plan_epoch = mgf_handles_epoch
    finally:
        free(mark)
    return 0


cdef int _recompute(Value root) except -1:
    """Value.recompute: the plan (kept while it holds), then mgf_recompute;
    a forward error raises what building that op would raise."""
    cdef int64_t at = 0
    cdef int err
    cdef mgf_node *o
    cdef double x, e
    if root.idx == 0:
        _uninitialized()
    if _plan_root != root.idx or _plan_epoch != mgf_handles_epoch:
        _make_plan(root.idx)
    err = mgf_recompute(&A, _plan, _plan_four, _plan_n, &at)
    if err:
        o = &A.nodes[at]
        x = A.nodes[o.k.c[0]].data
        e = o.param if o.op == MGF_POWC else (A.nodes[o.k.c[1]].data if o.op == MGF_POWV
                                              else 0.0)
        _math_error(err, x, e, _OP_NAMES[o.op] if o.op in (MGF_EXP, MGF_LOG) else "**")
    return 0
