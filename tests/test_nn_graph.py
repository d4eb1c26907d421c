"""micrograd_fast.nn builds upstream micrograd's graph by default.

Each model call is checked against micrograd 0.1.0's ``nn`` on the same
parameters: the two graphs are walked side by side over ``_prev`` (op, data
bit for bit, children paired one to one, the same number of nodes), and the
grads of every node are compared bit for bit after a backward pass, in both
directions (our ``backward()`` against upstream's local rules replayed in
creation order, and upstream's ``backward()`` against our nodes' own
``_backward()`` replayed in upstream's order).  The tanh network, which
upstream cannot build, is compared with the same expression written with the
engine's own operators.  ``fused=True`` is the other graph, one node per
neuron, and must draw as well.
"""

import itertools
import random
import shutil

import numpy as np
import pytest

from micrograd_fast import nn
from micrograd_fast._vocab import ACTIVATIONS
from micrograd_fast.viz import collect_graph

# -- walking graphs ---------------------------------------------------------------------


def reachable(root):
    """Every node reachable from ``root`` through ``_prev`` (id -> node)."""
    nodes, _ = collect_graph(root, max_nodes=None)
    return {id(n): n for n in nodes}


def bits(x):
    """A number's exact value, as text (upstream's bias is the int 0)."""
    return float(x).hex()


class Shapes:
    """Numbers every node by its shape: op, data, name (for parameters and
    inputs) and the shapes of its children, so that equal numbers mean equal
    subgraphs."""

    def __init__(self, names):
        self.names = names  # id(node) -> name
        self.memo = {}
        self.table = {}

    def of(self, node):
        key = id(node)
        if key not in self.memo:
            kids = tuple(sorted(self.of(c) for c in node._prev))
            shape = (node._op, bits(node.data), self.names.get(key), kids)
            self.memo[key] = self.table.setdefault(shape, len(self.table))
        return self.memo[key]


def pair_graphs(ours, theirs, our_names, their_names):
    """Walk two graphs side by side from their roots; return the pairs
    (our node, their node), one per node, after checking that the graphs
    are the same: ops, data bit for bit, children one to one."""
    # every node stays alive while we work: the compiled core makes a
    # node's Python handle on demand, and a dropped one's id() may be reused
    alive = (reachable(ours), reachable(theirs))
    shared = {}
    mine = Shapes(our_names)
    other = Shapes(their_names)
    mine.table = other.table = shared  # one numbering for both graphs
    pairs = {}
    back = {}
    todo = [(ours, theirs)]
    while todo:
        a, b = todo.pop()
        if id(a) in pairs:
            assert pairs[id(a)][1] is b, "one node of ours stands for two of upstream's"
            continue
        assert id(b) not in back, "two nodes of ours stand for one of upstream's"
        assert a._op == b._op
        assert bits(a.data) == bits(b.data), (a._op, a.data, b.data)
        assert our_names.get(id(a)) == their_names.get(id(b))
        pairs[id(a)] = (a, b)
        back[id(b)] = a
        kids_a = sorted(a._prev, key=mine.of)
        kids_b = sorted(b._prev, key=other.of)
        assert [mine.of(c) for c in kids_a] == [other.of(c) for c in kids_b], a._op
        todo.extend(zip(kids_a, kids_b))
    assert len(pairs) == len(alive[0]) == len(alive[1])
    return list(pairs.values())


def check_child_order(root, param_ids):
    """Where the engine exposes ordered children (``_children``), a '+'
    is (running sum, product) and a '*' is (weight, input), as upstream's
    ``b + w*x`` makes them."""
    for node in reachable(root).values():
        kids = getattr(node, "_children", None)
        if kids is None:
            return
        if node._op == "+":
            assert kids[1]._op == "*"
            assert kids[0]._op == "+" or id(kids[0]) in param_ids
        elif node._op == "*":
            assert id(kids[0]) in param_ids


def compare_backward(ours, theirs, pairs, their_order):
    """Grads of every paired node, bit for bit, both ways round.

    ``their_order``: upstream's nodes in creation order (id -> number)."""
    # 1. our backward() against upstream's local rules, newest node first
    for a, b in pairs:
        a.grad = 0.0
        b.grad = 0.0
    ours.backward()
    theirs.grad = 1.0
    for _, b in sorted(pairs, key=lambda ab: their_order[id(ab[1])], reverse=True):
        b._backward()
    for a, b in pairs:
        assert bits(a.grad) == bits(b.grad), (a._op, a.grad, b.grad)
    # 2. upstream's backward() against our nodes' own _backward(), in the
    #    order upstream's backward() takes them (the reverse of a depth-first
    #    post-order over _prev, from the root)
    for a, b in pairs:
        a.grad = 0.0
        b.grad = 0.0
    theirs.backward()
    order, done = [], set()
    stack = [(theirs, iter(theirs._prev))]
    done.add(id(theirs))
    while stack:
        node, kids = stack[-1]
        child = next(kids, None)
        if child is None:
            order.append(node)
            stack.pop()
        elif id(child) not in done:
            done.add(id(child))
            stack.append((child, iter(child._prev)))
    ours_of = {id(b): a for a, b in pairs}
    ours.grad = 1.0
    for b in reversed(order):
        ours_of[id(b)]._backward()
    for a, b in pairs:
        assert bits(a.grad) == bits(b.grad), (a._op, a.grad, b.grad)


@pytest.fixture
def upstream(monkeypatch):
    """micrograd 0.1.0's engine and nn, with each Value's creation number
    recorded (upstream keeps none)."""
    engine = pytest.importorskip("micrograd.engine")
    unn = pytest.importorskip("micrograd.nn")
    born = {}
    counter = itertools.count()
    original = engine.Value.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        born[id(self)] = next(counter)

    monkeypatch.setattr(engine.Value, "__init__", init)
    return engine, unn, born


def names_of(params, inputs=()):
    names = {id(p): ("param", i) for i, p in enumerate(params)}
    names.update({id(x): ("input", i) for i, x in enumerate(inputs)})
    return names


def loss_of(out):
    """A loss over the model's outputs, written with the usual operators."""
    outs = out if isinstance(out, list) else [out]
    total = outs[0] * outs[0]
    for k, o in enumerate(outs[1:]):
        total = total + o * (0.5 + k)
    return total


def same_graph_as_upstream(engine, upstream, make, x, value_inputs=False):
    """Build ``make(nn_module)`` on both sides from the same seed, call both
    on ``x`` and compare the graphs and the grads."""
    uengine, unn, born = upstream
    random.seed(1234)
    ours_model = make(nn, engine=engine)
    random.seed(1234)
    their_model = make(unn)
    our_params, their_params = ours_model.parameters(), their_model.parameters()
    assert [p.data for p in our_params] == [p.data for p in their_params]
    if value_inputs:
        our_x = [engine.Value(v) for v in x]
        their_x = [uengine.Value(v) for v in x]
    else:
        our_x = their_x = list(x)
    our_out = ours_model(our_x)
    their_out = their_model(their_x)
    if isinstance(their_out, list):
        assert [o.data for o in our_out] == [o.data for o in their_out]
    our_loss, their_loss = loss_of(our_out), loss_of(their_out)
    our_names = names_of(our_params, our_x if value_inputs else ())
    their_names = names_of(their_params, their_x if value_inputs else ())
    pairs = pair_graphs(our_loss, their_loss, our_names, their_names)
    for out in our_out if isinstance(our_out, list) else [our_out]:
        check_child_order(out, {id(p) for p in our_params})
    compare_backward(our_loss, their_loss, pairs, born)
    for p, q in zip(our_params, their_params):
        assert bits(p.grad) == bits(q.grad)
    return pairs


# -- the graphs, against upstream ----------------------------------------------------------


@pytest.mark.parametrize("value_inputs", [False, True], ids=["numbers", "values"])
def test_neuron_graph_is_upstreams(engine, upstream, value_inputs):
    def make(mod, **kw):
        return mod.Neuron(3, **kw)

    pairs = same_graph_as_upstream(
        engine, upstream, make, [0.5, -1.25, 2.0], value_inputs=value_inputs
    )
    ops = sorted(a._op for a, _ in pairs)
    # 3 products and 3 sums, ReLU, and the loss's own product
    assert ops.count("*") == 4 and ops.count("+") == 3 and ops.count("ReLU") == 1


@pytest.mark.parametrize("nonlin", [True, False])
def test_layer_graph_is_upstreams(engine, upstream, nonlin):
    def make(mod, **kw):
        return mod.Layer(3, 4, nonlin=nonlin, **kw)

    pairs = same_graph_as_upstream(engine, upstream, make, [0.5, -1.25, 2.0])
    leaves = [a for a, _ in pairs if not a._prev]
    # one leaf per neuron and number input (as upstream's w * x makes them),
    # the 16 parameters and the loss's three constants
    assert len(leaves) == 4 * 3 + 16 + 3


def test_layer_makes_one_input_leaf_per_neuron(engine, upstream):
    random.seed(2)
    layer = nn.Layer(3, 4, engine=engine)
    outs = layer([0.5, -1.25, 2.0])
    leaves = [
        n for out in outs for n in reachable(out).values()
        if not n._prev and all(n is not p for p in layer.parameters())
    ]
    assert sorted(n.data for n in leaves) == sorted([0.5, -1.25, 2.0] * 4)
    assert len({id(n) for n in leaves}) == 12


def test_demo_mlp_graph_is_upstreams(engine, upstream):
    def make(mod, **kw):
        return mod.MLP(2, [16, 16, 1], **kw)

    pairs = same_graph_as_upstream(engine, upstream, make, [0.7, -0.3])
    ours = [a for a, _ in pairs]
    assert sum(a._op == "ReLU" for a in ours) == 32
    assert sum(a._op == "*" for a in ours) == 2 * 16 + 16 * 16 + 16 + 1


def test_demo_mlp_graph_with_value_inputs(engine, upstream):
    def make(mod, **kw):
        return mod.MLP(2, [16, 16, 1], **kw)

    same_graph_as_upstream(engine, upstream, make, [0.7, -0.3], value_inputs=True)


def test_mlp_with_several_outputs(engine, upstream):
    def make(mod, **kw):
        return mod.MLP(3, [4, 5, 2], **kw)

    same_graph_as_upstream(engine, upstream, make, [0.5, -1.5, 2.0])


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a not in ("relu", "linear")])
def test_tanh_mlp_graph_is_the_operators_graph(engine, act):
    """Upstream has no tanh: the reference is upstream's Neuron expression,
    ``sum((w*x for ...), b)`` and the activation, on the engine's own Value."""
    random.seed(99)
    model = nn.MLP(3, [4, 4, 1], act=act, out_act=act, engine=engine)

    def by_hand(x):
        for layer in model.layers:
            outs = []
            for n in layer.neurons:
                z = sum((wi * xi for wi, xi in zip(n.w, x)), n.b)
                outs.append(getattr(z, act)())
            x = outs
        return x[0] if len(x) == 1 else x

    x = [0.8813735870195432, -0.25, 1.5]
    ours, ref = model(x), by_hand(x)
    assert ours._op == act
    params = model.parameters()
    names = names_of(params)
    loss_a, loss_b = loss_of(ours), loss_of(ref)
    pairs = pair_graphs(loss_a, loss_b, names, names)
    # the parameters are shared by both graphs, the rest is not
    loss_a.backward()
    recorded = [bits(a.grad) for a, _ in pairs]
    for p in params:
        p.grad = 0.0
    loss_b.backward()
    assert recorded == [bits(b.grad) for _, b in pairs]


def test_every_node_has_its_backward_and_a_label(engine):
    random.seed(4)
    model = nn.MLP(2, [3, 1], engine=engine)
    out = model([1.0, -2.0])
    nodes = reachable(out).values()
    assert {n._op for n in nodes} == {"", "*", "+", "ReLU"}
    for n in nodes:
        assert callable(n._backward)
        assert ":" not in n._op


def test_neuron_without_inputs(engine, upstream):
    _, unn, _ = upstream
    theirs = unn.Neuron(0, nonlin=False)
    assert theirs([]) is theirs.b  # upstream's sum of nothing is its bias
    n = nn.Neuron(0, nonlin=False, engine=engine)
    assert n([]) is n.b
    relu = nn.Neuron(0, engine=engine)
    out = relu([])
    assert out._op == "ReLU" and out._prev == {relu.b}


def test_batches_build_one_block_per_layer(engine):
    """A batch: per output one node whose children are a fused neuron's
    (tests/test_blocks.py checks the numbers bit for bit)."""
    random.seed(8)
    model = nn.MLP(2, [3, 1], engine=engine)
    xs = np.array([[0.5, -1.0], [2.0, 0.25]])
    batch = model(xs)
    for row, out in zip(xs, batch):
        single = model(row.tolist())
        assert out.data == single.data
        assert out._op == "layer_linear"
        hidden = out._children[3:6]
        assert [h._op for h in hidden] == ["layer_relu"] * 3
        assert [c.data for c in hidden[0]._children[2:4]] == row.tolist()
        # weights, biases, the row's 2 leaves, 3 hidden nodes and the output
        assert len(reachable(out)) == 13 + 2 + 3 + 1


def test_caches_follow_structure_changes_in_both_modes(engine):
    random.seed(9)
    for fused in (False, True):
        model = nn.MLP(2, [2, 1], engine=engine, fused=fused)
        before = model([1.0, 2.0]).data
        model.layers[1].neurons[0].b.data = 10.0  # a number, not the structure
        assert model([1.0, 2.0]).data == before + 10.0
        model.layers[0].neurons[0].nonlin = False  # the structure
        out = model([1.0, 2.0])
        assert out.data == sum(
            (w * x for w, x in zip(model.layers[1].neurons[0].w, [
                n([1.0, 2.0]) for n in model.layers[0].neurons
            ])),
            model.layers[1].neurons[0].b,
        ).data


# -- fused=True: the other graph --------------------------------------------------------------


def test_fused_is_an_explicit_opt_in(engine):
    random.seed(6)
    model = nn.MLP(2, [3, 1], engine=engine, fused=True)
    assert model.fused and all(layer.fused for layer in model.layers)
    out = model([1.0, 2.0])
    assert out._op == "neuron_linear"
    assert {c._op for c in out._prev} >= {"neuron_relu"}
    random.seed(6)
    plain = nn.MLP(2, [3, 1], engine=engine)
    assert plain.fused is False
    assert plain([1.0, 2.0]).data == out.data
    assert nn.Neuron(2, engine=engine, fused=True)([1.0, 2.0])._op == "neuron_relu"
    assert nn.Layer(2, 2, engine=engine, fused=True)([1.0, 2.0])[0]._op == "neuron_relu"
    model.fused = False  # a plain attribute: the next call builds upstream's graph
    assert model([1.0, 2.0])._op == "+"
    # set between two calls with nothing else in between
    model.fused = True
    assert model([1.0, 2.0])._op == "neuron_linear"
    model.fused = False
    assert model([1.0, 2.0])._op == "+"


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_fused_op_names_are_safe_in_graphviz_names(engine, act):
    out = nn.Neuron(2, act=act, nonlin=act != "linear", engine=engine, fused=True)([1.0, 2.0])
    assert out._op == "neuron_" + act
    assert out._op.isidentifier()


# -- drawing, the way trace_graph.ipynb does ---------------------------------------------------


def graph_of(root):
    """The Values and the (child, parent) edges below ``root``."""
    found = reachable(root)
    edges = {(id(c), id(v)) for v in found.values() for c in v._prev}
    return list(found.values()), edges


def draw(root):
    """A trace_graph.ipynb-style drawing: a record per Value, a small node
    per op named ``str(id(value)) + value._op``, edges into the op nodes."""
    graphviz = pytest.importorskip(
        "graphviz", reason="the graphviz Python package is not installed"
    )
    dot = graphviz.Digraph(format="svg", graph_attr={"rankdir": "LR"})
    values, edges = graph_of(root)
    by_id = {id(v): v for v in values}
    for v in values:
        name = str(id(v))
        dot.node(name=name, label=f"{{ data {v.data:.4f} | grad {v.grad:.4f} }}", shape="record")
        if v._op:
            dot.node(name=name + v._op, label=v._op)
            dot.edge(name + v._op, name)
    for child, parent in edges:
        dot.edge(str(child), str(parent) + by_id[parent]._op)
    return dot, values


def expected_drawing_size(values):
    """Graphviz nodes and edges a correct drawing has."""
    ops = [v for v in values if v._op]
    nodes = len(values) + len(ops)
    edges = len(ops) + sum(len(v._prev) for v in values)
    return nodes, edges


def source_counts(dot):
    """Declared nodes, edges and the endpoint names the edges use, from the
    DOT source."""
    nodes = [line for line in dot.body if "->" not in line]
    edges = [line for line in dot.body if "->" in line]
    return len(nodes), len(edges)


def upstream_neuron_drawing(upstream_nn, seed):
    random.seed(seed)
    neuron = upstream_nn.Neuron(3)
    return draw(neuron([0.5, -1.25, 2.0]))


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
def test_neuron_drawing_source(engine, fused):
    unn = pytest.importorskip("micrograd.nn")
    random.seed(21)
    neuron = nn.Neuron(3, engine=engine, fused=fused)
    dot, values = draw(neuron([0.5, -1.25, 2.0]))
    nodes, edges = expected_drawing_size(values)
    assert source_counts(dot) == (nodes, edges)
    # endpoints of every edge are declared nodes (no port syntax)
    declared = {line.split()[0].strip('"') for line in dot.body if "->" not in line}
    for line in dot.body:
        if "->" in line:
            tail, _, head = line.strip().partition(" -> ")
            assert tail.strip('"') in declared and head.strip('"') in declared, line
    their_dot, their_values = upstream_neuron_drawing(unn, 21)
    if fused:
        assert len(values) == 3 + 3 + 1 + 1  # w, x, b and the neuron node
    else:
        # upstream's node count: 3 weights, the bias, 3 leaves, 3 '*', 3 '+',
        # ReLU = 14 Values, 7 of them with an op: 21 graphviz nodes
        assert nodes == expected_drawing_size(their_values)[0] == 21
        assert source_counts(dot) == source_counts(their_dot)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
def test_neuron_drawing_renders_upstreams_node_count(engine, fused):
    import json

    unn = pytest.importorskip("micrograd.nn")
    random.seed(22)
    neuron = nn.Neuron(3, engine=engine, fused=fused)
    dot, values = draw(neuron([0.5, -1.25, 2.0]))
    rendered = json.loads(dot.pipe(format="json"))
    nodes, edges = expected_drawing_size(values)
    assert len(rendered.get("objects", [])) == nodes
    assert len(rendered.get("edges", [])) == edges
    if not fused:
        their_dot, _ = upstream_neuron_drawing(unn, 22)
        theirs = json.loads(their_dot.pipe(format="json"))
        assert len(rendered["objects"]) == len(theirs["objects"]) == 21


def test_micrograd_fast_run_never_fuses(tmp_path, capsys):
    """A script's ``micrograd.nn`` under ``micrograd-fast run`` is
    micrograd_fast.nn with its defaults: upstream's graph."""
    from micrograd_fast.lab.run import run_script

    script = tmp_path / "graph.py"
    script.write_text(
        "import random\n"
        "from micrograd.nn import MLP\n"
        "random.seed(0)\n"
        "out = MLP(2, [3, 1])([1.0, 2.0])\n"
        "print(out._op, ' '.join(sorted({c._op for c in out._prev})))\n"
    )
    run_script(str(script))
    assert capsys.readouterr().out.split() == ["+", "*", "+"]


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
def test_inputs_are_checked_in_both_graphs(engine, fused):
    random.seed(3)
    model = nn.MLP(2, [2, 1], engine=engine, fused=fused)
    for bad in ([1.0, "a"], [1.0, None], [b"x", 2.0]):
        with pytest.raises(TypeError):
            model(bad)
    with pytest.raises(ValueError):
        model([1.0])
    row = [engine.Value(0.5)]
    with pytest.raises(TypeError):
        engine.layer([row], [engine.Value(0.0)], ["x"], "relu", fused=fused)
    # ints and NumPy scalars are numbers like floats
    assert model([np.float64(1.0), 2]).data == model([1.0, 2.0]).data
