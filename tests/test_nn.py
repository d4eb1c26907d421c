"""micrograd_fast.nn: parity with micrograd 0.1.0, the native forward pass,
training, validation, array/state/pickle round trips and the PyTorch bridge."""

import copy
import functools
import importlib
import operator
import pickle
import random

import numpy as np
import pytest

import micrograd_fast
from micrograd_fast import nn
from micrograd_fast._vocab import ACTIVATIONS
from micrograd_fast.lab.demo import moons_data, train

INPUTS = [[1.0, 2.0], [-0.5, 0.25], [0.0, 0.0], [3.5, -2.75], [1e-3, -7.0]]

# micrograd's demo notebook prints this loss at step 99 (scikit-learn's moons,
# numpy and random seeded with 1337)
DEMO_FINAL_LOSS = 0.01097837013549272


def _upstream_nn():
    return pytest.importorskip("micrograd.nn")


# -- parity with micrograd 0.1.0 --------------------------------------------------------


def test_parameters_reprs_and_outputs_match_upstream(engine):
    unn = _upstream_nn()
    random.seed(1337)
    ours = nn.MLP(2, [16, 16, 1], engine=engine)
    random.seed(1337)
    theirs = unn.MLP(2, [16, 16, 1])
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    assert repr(ours) == repr(theirs)
    assert repr(ours.layers[-1].neurons[0]) == "LinearNeuron(16)"
    assert repr(ours).startswith("MLP of [Layer of [ReLUNeuron(2), ReLUNeuron(2)")
    for x in INPUTS:
        a = ours(x)
        b = theirs(x)
        assert isinstance(a, engine.Value)
        assert a.data == b.data


def test_gradients_match_upstream(engine):
    unn = _upstream_nn()
    random.seed(7)
    ours = nn.MLP(3, [5, 4, 2], engine=engine)
    random.seed(7)
    theirs = unn.MLP(3, [5, 4, 2])
    x = [0.5, -1.5, 2.0]
    a = ours(x)
    b = theirs(x)
    assert [v.data for v in a] == [v.data for v in b]
    la = a[0] * a[0] + a[1] * 3.0
    lb = b[0] * b[0] + b[1] * 3.0
    assert la.data == lb.data
    la.backward()
    lb.backward()
    ga = [p.grad for p in ours.parameters()]
    gb = [p.grad for p in theirs.parameters()]
    # one contribution per parameter for one sample, but the hidden layers'
    # sums may accumulate in another order: compare tightly, not bit for bit
    assert ga == pytest.approx(gb, rel=1e-12, abs=1e-15)


def test_shapes_and_attributes_like_upstream(engine):
    random.seed(0)
    n = nn.Neuron(3, engine=engine)
    assert len(n.w) == 3 and n.b.data == 0.0 and n.nonlin is True
    assert n.parameters() == n.w + [n.b]
    assert isinstance(n([1.0, 2.0, 3.0]), engine.Value)
    layer1 = nn.Layer(3, 1, engine=engine)
    assert isinstance(layer1([1.0, 2.0, 3.0]), engine.Value)
    layer2 = nn.Layer(3, 2, nonlin=False, engine=engine)
    out = layer2([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 2
    assert repr(layer2) == "Layer of [LinearNeuron(3), LinearNeuron(3)]"
    m = nn.MLP(2, [3, 2], engine=engine)
    assert len(m.layers) == 2 and len(m.layers[0].neurons) == 3
    assert isinstance(m([1.0, 2.0]), list)
    assert m.engine is engine
    assert all(type(p) is engine.Value for p in m.parameters())


def test_same_draws_as_upstream_for_neuron_and_layer(engine):
    unn = _upstream_nn()
    random.seed(3)
    a = nn.Layer(4, 3, engine=engine)
    random.seed(3)
    b = unn.Layer(4, 3)
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    assert repr(a) == repr(b)
    assert a([1.0, 2.0, 3.0, 4.0])[2].data == b([1.0, 2.0, 3.0, 4.0])[2].data


def test_default_engine_is_the_selected_one():
    random.seed(0)
    m = nn.MLP(2, [2])
    assert m.engine is micrograd_fast.engine
    assert type(m.parameters()[0]) is micrograd_fast.Value


# -- the graph ---------------------------------------------------------------------------


def test_fused_one_node_per_neuron_and_user_loss_joins(engine):
    random.seed(1)
    m = nn.MLP(2, [3, 1], engine=engine, fused=True)
    x = [engine.Value(0.5), engine.Value(-1.0)]
    out = m(x)
    assert out._op == "neuron_linear"
    hidden = [c for c in out._prev if c._op == "neuron_relu"]
    assert len(hidden) == 3
    last = m.layers[1].neurons[0]
    assert out._prev == set(hidden) | set(last.w) | {last.b}
    for h in hidden:
        assert set(x) <= h._prev
    loss = (out - 1.0) ** 2
    loss.backward()
    assert any(p.grad != 0.0 for p in m.parameters())
    assert x[0].grad != 0.0 or x[1].grad != 0.0


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_native_forward_and_backward_equal_ordinary_ops(engine, act, fused):
    random.seed(11)
    m = nn.MLP(3, [4, 4, 2], act=act, out_act=act, engine=engine, fused=fused)
    V = engine.Value

    def reference(x):
        for layer in m.layers:
            outs = []
            for n in layer.neurons:
                z = sum((wi * xi for wi, xi in zip(n.w, x)), n.b)
                # each activation's op is the Value method of its name
                outs.append(z if n.activation == "linear" else getattr(z, n.activation)())
            x = outs
        return x

    x = [0.3, -0.8, 1.7]
    a = m(x)
    b = reference([V(v) for v in x])
    assert [v.data for v in a] == [v.data for v in b]
    (a[0] * a[1]).backward()
    g_native = [p.grad for p in m.parameters()]
    m.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())
    (b[0] * b[1]).backward()
    g_ref = [p.grad for p in m.parameters()]
    if fused:
        assert g_native == pytest.approx(g_ref, rel=1e-12, abs=1e-15)
    else:  # the same graph: the same sums in the same order
        assert g_native == g_ref


def test_mixed_activations_in_one_layer_fall_back(engine):
    random.seed(2)
    m = nn.MLP(2, [3, 1], engine=engine)
    m.layers[0].neurons[1].act = "tanh"
    m.layers[0].neurons[2].nonlin = False
    x = [0.4, -0.9]
    h = [n(x) for n in m.layers[0].neurons]
    ref = m.layers[1].neurons[0]([v for v in h])
    assert m(x).data == ref.data
    assert repr(m.layers[0]) == "Layer of [ReLUNeuron(2), TanhNeuron(2), LinearNeuron(2)]"


# -- inputs and validation ------------------------------------------------------------------


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
def test_numpy_inputs_and_batches(engine, fused):
    random.seed(5)
    m = nn.MLP(2, [4, 1], engine=engine, fused=fused)
    xs = np.array([[0.1, 0.2], [1.5, -2.0], [-3.0, 0.0]])
    batch = m(xs)
    assert isinstance(batch, list) and len(batch) == 3
    for row, out in zip(xs, batch):
        assert out.data == m(row).data == m(row.tolist()).data
    assert batch[0]._op == "layer_linear"  # a batch is one block per layer
    assert (m(xs[0])._op == "+") != fused  # a row: the output of a linear neuron
    two = nn.MLP(2, [4, 2], engine=engine, fused=fused)(xs)
    assert all(isinstance(o, list) and len(o) == 2 for o in two)
    assert m((0.1, 0.2)).data == batch[0].data
    assert m([engine.Value(0.1), 0.2]).data == batch[0].data


def test_input_validation(engine):
    random.seed(0)
    m = nn.MLP(2, [3, 1], engine=engine)
    with pytest.raises(ValueError, match="expects 2 inputs, got 3"):
        m([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        m([1.0])
    with pytest.raises(ValueError):
        m(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        m(np.zeros((4, 3)))
    with pytest.raises(TypeError):
        m(1.0)
    with pytest.raises(TypeError):
        m([1.0, "x"])
    with pytest.raises(ValueError):
        nn.Neuron(2, engine=engine)([1.0])
    with pytest.raises(ValueError):
        nn.Layer(2, 2, engine=engine)([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "args, exc",
    [
        ((-1, [2]), ValueError),
        ((2, []), ValueError),
        ((2, [0]), ValueError),
        ((2, [3, -1]), ValueError),
        ((2.0, [2]), TypeError),
        ((2, [2.5]), TypeError),
        ((True, [2]), TypeError),
        ((2, 3), TypeError),
        (("2", [2]), TypeError),
    ],
)
def test_bad_sizes(engine, args, exc):
    with pytest.raises(exc):
        nn.MLP(*args, engine=engine)


def test_bad_activation_and_layer_sizes(engine):
    with pytest.raises(ValueError):
        nn.MLP(2, [2, 1], act="not an activation", engine=engine)
    with pytest.raises(ValueError):
        nn.MLP(2, [2, 1], act=["relu"], engine=engine)
    with pytest.raises(ValueError):
        nn.MLP(2, [2, 1], act=["relu", "tanh"], out_act="tanh", engine=engine)
    with pytest.raises(ValueError):
        nn.Neuron(2, act="not an activation", engine=engine)
    with pytest.raises(ValueError):
        nn.Layer(2, 0, engine=engine)
    with pytest.raises(ValueError):
        nn.Neuron(-3, engine=engine)
    m = nn.MLP(2, [2, 2, 1], act=["tanh", "sigmoid", "relu"], engine=engine)
    assert [layer.neurons[0].activation for layer in m.layers] == ["tanh", "sigmoid", "relu"]


# -- training ---------------------------------------------------------------------------------


def _moons():
    # Python numbers: same IEEE arithmetic as NumPy scalars, far faster
    X, y = moons_data(1337)
    return X.tolist(), y


def _demo_training(nn_module, Value, X, y, steps=100, **mlp_kwargs):
    """micrograd's demo notebook loop (full batch, SVM max-margin loss)."""
    random.seed(1337)
    model = nn_module.MLP(2, [16, 16, 1], **mlp_kwargs)
    losses, accuracies, _ = train(model, Value, X, y, steps)
    return losses[-1], accuracies[-1], model


_DEMO_CACHE = {}


def _demo_result(key, fn):
    if key not in _DEMO_CACHE:
        _DEMO_CACHE[key] = fn()
    return _DEMO_CACHE[key]


def _our_demo(engine):
    # the pure engine's default graph is as large as micrograd's (a minute
    # for 100 steps): it trains fused here, and its default graph is checked
    # node for node against micrograd's in test_nn_graph.py
    X, y = _moons()
    fused = not engine.COMPILED
    return _demo_result(
        engine.__name__,
        lambda: _demo_training(nn, engine.Value, X, y, engine=engine, fused=fused)[:2],
    )


@pytest.mark.slow
def test_demo_training_matches_upstream(engine):
    unn = _upstream_nn()
    from micrograd.engine import Value as UValue

    X, y = _moons()
    ours_loss, ours_acc = _our_demo(engine)
    up_loss, up_acc = _demo_result(
        "upstream", lambda: _demo_training(unn, UValue, X, y)[:2]
    )
    assert ours_acc == up_acc == 1.0
    assert ours_loss == pytest.approx(up_loss, rel=1e-9)


def test_demo_training_reaches_the_notebooks_loss(engine):
    loss, acc = _our_demo(engine)
    assert acc == 1.0
    assert loss == pytest.approx(DEMO_FINAL_LOSS, rel=1e-9)


def test_moons_are_sklearns():
    datasets = pytest.importorskip("sklearn.datasets")
    np.random.seed(1337)
    Xs, ys = datasets.make_moons(n_samples=100, noise=0.1)
    X, y = _moons()
    assert Xs.tolist() == X and (ys * 2 - 1).tolist() == y


def test_lecture_all_tanh_mlp_trains_on_float_lists(engine):
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    random.seed(42)
    n = nn.MLP(3, [4, 4, 1], act="tanh", out_act="tanh", engine=engine)
    assert repr(n.layers[-1]) == "Layer of [TanhNeuron(4)]"
    first = None
    for _ in range(100):
        ypred = [n(x) for x in xs]
        loss = sum((yout - ygt) ** 2 for ygt, yout in zip(ys, ypred))
        first = loss.data if first is None else first
        n.zero_grad()
        loss.backward()
        for p in n.parameters():
            p.data += -0.05 * p.grad
    assert loss.data < 0.1 < first
    assert all(abs(p.data - t) < 0.5 for p, t in zip([n(x) for x in xs], ys))


def _train_fast(engine, steps):
    """A training loop using the fast forms (vsum, fused layers, one model
    call for all the points)."""
    X, y = _moons()
    random.seed(1337)
    model = nn.MLP(2, [16, 16, 1], engine=engine, fused=True)
    losses, _, _ = train(model, engine.Value, np.array(X), y, steps,
                         total_of=engine.vsum, batch=True)
    return model, losses[-1]


@pytest.mark.compiled_core
def test_compiled_and_pure_train_bit_identically():
    c = importlib.import_module("micrograd_fast._engine")
    py = importlib.import_module("micrograd_fast._engine_py")
    mc, lc = _train_fast(c, 20)
    mp, lp = _train_fast(py, 20)
    assert lc == lp
    assert [p.data for p in mc.parameters()] == [p.data for p in mp.parameters()]
    assert [p.grad for p in mc.parameters()] == [p.grad for p in mp.parameters()]


def test_package_sum_is_vsum():
    V = micrograd_fast.Value
    vs = [V(0.1 * i) for i in range(10)]
    s = micrograd_fast.sum(vs)
    # left to right, as the builtin sum adds Values; not the builtin sum of
    # the floats, which Python 3.12 and later add with compensation (4.5 here)
    in_order = functools.reduce(operator.add, (v.data for v in vs), 0.0)
    assert in_order == 4.500000000000001
    assert s._op == "sum" and s.data == in_order
    assert micrograd_fast.sum([], start=2).data == 2.0


# -- arrays, state dicts, pickling ---------------------------------------------------------------


def test_parameters_array_roundtrip(engine):
    random.seed(4)
    m = nn.MLP(3, [4, 2], engine=engine)
    a = m.parameters_array()
    assert a.dtype == np.float64 and a.shape == (len(m.parameters()),)
    assert a.tolist() == [p.data for p in m.parameters()]
    m.load_parameters(a * 2.0)
    assert [p.data for p in m.parameters()] == (a * 2.0).tolist()
    m([1.0, 2.0, 3.0])[0].backward()
    assert m.grads_array().tolist() == [p.grad for p in m.parameters()]
    with pytest.raises(ValueError):
        m.load_parameters(a[:-1])


def test_state_dict_layout_and_roundtrip(engine):
    random.seed(6)
    m = nn.MLP(3, [4, 2], engine=engine)
    sd = m.state_dict()
    assert list(sd) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert sd["layers.0.weight"].shape == (4, 3) and sd["layers.1.bias"].shape == (2,)
    assert sd["layers.0.weight"][2].tolist() == [w.data for w in m.layers[0].neurons[2].w]
    assert sd["layers.1.bias"][1] == m.layers[1].neurons[1].b.data
    random.seed(99)
    m2 = nn.MLP(3, [4, 2], engine=engine)
    m2.load_state_dict(sd)
    assert m2.parameters_array().tolist() == m.parameters_array().tolist()
    x = [0.5, 1.0, -2.0]
    assert [v.data for v in m2(x)] == [v.data for v in m(x)]
    bad = dict(sd)
    bad["layers.0.weight"] = np.zeros((3, 4))
    with pytest.raises(ValueError):
        m2.load_state_dict(bad)
    with pytest.raises(KeyError):
        m2.load_state_dict({k: v for k, v in sd.items() if k != "layers.1.bias"})
    n = m.layers[0].neurons[0]
    nsd = n.state_dict()
    assert nsd["w"].shape == (3,) and nsd["b"].shape == ()
    assert set(m.layers[0].state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickle_and_deepcopy_of_models(engine, how):
    random.seed(8)
    m = nn.MLP(2, [5, 3, 1], act="tanh", engine=engine)
    m([1.0, -1.0]).backward()
    m2 = pickle.loads(pickle.dumps(m)) if how == "pickle" else copy.deepcopy(m)
    assert m2.engine is engine
    assert repr(m2) == repr(m)
    p1, p2 = m.parameters(), m2.parameters()
    assert [p.data for p in p2] == [p.data for p in p1]
    assert [p.grad for p in p2] == [p.grad for p in p1]
    assert all(a is not b for a, b in zip(p1, p2))
    assert all(type(p) is engine.Value and p._prev == set() for p in p2)
    x = [0.25, -0.75]
    assert m2(x).data == m(x).data
    # the copy trains independently
    m2.zero_grad()
    out = m2(x)
    out.backward()
    for p in m2.parameters():
        p.data -= 0.1 * p.grad
    assert m2(x).data != m(x).data


# -- PyTorch bridge --------------------------------------------------------------------------------


@pytest.mark.parametrize("out_act", [None, "sigmoid"])
def test_to_torch_and_from_torch(engine, out_act):
    torch = pytest.importorskip("torch")
    random.seed(9)
    m = nn.MLP(3, [6, 5, 2], act="tanh", out_act=out_act, engine=engine)
    seq = m.to_torch()
    kinds = [type(mod).__name__ for mod in seq]
    expected = ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    if out_act:
        expected.append("Sigmoid")
    assert kinds == expected
    xs = np.array([[0.1, -0.2, 0.3], [2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    with torch.no_grad():
        t_out = seq(torch.from_numpy(xs)).numpy()
    ours = np.array([[v.data for v in row] for row in m(xs)])
    np.testing.assert_allclose(ours, t_out, rtol=1e-12, atol=1e-14)
    back = nn.MLP.from_torch(seq, engine=engine)
    assert repr(back) == repr(m)
    assert back.parameters_array().tolist() == m.parameters_array().tolist()
    assert [[v.data for v in row] for row in back(xs)] == ours.tolist()


def test_from_torch_relu_and_identity(engine):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1), torch.nn.Identity()
    ).double()
    state = random.getstate()
    m = nn.MLP.from_torch(seq, engine=engine)
    assert random.getstate() == state  # no draws
    assert repr(m) == "MLP of [Layer of [ReLUNeuron(4), ReLUNeuron(4), ReLUNeuron(4)], Layer of [LinearNeuron(3)]]"
    x = np.array([0.5, -1.0, 2.0, 0.25])
    with torch.no_grad():
        expect = seq(torch.from_numpy(x)).item()
    assert m(x).data == pytest.approx(expect, rel=1e-12)
    with pytest.raises(ValueError):
        nn.MLP.from_torch(torch.nn.Sequential(torch.nn.ReLU()), engine=engine)
    with pytest.raises(ValueError):
        nn.MLP.from_torch(
            torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(2, 1)), engine=engine
        )


def test_user_module_subclass_gets_the_helpers(engine):
    class Pair(nn.Module):
        def __init__(self):
            self.a = engine.Value(1.5)
            self.b = engine.Value(-2.0)

        def parameters(self):
            return [self.a, self.b]

    m = Pair()
    assert m.engine is engine
    m.a.grad = 3.0
    m.zero_grad()
    assert m.a.grad == 0.0
    m.load_parameters([0.5, 0.25])
    assert m.parameters_array().tolist() == [0.5, 0.25]


def test_forward_sees_structure_changes_after_a_call(engine):
    """model(x) reuses its layer specs between calls; assigning weights, a
    bias, an activation, neurons or layers must still take effect."""
    V = engine.Value
    random.seed(5)
    model = nn.MLP(2, [3, 1], engine=engine)
    x = [0.5, -1.5]
    before = model(x).data
    neuron = model.layers[1].neurons[0]
    neuron.b = V(10.0)
    assert model(x).data == pytest.approx(before + 10.0)
    neuron.w = [V(0.0) for _ in neuron.w]
    assert model(x).data == 10.0
    hidden = model.layers[0]
    hidden.neurons = [nn.Neuron(2, nonlin=False, engine=engine) for _ in range(3)]
    for n in hidden.neurons:
        n.w = [V(1.0), V(1.0)]
    neuron.w = [V(1.0) for _ in range(3)]
    assert model(x).data == pytest.approx(10.0 + 3 * (0.5 - 1.5))
    hidden.neurons[0].nonlin = True  # relu now clips this neuron's -1.0 to 0
    assert model(x).data == pytest.approx(10.0 + 2 * (0.5 - 1.5))
    model.layers = [model.layers[1]]
    with pytest.raises(ValueError):
        model(x)  # the remaining layer expects 3 inputs
    assert model([1.0, 1.0, 1.0]).data == 13.0


def test_forward_sees_in_place_edits_of_module_lists(engine):
    V = engine.Value
    random.seed(6)
    model = nn.MLP(2, [2, 1], engine=engine)
    x = [1.0, 2.0]
    model(x)
    out = model.layers[1].neurons[0]
    out.w[0] = V(0.0)
    out.w[1] = V(0.0)
    out.b.data = 4.0
    assert model(x).data == 4.0
    assert out.w[0] in model.parameters()
    model.layers[0].neurons.pop()
    model.layers[1].neurons[0].w.pop()
    assert len(model.parameters()) == 3 + 2
    assert model(x).data == 4.0
    model.layers.append(nn.Layer(1, 1, nonlin=False, engine=engine))
    last = model.layers[-1].neurons[0]
    last.w[0].data, last.b.data = 2.0, 1.0
    assert model(x).data == 9.0


# -- lists of the user's own in the structure ----------------------------------------------------


def _by_hand(layers, x):
    """The MLP's output computed layer by layer, without the MLP's cache."""
    for layer in layers:
        out = layer(x)
        x = out if isinstance(out, list) else [out]
    return [v.data for v in x]


def test_edits_of_a_plain_list_assigned_to_layers_are_seen(engine):
    # regression: a plain list assigned to model.layers, edited in place after
    # a call, left the cached plan (and the parameter list) as it was
    random.seed(11)
    model = nn.MLP(2, [3, 1], engine=engine)
    model.layers = list(model.layers)
    x = [0.5, -1.5]
    model(x)
    count = len(model.parameters())
    extra = nn.Layer(1, 2, act="tanh", engine=engine)
    model.layers.append(extra)
    out = model(x)
    assert [v.data for v in out] == _by_hand(model.layers, x)
    assert len(model.parameters()) == count + len(extra.parameters())
    assert model.parameters()[-1] is extra.neurons[-1].b
    model.layers[2] = nn.Layer(1, 3, engine=engine)  # same length, another item
    assert len(model(x)) == 3
    del model.layers[1:]
    assert [v.data for v in model(x)] == _by_hand(model.layers, x)
    assert len(model.parameters()) == 3 * 3


def test_edits_of_plain_neuron_and_weight_lists_are_seen(engine):
    V = engine.Value
    random.seed(12)
    model = nn.MLP(2, [2, 1], engine=engine)
    hidden, last = model.layers
    hidden.neurons = list(hidden.neurons)
    last.neurons[0].w = list(last.neurons[0].w)
    x = [1.0, 2.0]
    model(x)
    hidden.neurons.append(nn.Neuron(2, engine=engine))
    last.neurons[0].w.append(V(0.5))
    assert len(model.parameters()) == 3 * 3 + 4
    assert model(x).data == _by_hand(model.layers, x)[0]
    last.neurons[0].w[2] = V(-3.0)
    assert model(x).data == _by_hand(model.layers, x)[0]
    assert model.parameters()[-2] is last.neurons[0].w[2]
    assert hidden([0.0, 0.0])[2].data == 0.0  # the layer's own cache too
    hidden.neurons.pop()
    assert len(hidden([1.0, 2.0])) == 2


def test_a_tuple_of_layers_is_used_as_it_is(engine):
    random.seed(13)
    model = nn.MLP(2, [2, 1], engine=engine)
    model.layers = tuple(model.layers)
    x = [1.0, -1.0]
    assert model(x).data == _by_hand(model.layers, x)[0]
    assert len(model.parameters()) == 3 * 2 + 3


def test_a_model_from_torch_follows_appended_layers(engine):
    # regression: MLP.from_torch built plain lists; appending a layer after a
    # call left forward and parameters() with the old structure
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()).double()
    model = nn.MLP.from_torch(seq, engine=engine)
    x = [0.25, -0.5]
    assert len(model(x)) == 3
    count = len(model.parameters())
    extra = nn.Layer(3, 1, nonlin=False, engine=engine)
    model.layers.append(extra)
    out = model(x)
    assert out.data == _by_hand(model.layers, x)[0]
    assert len(model.parameters()) == count + 4
    model.layers[0].neurons.pop()
    with pytest.raises(ValueError):
        model(x)  # the last layer still expects 3 inputs
