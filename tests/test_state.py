"""Python state on Values: ownership (memory stays bounded) and re-entrancy
(Python code that runs while the core reclaims memory or frees handles).

Every test runs on both engines.  The pure engine frees through CPython's
reference counting and collector; the compiled core has an arena, whose
size and invariants are checked where it has one.
"""

import gc
import weakref

import pytest


def _compiled(engine):
    return getattr(engine, "COMPILED", False)


def _settle(engine):
    """Free what earlier tests left: late pins in cycles need a reclamation,
    a collection and another reclamation."""
    for _ in range(3):
        _live_nodes(engine)


def _pins(engine):
    return engine.arena_stats()["pinned"] if _compiled(engine) else 0


def _check(engine):
    if _compiled(engine):
        assert engine._check_invariants()


def _live_nodes(engine, collect=True):
    """Nodes still alive: arena nodes after a reclamation (compiled), or
    Value objects the collector knows (pure)."""
    if collect:
        gc.collect()
    if _compiled(engine):
        return engine.compact()["nodes"]
    return sum(1 for o in gc.get_objects() if isinstance(o, engine.Value))


def _fill_arena(engine, free):
    """Leaves until exactly `free` arena slots are left (compiled only)."""
    stats = engine.compact()
    keep = []
    for _ in range(stats["capacity"] - stats["nodes"] - free):
        keep.append(engine.Value(0.0))
    s = engine.arena_stats()
    assert s["capacity"] - s["nodes"] == free
    return keep


class _GcThreshold:
    """Run the cyclic collector very often inside the block."""

    def __enter__(self):
        self.old = gc.get_threshold()
        gc.set_threshold(1, 1, 1)

    def __exit__(self, *exc):
        gc.set_threshold(*self.old)


# 1. bounded memory with Python state ------------------------------------------


def _labelled_step(Value, w, depth=60):
    h = Value(1.0)
    for _ in range(depth):
        h = (h * w + 0.1).tanh()
        h.label = "h"
    (h * h).backward()
    w.grad = 0.0


def test_labelled_loop_is_freed_by_reference_counting(engine):
    """Labels on every node: dropping a step's graph frees it in ONE
    reclamation, without the cyclic collector (no cycles are made)."""
    Value = engine.Value
    w = Value(0.5)
    _settle(engine)
    base = _live_nodes(engine)
    pins = _pins(engine)  # (other tests' leftovers)
    _labelled_step(Value, w)
    one_step = _live_nodes(engine) - base  # what a finished step leaves behind
    # the compiled core needs no cyclic collector for this; the pure
    # engine's closures refer to their own output, so it does
    compiled = _compiled(engine)
    was_enabled = gc.isenabled()
    if compiled:
        gc.disable()
    try:
        peak = 0
        for step in range(300):
            _labelled_step(Value, w)
            if step % 50 == 49:
                peak = max(peak, _live_nodes(engine, collect=not compiled) - base)
                _check(engine)
    finally:
        if was_enabled:
            gc.enable()
    assert peak <= max(one_step, 0) + 5
    assert _pins(engine) <= pins


def _lecture_tanh(Value, x):
    t = (2.718281828459045 ** (2 * x.data) - 1) / (2.718281828459045 ** (2 * x.data) + 1)
    out = Value(t, (x,), "tanh")

    def _backward():
        x.grad += (1 - t**2) * out.grad

    out._backward = _backward  # a closure that refers to out: a cycle
    return out


def _lecture_step(Value, params, xs, ys):
    w1, b1, w2, b2 = params
    loss = Value(0.0)
    for x, y in zip(xs, ys):
        hidden = [_lecture_tanh(Value, w * x + b) for w, b in zip(w1, b1)]
        pred = b2
        for w, h in zip(w2, hidden):
            pred = pred + w * h
        loss = loss + (pred - y) ** 2
    for p in params_flat(params):
        p.grad = 0.0
    loss.backward()
    for p in params_flat(params):
        p.data -= 0.01 * p.grad
    return loss.data


def params_flat(params):
    w1, b1, w2, b2 = params
    return [*w1, *b1, *w2, b2]


def test_custom_op_mlp_is_freed_by_one_collection(engine):
    """Lecture-style custom tanh whose _backward closure captures its own
    output: every step's graph is freed by gc.collect() + a reclamation."""
    Value = engine.Value
    params = (
        [Value(0.1 * i - 0.3, label=f"w1{i}") for i in range(8)],
        [Value(0.0, label=f"b1{i}") for i in range(8)],
        [Value(0.05 * i - 0.2, label=f"w2{i}") for i in range(8)],
        Value(0.0, label="b2"),
    )
    xs = [0.5, -1.0, 2.0, 0.25]
    ys = [1.0, -1.0, 1.0, -1.0]
    base = _live_nodes(engine)
    _lecture_step(Value, params, xs, ys)
    one_step = _live_nodes(engine) - base
    losses = []
    peak = 0
    for step in range(300):
        losses.append(_lecture_step(Value, params, xs, ys))
        if step % 50 == 49:
            peak = max(peak, _live_nodes(engine) - base)
            _check(engine)
    assert losses[-1] < losses[0]
    assert peak <= max(one_step, 0) + 5
    # the parameters kept their labels through it all
    assert params[3].label == "b2" and params[0][0].label == "w10"


def test_deep_chain_with_state_at_the_bottom_frees_without_recursion(engine):
    """1e5 handles, each keeping the one below: freeing the top must not
    overflow the C stack."""
    Value = engine.Value
    base = _live_nodes(engine)
    x = Value(1.0, label="bottom")
    h = x
    for _ in range(100_000):
        h = h + 1.0
    assert h.data == 100_001.0
    del x
    (bottom,) = [v for v in _walk_down(h) if v.label == "bottom"]
    assert bottom.data == 1.0
    del bottom
    del h
    assert _live_nodes(engine) <= base + 2


def _walk_down(v):
    """Every Value below v through _prev (iteratively)."""
    out = []
    stack = [v]
    while stack:
        u = stack.pop()
        out.append(u)
        stack.extend(u._prev)
    return out


def test_plain_graphs_are_not_tracked_by_the_collector(engine):
    """The fast path: no Python state anywhere below, no GC tracking."""
    if not _compiled(engine):
        pytest.skip("the pure engine's Values are ordinary Python objects")
    Value = engine.Value
    a, b = Value(1.0), Value(2.0)
    c = (a * b + 1.0).tanh()
    assert not gc.is_tracked(c)
    a.label = "a"
    d = a * 3.0
    assert gc.is_tracked(d)  # it keeps a


def test_recycled_handles_carry_nothing_from_their_past(engine):
    """Handles that die tracked by the collector (never initialised, in a
    cycle through their attributes, labelled) are not reused as they are:
    new results are untracked and plain."""
    if not _compiled(engine):
        pytest.skip("the pure engine's Values are ordinary Python objects")
    Value = engine.Value
    dying = [Value.__new__(Value) for _ in range(50)]
    for k in range(50):
        v = Value(float(k)) * 2.0
        v.me = v  # a cycle through the attribute dict: the collector clears it
        w = Value(1.0) * 3.0
        w.label = "w"
        dying += [v, w]
    del dying, v, w
    gc.collect()
    a = Value(1.0)
    outs = [a * float(k) for k in range(300)]
    assert not any(gc.is_tracked(o) for o in outs)
    assert all(o.label == "" and o._op == "*" and not hasattr(o, "me") for o in outs)
    assert [o.data for o in outs] == [float(k) for k in range(300)]


def test_fused_layer_outputs_keep_their_labelled_parameters(engine):
    Value = engine.Value
    W = [[Value(0.5, label="w0"), Value(-0.25, label="w1")]]
    B = [Value(0.125, label="b")]
    (out,) = engine.layer(W, B, [2.0, 4.0], "linear")
    del W, B
    _live_nodes(engine)
    labels = {v.label for v in out._prev}
    assert {"w0", "w1", "b"} <= labels
    out.backward()
    grads = {v.label: v.grad for v in out._prev if v.label}
    assert grads == {"w0": 2.0, "w1": 4.0, "b": 1.0}
    _check(engine)


# 2. Python code running during reclamation -------------------------------------


def test_finalizer_that_builds_values_during_reclamation(engine):
    """A cyclic object whose __del__ builds Values is collected while an op
    needs a reclamation: the arena must stay consistent."""
    Value = engine.Value
    results = []

    class Cyclic:
        def __init__(self):
            self.me = self

        def __del__(self):
            results.append((Value(3.0) * 2.0).data)

    x = Value(5.0)
    keep = _fill_arena(engine, 1) if _compiled(engine) else []
    with _GcThreshold():
        for _ in range(20):
            Cyclic()
        y = x * 2.0  # two nodes: needs a reclamation
        for _ in range(20):
            Cyclic()
        z = y * 2.0
    gc.collect()
    assert y.data == 10.0 and z.data == 20.0
    assert results and all(r == 6.0 for r in results)
    z.backward()
    assert x.grad == 4.0
    assert all(v.data == 0.0 for v in keep)
    _check(engine)


def test_released_pin_runs_a_finalizer_that_builds_values(engine):
    """A late-pinned handle released by a reclamation runs Python code (the
    finalizer of its attribute) that builds Values, and even reclaims."""
    Value = engine.Value
    results = []

    class Builds:
        def __del__(self):
            v = Value(4.0) * 0.5
            if _compiled(engine):
                engine.compact()
            results.append(v.data)

    x = Value(1.0)
    y = x * 3.0
    z = y + 1.0
    y.payload = Builds()  # after y was used: a late pin (compiled core)
    del y
    keep = _fill_arena(engine, 1) if _compiled(engine) else []
    assert results == []  # z still uses y
    del z  # no live parent any more
    w = x * 2.0  # reclamation: releases the pin, runs __del__
    gc.collect()
    assert results == [2.0]
    assert w.data == 2.0
    w.backward()
    assert x.grad == 2.0
    del keep
    _check(engine)


# 3. weakref callbacks ---------------------------------------------------------


@pytest.mark.parametrize("subclass", [False, True], ids=["Value", "subclass"])
def test_weakref_callback_reading_prev(engine, subclass):
    Value = engine.Value
    if subclass:

        class Value(engine.Value):  # noqa: N801 - a Value subclass
            pass

    x = Value(7.0)
    y = x * 3.0
    z = y + 1.0
    got = []
    r = weakref.ref(y, lambda _: got.extend(z._prev))
    del y
    fresh = [Value(1000.0 + i) for i in range(50)]
    # the pure engine's z._prev holds y, so the callback never runs there;
    # nor does it on the compiled core when x is a subclass instance (Python
    # state of its own, which y and then z keep, as upstream's _prev would)
    assert sorted(v.data for v in got) in ([], [1.0, 21.0])
    if _compiled(engine) and not subclass:
        assert got
    assert sorted(v.data for v in z._prev) == [1.0, 21.0]
    del got
    assert len(fresh) == 50 and r is not None
    z.backward()
    assert x.grad == 3.0
    _check(engine)


# 4. re-initialising a handle with itself as a child ---------------------------


@pytest.mark.parametrize("label", ["", "v"])
def test_reinit_with_itself_as_child_on_a_full_arena(engine, label):
    Value = engine.Value
    other = Value(2.0)
    v = Value(5.0, label=label)
    keep = _fill_arena(engine, 0) if _compiled(engine) else []
    v.__init__(1.0, (v, other), "mine")
    _check(engine)
    assert v.data == 1.0 and v._op == "mine" and v.label == ""
    assert sorted(c.data for c in v._prev) == [2.0, 5.0]
    (old,) = [c for c in v._prev if c is not other]
    assert old is not v and old.label == "" and old._prev == set()

    def _backward():
        old.grad += 10.0 * v.grad
        other.grad += 1.0 * v.grad

    v._backward = _backward
    v.backward()
    assert old.grad == 10.0 and other.grad == 1.0
    del keep
    _check(engine)


# 5. state set after the node was used -------------------------------------------


def test_backward_set_after_use_survives_dropping_the_handle(engine):
    Value = engine.Value
    x = Value(1.5)
    y = x * 2.0
    z = y + 1.0
    calls = []

    def custom():
        calls.append(1)
        x.grad += 7.0

    y._backward = custom
    del y
    _live_nodes(engine)  # a reclamation while z still needs y
    z.backward()
    assert calls == [1]
    assert x.grad == 7.0
    _check(engine)


def test_label_and_attribute_set_after_use_survive(engine):
    Value = engine.Value
    _settle(engine)
    pins = _pins(engine)
    x = Value(1.5)
    y = x * 2.0
    z = y + 1.0
    y.label = "why"
    y.tag = {"k": 42}
    del y
    _live_nodes(engine)
    (y2,) = [v for v in z._prev if v.label == "why"]
    assert y2.data == 3.0 and y2.tag == {"k": 42}
    del y2
    if _compiled(engine):
        # the reclamation handed the late pin over to z, whose node uses y's
        assert _pins(engine) == pins
    base = _live_nodes(engine)
    del z
    _live_nodes(engine)
    assert _live_nodes(engine) <= base - 3
    assert _pins(engine) <= pins
    _check(engine)


def test_late_state_in_a_cycle_is_freed(engine):
    """A _backward closure set after use that captures its own node: one
    reclamation, one gc.collect() and one more reclamation free it."""
    Value = engine.Value
    x = Value(2.0)
    base = _live_nodes(engine)
    for _ in range(50):
        y = x * 2.0
        z = y + 1.0

        def bw(y=y):
            x.grad += y.grad

        y._backward = bw
        z.backward()
        del y, z, bw
    for _ in range(2):
        _live_nodes(engine)
    assert _live_nodes(engine) <= base
    assert x.grad == 50.0
    _check(engine)


def test_late_state_that_refers_to_a_parent_is_freed(engine):
    """State set on a Value after its node became a child, that refers to a
    Value built on it (a.note = h with h.parent = b, b = a * 2), then all
    three dropped: upstream's Values form a plain cycle the collector frees.
    On the compiled core the arena's late pin on a is handed over, at the
    reclamation, to b (the live handle whose node uses a's): the cycle is
    then one the collector sees, and compact() frees it."""
    Value = engine.Value

    class Holder:
        pass

    refs = []
    for _ in range(20):
        a = Value(1.0)
        b = a * 2.0
        h = Holder()
        h.parent = b
        a.note = h
        refs.append(weakref.ref(h))
        del a, b, h
    try:
        for _ in range(2):
            _live_nodes(engine)
        assert [r for r in refs if r() is not None] == []
    finally:
        for r in refs:  # break the cycles by hand, for the tests after this one
            if r() is not None:
                r().parent = None
        _settle(engine)
    _check(engine)


# 6. a network's parameters between calls ---------------------------------------
# A network call reads where each parameter's node is and whether any
# parameter carries Python state; what changes those between two calls must
# show in the next call's graph and numbers.


def _mlp_pair(engine, fused):
    """Two networks with the same parameter values (the second one fresh)."""
    from micrograd_fast.nn import MLP

    a = MLP(2, [3, 1], engine=engine, fused=fused)
    b = MLP(2, [3, 1], engine=engine, fused=fused)
    for k, (p, q) in enumerate(zip(a.parameters(), b.parameters())):
        p.data = q.data = 0.25 * (k % 5) - 0.5
    return a, b


def _same_step(a, b, x):
    """One call and backward on each network: same output, same grads."""
    for net in (a, b):
        net.zero_grad()
        out = net(x)
        out.backward()
        net.out = out.data
    assert a.out == b.out
    assert [p.grad for p in a.parameters()] == [q.grad for q in b.parameters()]


def _reachable(root):
    seen, stack, found = {}, [root], []
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen[id(v)] = v  # kept alive while walking: ids stay unique
        found.append(v)
        stack.extend(v._prev)
    return found


@pytest.mark.parametrize("fused", [False, True], ids=["chain", "fused"])
def test_network_after_a_parameter_is_reinitialised(engine, fused):
    """p.__init__(x) gives parameter p a new node: the next call uses it."""
    a, b = _mlp_pair(engine, fused)
    x = [1.0, -2.0]
    _same_step(a, b, x)
    a.parameters()[4].__init__(1.5)
    b.parameters()[4].data = 1.5
    _same_step(a, b, x)
    assert any(v is a.parameters()[4] for v in _reachable(a(x)))
    _check(engine)


@pytest.mark.parametrize("fused", [False, True], ids=["chain", "fused"])
def test_network_after_its_parameters_moved(engine, fused):
    """A reclamation moves the parameters' nodes down the arena (dead
    nodes below them): the next call links the moved nodes."""
    junk = [engine.Value(float(k)) for k in range(500)]
    a, b = _mlp_pair(engine, fused)
    x = [0.5, 3.0]
    _same_step(a, b, x)
    del junk
    _live_nodes(engine)
    _same_step(a, b, x)
    _same_step(a, b, x)
    _check(engine)


@pytest.mark.parametrize("fused", [False, True], ids=["chain", "fused"])
@pytest.mark.parametrize("state", ["label", "attribute"])
def test_state_given_to_a_parameter_between_calls_is_kept(engine, fused, state):
    """A parameter labelled (or given an attribute) after the network ran,
    and after that call's graph was reclaimed (no parent uses its node any
    more), is kept by the next call's output, with its state, once the
    network is gone."""
    a, _ = _mlp_pair(engine, fused)
    x = [1.0, 2.0]
    a(x)
    _live_nodes(engine)
    p = a.parameters()[0]
    if state == "label":
        p.label = "first weight"
    else:
        p.tag = "first weight"
    out = a(x)
    del a, p
    gc.collect()
    _live_nodes(engine)
    marks = [getattr(v, "label" if state == "label" else "tag", None) for v in _reachable(out)]
    assert marks.count("first weight") == 1
    _check(engine)
