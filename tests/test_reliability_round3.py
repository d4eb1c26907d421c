"""Reproducers of the third reliability round, each on both engines where it
applies: the sign of a negated NaN, engine names, the room compact() gives
back, compact() while another thread is inside backward(), and output that
is the same from run to run."""

import math
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import micrograd_fast
from micrograd_fast import nn, optim
from micrograd_fast.engine import ENGINE_MODULES, resolve_engine



def sign(x):
    return math.copysign(1.0, x)


# -- D: -v and c - v keep a NaN's sign as v * -1 does ------------------------------------------


@pytest.mark.parametrize("x", [math.nan, -math.nan, 1.5, -0.0, 0.0, math.inf])
def test_negation_is_a_product_with_minus_one(Value, x):
    """Upstream's -v is v * -1, a multiplication, which keeps a NaN's sign
    bit (C's negation flips it)."""
    v = Value(x)
    assert sign((-v).data) == sign(x * -1)
    assert sign((2.0 - v).data) == sign(x * -1 + 2.0)
    assert sign((v - Value(x)).data) == sign(x + x * -1)
    w = Value(1.0)
    assert sign((w - v).data) == sign(1.0 + x * -1)


# -- 3: engines named 'compiled' and 'pure' wherever an engine is named ----------------------------


def test_engine_names_in_nn_and_optim(engine, engine_name):
    m = nn.MLP(2, [3, 1], engine=engine_name)
    assert type(m.parameters()[0]) is engine.Value
    assert nn.Neuron(2, engine=engine_name)._engine is engine
    assert type(nn.Layer(2, 2, engine=engine_name).parameters()[0]) is engine.Value
    opt = optim.SGD(m.parameters(), lr=0.1, engine=engine_name)
    assert opt.engine is engine
    assert resolve_engine(engine_name) is engine
    assert resolve_engine(ENGINE_MODULES[engine_name]) is engine  # module names still work
    assert resolve_engine(engine) is engine


@pytest.mark.parametrize("bad", ["fast", "Compiled", "micrograd_fast", "os", ""])
def test_other_engine_names_are_a_value_error_that_lists_them(bad):
    for make in (lambda: nn.MLP(2, [1], engine=bad), lambda: resolve_engine(bad)):
        with pytest.raises(ValueError, match="expected 'compiled' or 'pure'"):
            make()
    with pytest.raises(TypeError, match="'compiled', 'pure' or a micrograd_fast engine module"):
        nn.MLP(2, [1], engine=42)


def test_engine_names_in_the_benchmarks():
    engines = pytest.importorskip(
        "benchmarks.engines", reason="benchmarks/ is not next to the tests")

    assert engines.canonical("compiled") == "micrograd_fast"
    assert engines.canonical("pure") == "reference"
    assert engines.canonical("torch") == "torch"
    with pytest.raises(ValueError, match="compiled, pure"):
        engines.canonical("fast")
    assert engines.load("pure").name == "reference"


# -- 6: compact() gives back the edge array of a dropped vsum ------------------------------------


def test_compact_gives_back_a_dropped_sum_s_edges(compiled_engine):
    E = compiled_engine
    E.compact()
    before = E.arena_stats()["edge_capacity"]
    xs = [E.Value(1.0) for _ in range(300_000)]
    s = E.vsum(xs)
    assert E.arena_stats()["edge_capacity"] >= 300_000
    del xs, s
    stats = E.compact()
    assert stats["edge_capacity"] <= max(before, 2 * stats["edges"], 1 << 16)  # MIN_ECAP


# -- 7: compact() while another thread is inside backward() ---------------------------------------


def test_compact_while_another_thread_is_in_backward_is_refused_and_then_works(compiled_engine):
    """The rule: an explicit compact() during a pass, from any thread, is a
    RuntimeError that says to call it after; the pass's numbers are not
    touched, and the call works once the pass is over."""
    E = compiled_engine
    inside, release = threading.Event(), threading.Event()
    x = E.Value(3.0)
    y = x * x
    z = E.Value(y.data + 1.0, (y,), "slow")

    def _backward():
        inside.set()
        release.wait(10)
        y.grad += z.grad

    z._backward = _backward
    t = threading.Thread(target=z.backward)
    t.start()
    assert inside.wait(10)
    try:
        with pytest.raises(RuntimeError, match="while a backward\\(\\) pass is running"):
            E.compact()
        junk = [E.Value(float(i)) * 2.0 for i in range(1000)]  # the arena grows meanwhile
        del junk
    finally:
        release.set()
        t.join(10)
    assert x.grad == 6.0
    assert E.compact()["nodes"] >= 1


# -- 4: the same output from run to run ----------------------------------------------------------


SCRIPT = textwrap.dedent(
    """
    import random
    from micrograd_fast.nn import MLP
    from micrograd_fast import Value

    random.seed(3)
    model = MLP(3, [8, 8, 1], act="tanh")
    xs = [[random.uniform(-1, 1) for _ in range(3)] for _ in range(20)]
    ys = [random.choice([-1.0, 1.0]) for _ in xs]
    for step in range(30):
        scores = [model(x) for x in xs]
        # a node reached along many paths: each weight is used by every sample
        loss = sum((s - y) ** 2 for s, y in zip(scores, ys)) * (1.0 / len(xs))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
    print(repr(loss.data), *(repr(p.grad) for p in model.parameters()))
    """
)


def test_two_runs_print_the_same_bytes(engine, tmp_path):
    """Upstream's gradient sums follow memory addresses (a set), so two runs
    can differ in the last bits; ours follow creation order."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env_var = "0" if engine.COMPILED else "1"
    outs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, str(script)], capture_output=True, cwd=tmp_path,
                           env={**__import__("os").environ,
                                "MICROGRAD_FAST_NO_EXTENSIONS": env_var,
                                "PYTHONHASHSEED": "random"},
                           timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        outs.append(r.stdout)
    assert outs[0] == outs[1] and len(outs[0].split()) == 1 + len(
        nn.MLP(3, [8, 8, 1]).parameters())


def test_package_engine_names_match_the_lab():
    from micrograd_fast.lab.engines import CHOICES

    assert tuple(ENGINE_MODULES) == CHOICES == ("compiled", "pure")
    assert micrograd_fast.engine.resolve_engine(None) is micrograd_fast.engine


# -- B: a dropped subclass instance comes back through _prev as itself -------------------------


def _subclasses(Value):
    class S(Value):
        __slots__ = ("tag",)

    class D(Value):
        pass

    return S, D


def test_a_dropped_subclass_instance_is_the_child_itself(Value):
    import gc

    S, D = _subclasses(Value)
    s = S(1.0)
    s.tag = "x"
    y = s * 2.0
    d = D(3.0)
    z = y + d
    del s, d
    gc.collect()
    if hasattr(micrograd_fast.engine, "compact") and Value is micrograd_fast.engine.Value:
        micrograd_fast.engine.compact()
    (child,) = [p for p in y._prev if p.data == 1.0]
    assert type(child) is S and child.tag == "x"
    (dee,) = [p for p in z._prev if p.data == 3.0]
    assert type(dee) is D
    z.backward()
    assert child.grad == 2.0 and dee.grad == 1.0
    # a subclass instance made by an op is a plain Value, as upstream makes it
    assert type(child * 1.0) is Value


def test_dropped_subclass_graphs_are_freed(Value):
    import gc
    import weakref

    S, _ = _subclasses(Value)
    s = S(1.0)
    y = s * 2.0
    ref = weakref.ref(s)
    del s, y
    gc.collect()
    assert ref() is None


# -- C: nn builds through operators replaced on the class -------------------------------------


def test_nn_builds_through_replaced_operators(engine):
    import random

    Value = engine.Value
    original_add, original_relu = Value.__add__, Value.relu
    random.seed(4)
    model = nn.MLP(3, [4, 1], engine=engine)
    x = [0.5, -1.0, 2.0]
    plain = model(x)
    counts = {"add": 0, "relu": 0}

    def logged_add(self, other):
        counts["add"] += 1
        return original_add(self, other)

    def logged_relu(self):
        counts["relu"] += 1
        return original_relu(self)

    Value.__add__ = logged_add
    Value.relu = logged_relu
    try:
        out = model(x)
        # upstream's nn.py: 4 neurons of 3 inputs, then 1 of 4; relu on the hidden layer
        assert counts == {"add": 16, "relu": 4}
        out.backward()
        via_class = [p.grad for p in model.parameters()]
        model.zero_grad()
        assert model.fused is False and out.data == plain.data
        layer_out = nn.Layer(3, 2, engine=engine)(x)
        assert counts["add"] == 16 + 6 and len(layer_out) == 2
    finally:
        Value.__add__ = original_add
        Value.relu = original_relu
    plain.backward()
    assert [p.grad for p in model.parameters()] == via_class
    model.zero_grad()
    before = dict(counts)
    model(x)
    assert counts == before  # restored: the core's own graph again, nothing logged
    # the fused graph is ours alone, one node per neuron: it does not go through them
    Value.__add__ = logged_add
    try:
        model.fused = True
        assert model(x)._op == "neuron_linear" and counts == before
    finally:
        Value.__add__ = original_add


# -- A and 8: late pins the collector can see ---------------------------------------------------


def _live_values(engine):
    """Values alive now: the arena's nodes (compiled), or Value objects (pure)."""
    import gc

    if engine.COMPILED:
        return engine.compact()["nodes"] - 1  # (the sentinel)
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is engine.Value)


def test_late_pins_that_chain_are_freed_at_once(engine):
    """State whose cycle runs through the Value alone, set after use on each
    node of a chain: the pins are handed over down the chain at one
    reclamation, so one compact() (which collects what it handed over) frees
    every level, not one level per collection."""
    import gc

    Value = engine.Value
    gc.collect()
    base = _live_values(engine)
    x = Value(1.0)
    for _ in range(30):
        y = x + 1.0
        x.me = [x]  # late state whose cycle runs through x alone
        x = y
    del x, y
    gc.collect()
    assert _live_values(engine) == base
    if engine.COMPILED:
        assert engine.arena_stats()["pinned"] == 0
        assert engine._check_invariants()


LATE_LOOP = textwrap.dedent(
    """
    import gc, sys
    import micrograd_fast.{module} as engine

    Value = engine.Value
    most = 0
    for step in range(2500):
        x = Value(1.0)
        for _ in range(30):
            y = x + 1.0
            x.me = [x]
            x = y
        del x, y
        if engine.COMPILED:
            most = max(most, engine.arena_stats()["nodes"])
        elif step % 100 == 99:
            most = max(most, sum(1 for o in gc.get_objects() if type(o) is Value))
    print(most, engine.arena_stats()["resizes"] if engine.COMPILED else 0)
    """
)


def test_a_loop_of_late_state_on_chains_stays_bounded(engine, tmp_path):
    """2,500 steps of a 30-deep chain with late state on every node, nothing
    kept, only CPython's own collector running (no compact(), no
    gc.collect()): what is live stays bounded, on both engines (it grew
    without bound on the compiled core: 150k nodes after 2,500 steps)."""
    script = tmp_path / "late_loop.py"
    script.write_text(LATE_LOOP.format(module=engine.__name__.rsplit(".", 1)[1]))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    most, resizes = map(int, r.stdout.split())
    # 2,500 steps make 152,500 nodes; what is live at any time stays below
    # the arena's first capacity (65,536 nodes), which never grows
    assert most < 65536 and resizes == 0


# -- 5: __init__ again rewires the Value in place, as upstream's does ------------------------------


def test_init_again_rewires_the_value_every_graph_uses(engine):
    Value = engine.Value
    a = Value(2.0)
    b = a * 3.0
    d = b * b
    b.__init__(100.0)
    d.backward()
    assert (a.grad, b.grad) == (0.0, 200.0)  # upstream's numbers: b is a leaf now
    assert [c.data for c in d._prev] == [100.0]
    assert d.data == 36.0  # (the forward pass is not run again)
    assert _checked(engine)


def _checked(engine):
    return engine._check_invariants() if engine.COMPILED else True


@pytest.mark.parametrize("form", ["leaf", "two", "many", "local", "local many"])
def test_init_again_in_place_keeps_the_lists_of_later_nodes(engine, form):
    """A node rewired with more or fewer out-of-line children (more than two)
    or local derivatives than it had: the lists of the nodes after it move,
    and their backward is unchanged."""
    Value = engine.Value
    xs = [Value(float(k + 1)) for k in range(6)]
    v = Value(0.5, xs[:4], (1.0, 2.0, 3.0, 4.0))  # a local node with four children
    top = v * 2.0
    later = Value(0.0, xs[1:], (1.0, 1.0, 1.0, 1.0, 1.0)) + engine.vsum(xs)
    kids, lgs = {
        "leaf": ((), None), "two": (xs[:2], None), "many": (xs[:5], None),
        "local": (xs[:1], (7.0,)), "local many": (xs, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)),
    }[form]
    if lgs is None:
        v.__init__(9.0, kids, "mine")
    else:
        v.__init__(9.0, kids, lgs)
    assert _checked(engine)
    assert v.data == 9.0 and [c is x for c, x in zip(v._children, kids)] == [True] * len(kids)
    later.backward()
    assert [x.grad for x in xs] == [1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    for x in xs:
        x.grad = 0.0
    top.backward()
    expect = [0.0] * 6
    for k, lg in enumerate(lgs or ()):
        expect[k] = 2.0 * lg
    assert [x.grad for x in xs] == expect
    assert v.grad == 2.0
    if engine.COMPILED:
        engine.compact()
        assert _checked(engine)


def test_init_again_with_children_made_later(engine):
    """A Value that has never been a child may take children made after it
    (it moves to the end of creation order); one that has been a child is
    refused, on both engines, and left as it was."""
    Value = engine.Value
    fresh = Value(1.0)
    newer = Value(2.0)
    fresh.__init__(3.0, (newer,), "late")
    (fresh * 2.0).backward()
    assert newer.grad == 0.0 and fresh.grad == 2.0  # (a custom op without a rule)
    used = Value(1.0)
    parent = used * 4.0
    later = Value(5.0)
    for kids in ((later,), (used,), (later, Value(0.5))):
        with pytest.raises(ValueError, match="made before it"):
            used.__init__(7.0, kids)
    assert used.data == 1.0
    parent.backward()
    assert used.grad == 4.0
    assert _checked(engine)


def test_init_again_on_a_used_value_during_backward_is_refused(engine):
    Value = engine.Value
    a = Value(2.0)
    b = a * 3.0
    c = b * 1.0
    out = c + 0.0
    errors = []

    def rule():
        try:
            b.__init__(1.0)
        except RuntimeError as e:
            errors.append(str(e))
        b.grad += c.grad

    c._backward = rule
    out.backward()
    assert len(errors) == 1 and "backward() pass" in errors[0]
    assert b.data == 6.0 and a.grad == 3.0
    assert _checked(engine)


# -- C: a replaced __init__ runs for the operators' results, as upstream's Value(...) calls do ------


def _doubling_init(Value):
    original = Value.__init__

    def doubling(self, data, *args, **kwargs):
        original(self, data * 2, *args, **kwargs)

    return original, doubling


def test_replaced_init_runs_inside_the_operators(engine):
    """The probe's numbers: upstream and the pure engine give 52.0; every op
    result and every constant goes through Value(...)."""
    Value = engine.Value
    a, b = Value(3.0), Value(4.0)
    original, doubling = _doubling_init(Value)
    Value.__init__ = doubling
    try:
        out = a * b + 1.0  # (3 * 4) * 2 = 24; Value(1.0) is 2.0; (24 + 2) * 2
        assert out.data == 52.0 and out._op == "+"
        assert sorted(c.data for c in out._prev) == [2.0, 24.0]
        out.backward()
        assert (a.grad, b.grad) == (4.0, 3.0)  # the rules are the ops' own
    finally:
        Value.__init__ = original
    assert (a * b + 1.0).data == 13.0  # restored: the core's own path again


def test_replaced_init_gives_the_same_doubles_on_both_engines():
    from micrograd_fast import _engine_py as P

    C = pytest.importorskip("micrograd_fast._engine")
    results = []
    for E in (C, P):
        Value = E.Value
        original, doubling = _doubling_init(Value)
        x, w = Value(1.5), Value(-0.25)
        Value.__init__ = doubling
        try:
            y = ((x - 2.0) / x + x ** 2 + (w * x).tanh() - x + 3.0 / w + 2.0 ** w
                 + (-x).exp() + x.relu() + (x * x).log() + x.sigmoid())
            y.backward()
        finally:
            Value.__init__ = original
        results.append((y.data, x.grad, w.grad, y._op))
    assert results[0] == results[1]


def test_nn_runs_a_replaced_init_for_every_node(engine):
    """A notebook that counts nodes by replacing __init__: upstream's nn
    makes every node with Value(...), so does ours then (both engines)."""
    import random

    Value = engine.Value
    random.seed(5)
    model = nn.MLP(3, [4, 1], engine=engine)
    x = [0.5, -1.0, 2.0]
    plain = model(x).data
    original = Value.__init__
    made = []

    def counting(self, *args, **kwargs):
        made.append(args[2] if len(args) > 2 else "")
        original(self, *args, **kwargs)

    Value.__init__ = counting
    try:
        out = model(x)
    finally:
        Value.__init__ = original
    # per neuron of n inputs: n products, n sums, one activation (none on the
    # last layer); the inputs are numbers: a leaf each product (upstream: w * x)
    assert made.count("*") == 16 and made.count("+") == 16 and made.count("ReLU") == 4
    assert out.data == plain
