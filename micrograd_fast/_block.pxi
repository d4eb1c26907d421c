# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# layer blocks, one layer over a whole batch (nn's batch call, linear).
#
# A block (MGF_LAYER, see csrc/mgf_core.h) is made in one piece of C: its
# head, then its outputs; its forward and backward passes are the kernels of
# csrc/mgf_block.h, which take every sum in the order micrograd's neurons,
# built row by row, take it (the invariants open that header).  So a batch
# call gives, bit for bit, the outputs and gradients of calling the model
# row by row, fused or not, while its cost is a few matrix products.
#
# What the promise needs, and what is checked here: no node is among one
# block's parameters and inputs twice (the kernels gather each once, add
# into a copy and store it back), and no parameter serves two layers of one
# call (backward finishes a whole layer before the one below it, where row
# by row the layers of each row take turns).  Where either fails, the call
# builds row by row instead: the same numbers by definition.


cdef object _param_ids(MLPPlan plan):
    """The ids of the plan's parameters (a frozenset) when none repeats,
    else False (computed once per plan)."""
    if plan.pids is None:
        ids = frozenset([id(p) for p in plan.params])
        plan.pids = ids if len(ids) == len(plan.params) else False
    return plan.pids


cdef tuple _batch_rows(object X, Py_ssize_t nin, str who):
    """X as (N, items): items a tuple of N * nin floats or Values, row by
    row; a float64 2-D buffer is read without Python objects (items None:
    the numbers are then in the returned memoryview).  Every row's length
    is checked, every item converted, before anything is built."""
    cdef const double[:, :] mv
    cdef Py_ssize_t N, t
    try:
        mv = X
    except (TypeError, ValueError, BufferError):
        pass
    else:
        if mv.shape[1] != nin:
            raise ValueError(f"{who} expects rows of {nin} inputs, got {mv.shape[1]}")
        return (mv.shape[0], None, mv)
    try:
        rows = tuple(X)
    except TypeError:
        raise TypeError(f"{who} expects a batch of rows, not {type(X).__name__}") from None
    items = []
    for row in rows:
        try:
            r = tuple(row)
        except TypeError:
            raise TypeError(f"{who}: each row must be a sequence of inputs, not "
                            f"{type(row).__name__}") from None
        if len(r) != nin:
            raise ValueError(f"{who} expects rows of {nin} inputs, got {len(r)}")
        for v in r:
            if isinstance(v, Value):
                items.append(_as_value(v, "an input"))
            else:
                items.append(_as_float(v, "input"))
    return (len(rows), tuple(items), None)


def mlp_rows(spec, X, *, fused=True):
    """Forward pass of a stack of layers over a batch, one block per layer
    (mirrors mlp_rows).

    spec: an MLPPlan or a sequence of (W, B, act) as for mlp().  X: N rows
    of the plan's nin inputs (a 2-D float64 array, or rows of numbers or
    Values).  Returns N lists of the last layer's outputs, the same
    numbers and gradients that mlp() called on each row in turn gives,
    fused or not (see csrc/mgf_block.h); the hidden layers' outputs get no
    Python objects.  fused: the graph of the calls row by row where a block
    cannot be made (below), or where a class operator was replaced."""
    cdef MLPPlan plan = spec if type(spec) is MLPPlan else mlp_plan(spec)
    plan._check_ready()
    cdef Py_ssize_t N, nin = plan.n_in, t, l, k, m_in, m_out, nleaf = 0, nout = plan.n_out
    N, items, mv = _batch_rows(X, nin, "mlp_rows")
    if N == 0:
        return []
    pids = _param_ids(plan)
    if items is not None:
        seen = set()
        for v in items:
            if isinstance(v, Value):
                if id(v) in seen or (pids is not False and id(v) in pids):
                    pids = False
                    break
                seen.add(id(v))
    if pids is False or (not fused and not _class_ops_own()):
        # a node twice (see the top of this file), or the class's operators
        # to run for every node: row by row
        rows = [items[t * nin:(t + 1) * nin] for t in range(N)] if items is not None \
            else [[mv[t, k] for k in range(nin)] for t in range(N)]
        return [_run_plan(plan, tuple(r), fused) for r in rows]
    # sizes: every layer's block, and a leaf per number among the inputs
    cdef int64_t nodes = 0, edges = 0, lgs = 0, maxwt = 0, maxx = 0, maxz = 0
    cdef int64_t ldn = (N + 7) // 8 * 8  # MGF_LDN: the transposed rows' length
    for l in range(plan.nl):
        m_in = plan.width[l]
        m_out = plan.width[l + 1]
        nodes += 1 + N * m_out
        edges += m_out * (m_in + 1) + N * m_in
        lgs += 3 + N * m_out
        maxwt = max(maxwt, m_in * m_out)
        maxx = max(maxx, ldn * m_in, N * m_in)
        maxz = max(maxz, ldn * m_out)
    if edges >= 0xFFFFFFFF:
        raise ValueError("mlp_rows: the batch is too large for one block; split it")
    if items is None:
        nleaf = N * nin
    else:
        for v in items:
            if not isinstance(v, Value):
                nleaf += 1
    cdef double *WT = <double *>malloc((maxwt + 1) * sizeof(double))
    cdef double *Xs = <double *>malloc((max(maxx, maxz) + 1) * sizeof(double))  # XT
    cdef double *Z = <double *>malloc((maxz + 1) * sizeof(double))  # ZT
    cdef double *Ys = <double *>malloc((max(maxx, maxz) + 1) * sizeof(double))
    cdef double *dtmp
    cdef int32_t *cur = <int32_t *>malloc((max(maxx, maxz) + 1) * sizeof(int32_t))
    cdef int32_t *nxt = <int32_t *>malloc((max(maxx, maxz) + 1) * sizeof(int32_t))
    cdef int32_t *tmp
    cdef PyObject **p = plan.p
    cdef bint any_keep = False
    cdef object item
    cdef const double[:, :] numbers
    if items is None:
        numbers = mv
    try:
        if (WT == NULL or Xs == NULL or Z == NULL or Ys == NULL or cur == NULL
                or nxt == NULL):
            raise MemoryError("micrograd_fast: no memory for a batch call")
        outs = [_new_handle() for t in range(N * nout)]  # allocate first (may run GC)
        _reserve(nodes + nleaf, edges)
        if mgf_reserve_lg(&A, lgs) < 0:
            raise MemoryError("micrograd_fast: cannot grow the local derivative array")
        # from here on no Python code runs until the outputs are registered
        if items is None:
            for t in range(N):
                for k in range(nin):
                    cur[t * nin + k] = <int32_t>mgf_push(&A, MGF_LEAF, numbers[t, k])
        else:
            for t in range(N * nin):
                item = items[t]
                if isinstance(item, Value):
                    cur[t] = <int32_t>(<Value>item).idx
                else:
                    cur[t] = <int32_t>mgf_push(&A, MGF_LEAF, <double>item)
        # the parameters' node indices (as _run_plan reads them)
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
        for l in range(plan.nl):
            m_in = plan.width[l]
            m_out = plan.width[l + 1]
            # each layer's numbers (Ys) are the next one's inputs (Xs)
            mgf_layer_build(&A, plan.idx + k, cur, N, m_in, m_out, plan.act[l], 1, WT, Xs, Z,
                            nxt, l > 0, Ys)
            k += m_out * (m_in + 1)
            tmp = cur
            cur = nxt
            nxt = tmp
            dtmp = Xs
            Xs = Ys
            Ys = dtmp
        for t in range(N * nout):
            _register(<Value>outs[t], cur[t])
    finally:
        free(WT)
        free(Xs)
        free(Z)
        free(Ys)
        free(cur)
        free(nxt)
    # the arena is consistent: the outputs keep the keeping parameters and
    # inputs (the blocks' inner nodes have no handles to keep them)
    cdef list kept = None
    for t in range(plan.nparams if any_keep else 0):
        if _keeping(<Value>p[t]):
            if kept is None:
                kept = []
            kept.append(<object>p[t])
    if items is not None:
        for item in items:
            if isinstance(item, Value) and _keeping(<Value>item):
                if kept is None:
                    kept = []
                kept.append(item)
    if kept is not None:
        kept_t = tuple(kept)
        for t in range(N * nout):
            _set_keep(<Value>outs[t], kept_t)
    return [outs[t * nout:(t + 1) * nout] for t in range(N)]


def linear(x, w):
    """microgpt's linear as one block (mirrors linear): for each row of w,
    sum(w_i * x_i), left to right from 0, as
    ``[sum(wi * xi for wi, xi in zip(row, x)) for row in w]`` gives it,
    the same numbers and gradients.  x: nin Values or numbers; w: rows of
    nin Values.  Returns a list of len(w) Values, _op 'layer_linear'."""
    xs = _seq(x)
    rows = tuple([_as_row(row) for row in w])
    cdef Py_ssize_t nin = len(xs), nout = len(rows), t, j, nleaf = 0
    for j in range(nout):
        if len(<tuple>rows[j]) != nin:
            raise ValueError(f"linear: row {j} has {len(<tuple>rows[j])} weights, expected "
                             f"{nin} (one per input)")
        for v in <tuple>rows[j]:
            _check_param(<PyObject *>v, "a weight")
    items = []
    for v in xs:
        if isinstance(v, Value):
            items.append(_as_value(v, "an input"))
        else:
            items.append(_as_float(v, "input"))
            nleaf += 1
    params = tuple([v for row in rows for v in <tuple>row])
    ids = set([id(v) for v in params])
    for v in items:
        if isinstance(v, Value):
            ids.add(id(v))
    if len(ids) != len(params) + (nin - nleaf) or nout == 0:
        # a node twice (or no rows): as the sums themselves make it
        return [sum([wi * xi for wi, xi in zip(row, items)], 0) for row in rows]
    cdef int64_t edges = nout * nin + nin
    if edges >= 0xFFFFFFFF:
        raise ValueError("linear: too many weights for one block")
    cdef double *WT = <double *>malloc((nin * nout + 1) * sizeof(double))
    cdef double *Xs = <double *>malloc((8 * nin + 1) * sizeof(double))
    cdef double *Z = <double *>malloc((8 * nout + 1) * sizeof(double))
    cdef int32_t *par = <int32_t *>malloc((nin * nout + 1) * sizeof(int32_t))
    cdef int32_t *inp = <int32_t *>malloc((nin + 1) * sizeof(int32_t))
    cdef int32_t *out = <int32_t *>malloc((nout + 1) * sizeof(int32_t))
    cdef object item
    try:
        if (WT == NULL or Xs == NULL or Z == NULL or par == NULL or inp == NULL
                or out == NULL):
            raise MemoryError("micrograd_fast: no memory for linear")
        outs = [_new_handle() for t in range(nout)]  # allocate first (may run GC)
        _reserve(1 + nout + nleaf, edges)
        if mgf_reserve_lg(&A, 3 + nout) < 0:
            raise MemoryError("micrograd_fast: cannot grow the local derivative array")
        # from here on no Python code runs until the outputs are registered
        for t in range(nin):
            item = items[t]
            if isinstance(item, Value):
                inp[t] = <int32_t>(<Value>item).idx
            else:
                inp[t] = <int32_t>mgf_push(&A, MGF_LEAF, <double>item)
        for t in range(nin * nout):
            par[t] = <int32_t>(<Value>params[t]).idx
        mgf_layer_build(&A, par, inp, 1, nin, nout, MGF_ACT_LINEAR, 0, WT, Xs, Z, out, 0,
                        NULL)
        for t in range(nout):
            _register(<Value>outs[t], out[t])
    finally:
        free(WT)
        free(Xs)
        free(Z)
        free(par)
        free(inp)
        free(out)
    kept = [v for v in params if _keeping(<Value>v)]
    kept += [v for v in items if isinstance(v, Value) and _keeping(<Value>v)]
    if kept:
        kept_t = tuple(kept)
        for t in range(nout):
            _set_keep(<Value>outs[t], kept_t)
    return outs


def _block_isa(level=None):
    """The name of the kernel variant blocks use; with level (0 scalar,
    1 the build's baseline, 2 AVX2, 3 AVX-512) use that one, or the widest
    the CPU has when it has not that one (for tests: every variant gives
    the same doubles)."""
    if level is not None:
        mgf_block_isa_set(<int>level)
    elif mgf_block_isa < 0:
        mgf_block_isa_set(-1)
    return mgf_block_isa_names[mgf_block_isa].decode()
