# Part of micrograd_fast/_engine.pyx (included there; not a module of its own):
# the node arena: growth, reclamation (mark-compact), invariant checks, statistics.

# the arena and its bookkeeping ----------------------------------------------
cdef mgf_arena A
cdef int64_t MIN_CAP = 1 << 16
cdef int64_t MIN_ECAP = 1 << 16
cdef int _busy = 0
cdef int64_t _compactions = 0
cdef int64_t _resizes = 0  # changes of the node capacity


cdef tuple _c_names(const char *const *table, int n):
    """The strings of a C name table, as a tuple of str."""
    cdef int i
    names = []
    for i in range(n):
        names.append(table[i].decode("ascii"))
    return tuple(names)


# the op and activation tables of csrc/mgf_core.h (MGF_OPS, MGF_ACTS), by code
_OP_CODES = _c_names(mgf_op_codes, MGF_NOPS)  # "LEAF", "ADD", ...
_OP_NAMES = _c_names(mgf_op_names, MGF_NOPS)  # the _op string of each op
_ACT_NAMES = _c_names(mgf_act_names, MGF_NACTS)

# Value._label holds this when the label was set to None (None in _label
# means the default label, '').
cdef object _NO_LABEL = object()


cdef int _grow(int64_t more) except -1:
    global _resizes
    cdef int64_t cap = A.cap * 2
    if cap < MIN_CAP:
        cap = MIN_CAP
    if cap < A.n + more:
        cap = A.n + more
    if cap > MGF_MAX_NODES:
        cap = MGF_MAX_NODES
    if A.n + more > cap or mgf_resize_nodes(&A, cap) < 0:
        raise MemoryError(
            f"micrograd_fast: cannot grow the node arena to {A.n + more} nodes")
    _resizes += 1
    return 0


cdef inline int _reserve(int64_t nodes, int64_t edges) except -1:
    """Room for `nodes` more nodes and `edges` more edges (see the ordering
    invariant: no Python code may run between this and the registration)."""
    if A.n + nodes <= A.cap and A.ne + edges <= A.ecap:
        return 0
    return _make_room(nodes, edges)


cdef int _make_room(int64_t nodes, int64_t edges) except -1:
    while A.n + nodes > A.cap:
        if _busy == 0 and A.n > 0:
            # releasing late pins at the end of _compact may run Python code
            # (finalizers) that makes nodes: so the loop checks the room again
            _reclaim(False)
            _fit_capacity(nodes)
        else:
            _grow(nodes)
    if A.ne + edges > A.ecap and mgf_reserve_edges(&A, edges) < 0:
        raise MemoryError("micrograd_fast: cannot grow the edge array")
    return 0


# What the arena had to hold at recent reclamations (live nodes plus the
# request being served): the largest such figure, losing a quarter at each
# reclamation.  The capacity follows it, not the live size of the
# moment, so a training loop (whose live size swings from its parameters to
# a whole step's graph) keeps one capacity instead of resizing it (copying
# the arrays) at nearly every reclamation.
cdef int64_t _peak_need = 0


# Reclamation slides down whatever is live above the first dead node: in a
# training loop, the part of the current step's graph built so far.  So
# the rarer the reclamations, the less is moved per node made: up to
# ROOMY_CAP nodes the capacity holds four times the peak need, beyond that
# twice (memory then matters more than the slide).
cdef int64_t ROOMY_CAP = 1 << 20


cdef inline int64_t _headroom(int64_t peak) noexcept:
    return 4 * peak if 4 * peak <= ROOMY_CAP else 2 * peak


cdef inline void _note_graph(int64_t nodes) noexcept:
    """backward() just went through a graph of this many nodes, all of them
    live at once: the peak need is at least that.  A training loop calls
    backward() every step, so its graph size holds the peak up between
    reclamations.  Without this, a capacity that is a whole number of steps
    long lets every reclamation fall at the start of a step, when little is
    live: the peak would decay, the arena shrink below a step, and the next
    reclamation (in the middle of a step) grow it back, over and over."""
    global _peak_need
    if _peak_need < nodes:
        _peak_need = nodes


cdef int _fit_capacity(int64_t more, bint now=False) except -1:
    """After a compaction: the capacity is the smallest power of two, at
    least MIN_CAP, that holds _headroom() of the recent peak need.  It is
    resized only when it is below that or more than four times as large, so
    it does not flip between two sizes; ``now`` (an explicit compact())
    forgets the peak and fits the capacity to what is live.  When the memory for that
    power of two cannot be had, twice the need is tried before MemoryError
    (the old sizing, which leaves room for a later reclamation's scratch
    arrays)."""
    global _peak_need, _resizes
    cdef int64_t need = A.n + more, before = A.cap
    cdef int64_t target = MIN_CAP, room
    if now:
        _peak_need = 0
    _peak_need -= _peak_need >> 2
    if _peak_need < need:
        _peak_need = need
    room = _headroom(_peak_need)
    while target < room and target < MGF_MAX_NODES:
        target <<= 1
    if target > MGF_MAX_NODES:
        target = MGF_MAX_NODES
    if A.cap < target or A.cap > 4 * target or (now and A.cap != target):
        if mgf_resize_nodes(&A, target) < 0 and A.cap < need:
            # no room for the power of two: twice the need will do (never
            # less, so that reclamation's own scratch arrays still fit)
            target = 2 * need if 2 * need < MGF_MAX_NODES else MGF_MAX_NODES
            if mgf_resize_nodes(&A, target) < 0:
                raise MemoryError("micrograd_fast: cannot grow the node arena")
    if A.cap != before:
        _resizes += 1
    _fit_edges(now)
    _fit_local_grads(now)
    return 0


# Nodes, edges and local derivatives made since the last reclamation (see
# _fit_edges and _fit_local_grads).
cdef int64_t _base_n = 0, _base_ne = 0, _cycle_n = 0, _cycle_ne = 0
cdef int64_t _base_nl = 0, _cycle_nl = 0
cdef int64_t MIN_LCAP = 1 << 10


cdef inline void _note_cycle() noexcept:
    """Just before a reclamation: how many nodes, edges and local
    derivatives the cycle that ends here made."""
    global _cycle_n, _cycle_ne, _cycle_nl
    _cycle_n = A.n - _base_n
    _cycle_ne = A.ne - _base_ne
    _cycle_nl = A.nl - _base_nl


cdef int64_t _shrunk_size(int64_t used, int64_t cycle_used, int64_t cap,
                          int64_t minimum, bint now) noexcept:
    """After a compaction: the size an array of node attachments (edges,
    local derivatives) shrinks to, or 0 to keep it, so that one huge node
    does not hold its memory for ever.

    The size wanted is what is live (``used``) plus what the next cycle is
    expected to add: the free node slots times the entries per node of the
    cycle that just ended (``cycle_used`` over _cycle_n nodes); at least
    twice what is live, at least ``minimum``.  The array shrinks to that
    only when it (``cap``) is more than twice as large, so a steady workload
    keeps its array and never reallocates it.  ``now`` (an explicit
    compact()) leaves the next cycle out: the array fits what is live, as
    the node arena does then.  Growing is left to the reserve functions; a
    failed shrink keeps the larger array."""
    cdef int64_t target = 2 * used
    cdef double need = used
    if not now and _cycle_n > 0 and cycle_used > 0:
        need += <double>cycle_used / <double>_cycle_n * <double>(A.cap - A.n)
    if need > target:
        target = <int64_t>need if need < 4e18 else cap
    if target < minimum:
        target = minimum
    return target if cap > 2 * target else 0


cdef void _fit_edges(bint now) noexcept:
    """After a compaction: shrink an oversized edge array (_shrunk_size)."""
    global _base_n, _base_ne
    cdef int64_t target = _shrunk_size(A.ne, _cycle_ne, A.ecap, MIN_ECAP, now)
    if target:
        mgf_resize_edges(&A, target)
    _base_n = A.n
    _base_ne = A.ne


cdef void _fit_local_grads(bint now) noexcept:
    """After a compaction: shrink an oversized local derivative array (of
    the Value(data, children, local_grads) nodes) by the same rule."""
    global _base_nl
    cdef int64_t target = _shrunk_size(A.nl, _cycle_nl, A.lcap, MIN_LCAP, now)
    if target:
        mgf_resize_lg(&A, target)
    _base_nl = A.nl


# The byte map of the outermost backward() pass, kept from one pass to the
# next: a fresh calloc that large is a fresh mapping from the kernel, one
# page fault per 4 KiB the pass touches, on every training step.  It has
# a byte per arena slot and follows the capacity.  Nested passes (a
# Python _backward calling backward()) get a map of their own.
cdef uint8_t *_seen = NULL
cdef int64_t _seen_cap = 0
# a pass that stopped early (a Python rule raised) left bytes set in _seen
cdef bint _seen_dirty = False


cdef uint8_t *_seen_map(int64_t size) noexcept:
    """The shared backward map, zero over its first ``size`` bytes (``size``
    is at most the arena's capacity plus one); NULL when there is no memory
    for it.  A pass that runs to the end leaves the map zero (the sweep
    clears each byte it visits), so it is zeroed only when it is made and
    after a pass that stopped early."""
    global _seen, _seen_cap, _seen_dirty
    cdef int64_t want = A.cap + 1 if A.cap + 1 > size else size
    if _seen_cap < size or _seen_cap > 2 * want:
        free(_seen)
        _seen = <uint8_t *>calloc(want, 1)
        _seen_cap = want if _seen != NULL else 0
        _seen_dirty = False
        if _seen == NULL:
            return NULL
    elif _seen_dirty:
        memset(_seen, 0, _seen_cap)
        _seen_dirty = False
    mgf_assert_zero(_seen, size)
    return _seen


cdef int _reclaim(bint explicit) except -1:
    """A reclamation: one compaction, and a second one after a collection
    when the first handed pins over (see mgf_hand_over_pins) and left the
    arena at least half full (an explicit compact(): whenever it handed
    pins over).  Until the hand-over, a late-pinned handle in a cycle was
    held by the arena, so the cycle was not garbage to the collector, and
    everything built under it since the last reclamation looked live; now
    it is plain garbage, which only a full collection reaches (its objects
    are old by now).  Without the second round a loop that sets late
    state in cycles would grow the arena at every reclamation.  Nothing is
    collected while the collector is disabled."""
    _note_cycle()
    _compact()
    if _pins_moved and (explicit or 2 * A.n > A.cap) and _gc.isenabled():
        _gc.collect()
        _compact()
    return 0


cdef int64_t _pins_moved = 0  # pins the last compaction handed over


cdef int _compact() except -1:
    """Mark-compact: keep what handles reach, slide it down, remap indices.

    No Python code runs from the mark to the end of the compaction (see the
    re-entrancy invariant): the late pins it drops are collected in a C
    array and released only once the arena is consistent again."""
    global _compactions, mgf_handles_epoch, _pins_moved
    cdef int64_t n = A.n, i, j, e, t, le = 0, lo, ml, nrel = 0, nused_pins = 0
    cdef uint32_t m
    cdef uint64_t chunk
    cdef void **hs
    cdef mgf_node *o
    cdef int32_t *ch
    cdef void *h
    cdef uint8_t *keep = <uint8_t *>calloc(n if n > 0 else 1, 1)
    cdef int32_t *newidx = <int32_t *>malloc((n if n > 0 else 1) * sizeof(int32_t))
    cdef void **released = <void **>malloc((n if n > 0 else 1) * sizeof(void *))
    if keep == NULL or newidx == NULL or released == NULL:
        free(keep)
        free(newidx)
        free(released)
        raise MemoryError("micrograd_fast: no memory to reclaim the node arena")
    # mark: bit 0 = alive, bit 1 = used by a live parent.  Handles are roots,
    # except a late-pinned one that only the pin references.  A node's mark
    # is final when the sweep down reaches it (its parents come after it),
    # so a handle whose node is not alive leaves the arena here.  Eight
    # slots with no handle and no mark (most of a dead step's graph) are
    # passed over at once.
    mgf_handles_epoch += 1  # nodes move: handle.idx changes (see mgf_handles_epoch)
    keep[0] = 1  # the sentinel
    i = n - 1
    while i >= 0:
        if i >= 8:
            memcpy(&chunk, keep + i - 7, 8)
            if chunk == 0:
                hs = A.handles + i - 7
                if (<uintptr_t>hs[0] | <uintptr_t>hs[1] | <uintptr_t>hs[2] | <uintptr_t>hs[3]
                        | <uintptr_t>hs[4] | <uintptr_t>hs[5] | <uintptr_t>hs[6]
                        | <uintptr_t>hs[7]) == 0:
                    i -= 8
                    continue
        h = A.handles[i]
        if h != NULL:
            if not ((A.nodes[i].flags & MGF_F_PINNED) and Py_REFCNT(h) == 1):
                keep[i] |= 1
            elif not keep[i]:
                # a late-pinned handle nothing else uses: it leaves the arena
                (<Value>h).idx = 0
                A.handles[i] = NULL
                released[nrel] = h
                nrel += 1
        if keep[i]:
            o = &A.nodes[i]
            ch = mgf_children(&A, o)
            for t in range(o.n):
                keep[ch[t]] |= 3
        i -= 1
    j = 0
    e = 0
    i = 0
    while i < n:
        if i + 8 <= n:
            memcpy(&chunk, keep + i, 8)
            if chunk == 0:
                i += 8
                continue
        if not keep[i]:
            i += 1
            continue
        h = A.handles[i]
        newidx[i] = <int32_t>j
        o = &A.nodes[i]
        m = o.n
        if m <= 2:
            if m >= 1:
                o.k.c[0] = newidx[o.k.c[0]]
            if m == 2:
                o.k.c[1] = newidx[o.k.c[1]]
        else:
            # edges move down in node order, so this never overwrites
            # an entry that is still to be read
            for t in range(m):
                A.edges[e + t] = newidx[A.edges[o.k.off + t]]
            o.k.off = e
            e += m
        if mgf_has_lg(o):
            # local derivatives (a block head's list): in node order too, so
            # they only move down
            lo = MGF_LG_OFF(o)
            ml = mgf_lg_len(A.lg, o)
            if lo != le:
                memmove(A.lg + le, A.lg + lo, ml * sizeof(double))
            o.param = <double>le
            le += ml
        if not (keep[i] & 2):
            if o.flags & MGF_F_USED:  # no live parent: state added later needs no pin
                o.flags = (o.flags & ~MGF_F_USED) | MGF_F_WASUSED
            if o.flags & MGF_F_PINNED:
                o.flags &= ~MGF_F_PINNED
                released[nrel] = h
                nrel += 1
        elif o.flags & MGF_F_PINNED:
            nused_pins += 1  # a live parent uses it: the pin is handed over below
        if j != i:
            A.nodes[j] = o[0]
            A.handles[j] = h
            A.handles[i] = NULL  # (slots left empty: see mgf_arena.handles)
            if h != NULL:
                (<Value>h).idx = j
        j += 1
        i += 1
    A.n = j
    A.ne = e
    A.nl = le
    free(keep)
    free(newidx)
    _compactions += 1
    MGF_CHECK_ARENA(&A, "after reclamation")
    cdef mgf_handover H
    memset(&H, 0, sizeof(H))
    _pins_moved = 0
    if nused_pins and mgf_hand_over_pins(&A, &H) == 0:
        # still no Python code: every handle named is held for the hand-over,
        # and the moved pins leave the arena (their references are
        # released with the others, once the holders have taken them)
        for t in range(H.n):
            Py_INCREF(<object>H.holder[t])
            Py_INCREF(<object>H.taken[t])
        _pins_moved = H.nmoved
        for t in range(H.nmoved):
            A.nodes[H.moved[t]].flags &= ~MGF_F_PINNED
            released[nrel] = A.handles[H.moved[t]]
            nrel += 1
    # the arena is consistent: Python code may run from here on
    try:
        _take_handed_over(&H)
    finally:
        for t in range(H.n):
            _decref_raw(H.holder[t])
            _decref_raw(H.taken[t])
        mgf_handover_free(&H)
        for i in range(nrel):
            _decref_raw(released[i])
        free(released)
    return 0


cdef int _take_handed_over(mgf_handover *H) except -1:
    """Each holder's _keep takes the handles handed over to it (pairs
    grouped by holder, see mgf_hand_over_pins)."""
    cdef int64_t t = 0, u
    cdef Value h
    while t < H.n:
        u = t
        while u < H.n and H.holder[u] == H.holder[t]:
            u += 1
        h = <Value>H.holder[t]
        kept = tuple([<object>H.taken[k] for k in range(t, u)])
        _set_keep(h, kept if h._keep is None else h._keep + kept)
        t = u
    return 0


def compact():
    """Reclaim every node no live Value can reach, now.  Returns arena_stats().

    This happens by itself whenever the arena fills up; calling it is never
    needed, but it makes memory measurements exact.  The capacity is fitted
    to what is live now (a reclamation that happens by itself fits it to
    the recent peak instead)."""
    if _busy:
        # a pass in this thread (a Python _backward calling compact()) or in
        # another one (while its Python rule runs): the pass holds node
        # indices that a compaction would move.  Room needed meanwhile is
        # had by growing, not reclaiming (_make_room); an explicit call
        # says so.
        raise RuntimeError(
            "cannot compact the arena while a backward() pass is running, in this "
            "thread or another: call compact() after it (meanwhile the arena "
            "grows as needed)")
    _reclaim(True)
    _fit_capacity(0, True)
    return arena_stats()


_CHECK_NAMES = {
    MGF_CHECK_SIZES: "sizes exceed capacities", MGF_CHECK_SENTINEL: "node 0 is not the sentinel",
    MGF_CHECK_OP: "unknown op code", MGF_CHECK_EDGES: "children list outside or out of order",
    MGF_CHECK_CHILD: "a child index not below its parent's", MGF_CHECK_PIN: "pin without a handle",
    MGF_CHECK_LGRADS: "local derivatives outside or out of order",
    MGF_CHECK_SLOTS: "a handle in a slot above the last node",
}


def _check_invariants():
    """Check the arena's invariants in O(nodes + edges); True, or AssertionError.

    The structural checks are mgf_check (csrc/mgf_core.h); here in addition
    every handle must point back at its own slot."""
    cdef int64_t where = -1, i
    cdef int err = mgf_check(&A, &where)
    if err:
        raise AssertionError(
            f"arena invariant broken at node {where}: {_CHECK_NAMES.get(err, err)}")
    for i in range(A.n):
        if A.handles[i] != NULL and (<Value>A.handles[i]).idx != i:
            raise AssertionError(f"arena invariant broken at node {i}: "
                                 f"its handle points at node {(<Value>A.handles[i]).idx}")
    return True


def arena_stats():
    """Sizes of the node arena: nodes in use, capacity, edges in use, edge
    capacity, handles, pins, bytes; how many reclamations and changes of
    the node capacity there have been."""
    cdef int64_t i, handles = 0, pinned = 0
    for i in range(A.n):
        if A.handles[i] != NULL:
            handles += 1
            if A.nodes[i].flags & MGF_F_PINNED:
                pinned += 1
    return {
        "nodes": A.n,
        "capacity": A.cap,
        "edges": A.ne,
        "edge_capacity": A.ecap,
        "local_grads": A.nl,
        "handles": handles,
        "pinned": pinned,
        "compactions": _compactions,
        "resizes": _resizes,
        "node_bytes": sizeof(mgf_node) + sizeof(void *),
        "bytes": (A.cap * (sizeof(mgf_node) + sizeof(void *)) + A.ecap * sizeof(int32_t)
                  + A.lcap * sizeof(double)),
    }
