"""Fused layers give the same numbers, bit for bit, at every width.

Each test builds a fused MLP on one engine and checks its outputs and every
gradient after backward against a reference written with plain floats: each
neuron's sum ``((b + w_0*x_0) + w_1*x_1) + ...`` in that order, and the
gradients accumulated in the order the backward pass visits the neuron
nodes (reverse creation order: points last to first, layers last to first,
neurons last to first).  Both engines meet the same reference, so they also
agree with each other.  Widths that are not multiples of the kernel's
interleave (4 neurons) and odd input widths are covered.
"""

import random

import pytest

import micrograd_fast._engine_py as spec
from micrograd_fast._vocab import ACTIVATIONS
from micrograd_fast.nn import MLP


def _reference(layers, points, coefs):
    """layers: list of (W rows of floats, B floats, act); points: input rows.

    Returns (outputs per point, weight grads, bias grads, input grads) for
    the loss sum over points of coefs[p] * output[p][0] (each output's grad
    is its coefficient)."""
    wgrad = [[[0.0] * len(row) for row in W] for W, _, _ in layers]
    bgrad = [[0.0] * len(B) for _, B, _ in layers]
    acts_per_point = []
    zs_per_point = []
    for x in points:
        acts = [list(x)]
        zs = []
        for W, B, act in layers:
            xs = acts[-1]
            out = []
            zs.append([])
            for row, b in zip(W, B):
                z = b
                for w, xv in zip(row, xs):
                    z = z + w * xv
                zs[-1].append(z)
                # the activations' own math is the pure engine's (the spec)
                out.append(spec._activate(act, z))
            acts.append(out)
        acts_per_point.append(acts)
        zs_per_point.append(zs)
    xgrads = [None] * len(points)
    for p in reversed(range(len(points))):
        acts = acts_per_point[p]
        g = [0.0] * len(acts[-1])
        for j in range(len(g)):
            g[j] = coefs[p] * 1.0 if j == 0 else 0.0
        for li in reversed(range(len(layers))):
            W, B, act = layers[li]
            xs = acts[li]
            outs = acts[li + 1]
            gx = [0.0] * len(xs)
            for j in reversed(range(len(W))):
                pre = spec._activate_grad(act, zs_per_point[p][li][j], outs[j], g[j])
                for t in range(len(xs)):
                    wgrad[li][j][t] += xs[t] * pre
                    gx[t] += W[j][t] * pre
                bgrad[li][j] += pre
            g = gx
        xgrads[p] = g
    return [a[-1] for a in acts_per_point], wgrad, bgrad, xgrads


def _run(engine, nin, widths, acts, seed, npoints=3):
    rng = random.Random(seed)
    sizes = [nin] + list(widths)
    layers = []
    for a, b, act in zip(sizes[:-1], sizes[1:], acts):
        W = [[rng.uniform(-1.0, 1.0) for _ in range(a)] for _ in range(b)]
        B = [rng.uniform(-0.5, 0.5) for _ in range(b)]
        layers.append((W, B, act))
    points = [[rng.uniform(-2.0, 2.0) for _ in range(nin)] for _ in range(npoints)]
    coefs = [rng.uniform(-1.5, 1.5) for _ in range(npoints)]
    model = MLP(nin, list(widths), act=list(acts), engine=engine, fused=True)
    for layer, (W, B, _) in zip(model.layers, layers):
        for neuron, row, b in zip(layer.neurons, W, B):
            for wv, w in zip(neuron.w, row):
                wv.data = w
            neuron.b.data = b
    V = engine.Value
    inputs = [[V(v) for v in x] for x in points]
    outs = [model(x) for x in inputs]
    outs = [o if isinstance(o, list) else [o] for o in outs]
    loss = engine.vsum([o[0] * c for o, c in zip(outs, coefs)])
    model.zero_grad()
    if hasattr(engine, "compact"):
        engine.compact()  # a reclamation moves the fused nodes down before backward
    if hasattr(engine, "_check_invariants"):
        assert engine._check_invariants()
    loss.backward()
    ref_out, ref_w, ref_b, ref_x = _reference(layers, points, coefs)
    got_out = [[v.data for v in o] for o in outs]
    assert got_out == ref_out
    for layer, rw, rb in zip(model.layers, ref_w, ref_b):
        assert [[w.grad for w in n.w] for n in layer.neurons] == rw
        assert [n.b.grad for n in layer.neurons] == rb
    assert [[v.grad for v in x] for x in inputs] == ref_x


ACTS = ACTIVATIONS


@pytest.mark.parametrize("nin", [1, 2, 3, 17])
def test_fused_mlp_bit_identical_widths_1_to_70(engine, nin):
    for width in range(1, 71):
        act = ACTS[width % len(ACTS)]
        _run(engine, nin, [width, width, 1], [act, "relu", "linear"], seed=width * 31 + nin)


@pytest.mark.parametrize("widths", [[5], [7, 3], [9, 13, 2], [33, 1, 6], [65, 66, 67]])
@pytest.mark.parametrize("nin", [1, 3, 17])
def test_fused_odd_shapes(engine, nin, widths):
    acts = [ACTS[(i + nin) % len(ACTS)] for i in range(len(widths))]
    _run(engine, nin, widths, acts, seed=nin * 7 + sum(widths), npoints=4)


def test_fused_layer_with_shared_values(engine):
    """One Value as a weight of several neurons and as an input: the same
    numbers on both engines (the pure engine is the spec)."""
    V = engine.Value
    s = V(0.75)
    x = [s, V(-1.25), 2.5, V(0.5), 0.125]
    W = [[s, V(0.5), V(-0.25), s, V(1.5)] for _ in range(6)]
    B = [V(0.1 * j) for j in range(6)]
    outs = engine.layer(W, B, x, "tanh")
    loss = engine.vsum([o * (j + 1.0) for j, o in enumerate(outs)])
    loss.backward()
    got = ([o.data for o in outs], s.grad, [w.grad for row in W for w in row],
           [b.grad for b in B])

    P = spec.Value
    ps = P(0.75)
    px = [ps, P(-1.25), 2.5, P(0.5), 0.125]
    PW = [[ps, P(0.5), P(-0.25), ps, P(1.5)] for _ in range(6)]
    PB = [P(0.1 * j) for j in range(6)]
    pouts = spec.layer(PW, PB, px, "tanh")
    ploss = spec.vsum([o * (j + 1.0) for j, o in enumerate(pouts)])
    ploss.backward()
    want = ([o.data for o in pouts], ps.grad, [w.grad for row in PW for w in row],
            [b.grad for b in PB])
    assert got == want


def test_fused_layer_graph_unchanged(engine):
    """A fused neuron's children, op and local gradients are what they were:
    (w_0..w_{nin-1}, x_0..x_{nin-1}, b), one node per neuron."""
    model = MLP(3, [6, 5, 1], engine=engine, fused=True)
    V = engine.Value
    x = [V(0.5), V(-1.0), V(2.0)]
    out = model(x)
    assert out._op == "neuron_linear"
    hidden = out._children[5:10]
    last = model.layers[2].neurons[0]
    assert list(out._children) == [*last.w, *hidden, last.b]
    for j, h in enumerate(hidden):
        n = model.layers[1].neurons[j]
        assert h._op == "neuron_relu"
        assert list(h._children[:6]) == n.w
        assert h._children[-1] is n.b
        first = h._children[6:12]
        assert [f._op for f in first] == ["neuron_relu"] * 6
        assert list(first[0]._children) == [*model.layers[0].neurons[0].w, *x,
                                            model.layers[0].neurons[0].b]
    assert len(out._local_grads) == 11


@pytest.mark.parametrize("fused", [True, False])
def test_mlp_call_takes_a_list_of_nin_inputs_only(engine, fused):
    """_mlp_call (MLP.__call__'s common call): a list of nin inputs gives
    what mlp() gives, the one output itself when there is one; any other
    input gives None, so that MLP takes its general path (which converts
    or refuses it)."""
    V = engine.Value
    model = MLP(2, [3, 1], engine=engine, fused=fused)
    wide = MLP(2, [3, 2], engine=engine, fused=fused)
    x = [V(0.5), -1.25]
    for m in (model, wide):
        plan = engine.mlp_plan([layer._spec() for layer in m.layers], 2)
        got = engine._mlp_call(plan, x, fused)
        want = engine.mlp(plan, x, fused=fused)
        got = got if isinstance(got, list) else [got]
        assert len(got) == len(want) == len(m.layers[-1].neurons)
        assert [v.data for v in got] == [v.data for v in want]
        for other in (tuple(x), [V(0.5)], [*x, 1.0], iter(x), "ab"):
            assert engine._mlp_call(plan, other, fused) is None
    assert model(tuple(x)).data == model(x).data  # the general path, same numbers
    with pytest.raises((TypeError, ValueError)):
        model([V(0.5)])
