"""Checks that follow the tables: every op code and every activation, on
both engines, from the tables the engines are built from.

The op codes come from the compiled core's ``_OP_CODES`` (made from
``MGF_OPS`` in csrc/mgf_core.h), or from the header itself where the core is
not built; the activations from ``ACTIVATIONS``.  Each needs an example entry
in ``tests/op_examples.py``.  For each entry, at its ordinary points:

* the forward value, against plain Python's;
* the gradients ``backward()`` gives, against the exact derivative and
  against central finite differences of the engine's own forward value;
* the node's ``_local_grads`` (the compiled core's ``mgf_local_grads``, the
  pure engine's ``_lg_<op>``), against those gradients;
* everything above, compiled against pure, bit for bit.

At the edges (0, -0.0, tiny, huge, the infinities, nan in every input) the
two engines must give the same bits or raise the same exception.  An
activation is checked fused and unfused (one neuron each, all four the same
bits), and against its ``torch.nn`` module where torch is installed.
"""

import importlib
import math
import pathlib
import re
import struct

import pytest
from op_examples import ACTS, EDGES, OPS

from micrograd_fast import _engine_py
from micrograd_fast._vocab import ACTIVATIONS

from conftest import NO_EXTENSIONS

HEADER = pathlib.Path(__file__).resolve().parent.parent / "csrc" / "mgf_core.h"


def _header_codes():
    text = HEADER.read_text()
    start = text.index("#define MGF_OPS(X)")
    body = []
    for line in text[start:].splitlines()[1:]:
        body.append(re.sub(r"/\*.*?\*/", "", line))
        if not line.rstrip().endswith("\\"):
            break
    return [a.split(",")[0].strip() for a in re.findall(r"X\(([^)]*)\)", " ".join(body))]


def op_codes():
    """The op codes, read from the engine (or its header) at run time."""
    try:
        return list(importlib.import_module("micrograd_fast._engine")._OP_CODES)
    except ImportError:
        if HEADER.exists():
            return _header_codes()
        pytest.skip("neither the compiled core nor csrc/mgf_core.h is here")


def engines():
    """Both engines where the compiled core is wanted, else the pure one."""
    pure = _engine_py
    if NO_EXTENSIONS:
        return [pure]
    return [importlib.import_module("micrograd_fast._engine"), pure]


def bits(x):
    """A float's bits (every nan the same), or the thing itself."""
    if isinstance(x, float):
        return "nan" if math.isnan(x) else struct.pack("<d", x).hex()
    if isinstance(x, (tuple, list)):
        return type(x)(bits(t) for t in x)
    return x


def accumulated(local):
    """Local derivatives as backward() from a fresh root adds them to zero
    grads: 0.0 + d * 1.0 (so -0.0 shows as 0.0)."""
    return tuple(0.0 + d for d in local)


def close(a, b, rel, abs_=1e-12):
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# ---- every code and activation has an entry ---------------------------------


def test_every_op_code_has_an_example_entry():
    codes = op_codes()
    have = {e.code for e in OPS}
    missing = [c for c in codes if c not in have]
    assert not missing, (
        f"op code(s) {', '.join('MGF_' + c for c in missing)} of MGF_OPS have no example "
        "entry: add an OpExample(code, build, points, ref, deriv) for each to OPS in "
        "tests/op_examples.py (see docs/architecture.md, 'How to add an op')"
    )
    stale = sorted(have - set(codes))
    assert not stale, f"tests/op_examples.py has entries for codes MGF_OPS lacks: {stale}"


def test_every_activation_has_an_example_entry():
    missing = [a for a in ACTIVATIONS if a not in ACTS]
    assert not missing, (
        f"activation(s) {missing} of ACTIVATIONS have no example entry: add an "
        "ActExample(f, slope) for each to ACTS in tests/op_examples.py (see "
        "docs/architecture.md, 'How to add an activation')"
    )
    assert sorted(ACTS) == sorted(ACTIVATIONS), "ACTS has entries ACTIVATIONS lacks"


# ---- ops ----------------------------------------------------------------------


def _run(E, ex, inputs):
    """Build ex's node from fresh leaves holding inputs, run backward():
    (data, grads, local grads, _op), or ('raises', exception type)."""
    xs = [E.Value(v) for v in inputs]
    try:
        out = ex.build(E, *xs)
        out.backward()
    except Exception as exc:  # noqa: BLE001 - the type is compared across engines
        return ("raises", type(exc).__name__)
    return (out.data, tuple(x.grad for x in xs), tuple(out._local_grads), out._op)


def _forward(ex, inputs):
    return ex.build(_engine_py, *[_engine_py.Value(v) for v in inputs]).data


def _example_id(ex):
    return f"{ex.code}-{OPS.index(ex)}"


@pytest.mark.parametrize("ex", OPS, ids=_example_id)
def test_op_at_ordinary_points(ex):
    for point in ex.points:
        results = [_run(E, ex, point) for E in engines()]
        data, grads, local, shown = results[-1]
        where = f"MGF_{ex.code} at {point}"
        assert bits(results[0]) == bits(results[-1]), f"{where}: compiled and pure differ"
        assert close(data, ex.ref(*point), 1e-12), f"{where}: forward {data}"
        exact = ex.deriv(*point)
        for t, g in enumerate(grads):
            assert close(g, exact[t], 1e-9), f"{where}: grad {t} {g}, exact {exact[t]}"
            h = 1e-6 * max(1.0, abs(point[t]))
            up = list(point)
            down = list(point)
            up[t] += h
            down[t] -= h
            fd = (_forward(ex, up) - _forward(ex, down)) / (2 * h)
            assert close(g, fd, 1e-5, 1e-7), f"{where}: grad {t} {g}, finite difference {fd}"
        if ex.has_local:
            assert bits(accumulated(local)) == bits(grads), (
                f"{where}: _local_grads {local} are not the gradients backward() gives "
                f"{grads} (the C case in mgf_local_grads, or the pure engine's _lg_ function)"
            )
        else:
            assert local == ()


@pytest.mark.parametrize("ex", OPS, ids=_example_id)
def test_op_replays(ex):
    """recompute() of a node made at one point, its inputs moved to the
    next: the data and gradients of a node made there (the case in
    mgf_recompute and the op in mgf_replay_refuses's list; the pure
    engine's out._fwd); refused by _op where its forward is Python's."""
    for E in engines():
        for here, there in zip(ex.points, ex.points[1:] + ex.points[:1]):
            xs = [E.Value(x) for x in here]
            node = ex.build(E, *xs)
            if not ex.replays:
                with pytest.raises(RuntimeError, match="cannot recompute the node"):
                    node.recompute()
                continue
            for v, x in zip(xs, there):
                v.data = x
            node.recompute()
            node.backward()
            fresh = [E.Value(x) for x in there]
            made = ex.build(E, *fresh)
            made.backward()
            where = f"MGF_{ex.code} moved from {here} to {there} ({E.__name__})"
            assert bits([node.data] + [v.grad for v in xs]) == bits(
                [made.data] + [v.grad for v in fresh]), where


@pytest.mark.parametrize("ex", OPS, ids=_example_id)
def test_op_at_the_edges_is_the_same_on_both_engines(ex):
    if len(engines()) < 2:
        pytest.skip("compares the compiled core with the pure engine")
    base = ex.points[0]
    for t in range(len(base)):
        for edge in EDGES:
            point = base[:t] + (edge,) + base[t + 1:]
            c, py = (_run(E, ex, point) for E in engines())
            assert bits(c) == bits(py), f"MGF_{ex.code} at {point}: compiled {c}, pure {py}"


def test_every_unary_method_is_on_both_classes():
    for ex in OPS:
        if ex.method:
            for E in engines():
                assert callable(getattr(E.Value, ex.method)), (E.__name__, ex.method)


def test_every_unary_method_is_in_the_stub():
    import ast

    import micrograd_fast

    stub = pathlib.Path(micrograd_fast.__file__).resolve().parent / "_engine.pyi"
    tree = ast.parse(stub.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Value"]
    declared = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    missing = [ex.method for ex in OPS if ex.method and ex.method not in declared]
    assert not missing, f"micrograd_fast/_engine.pyi's Value lacks {missing}"


# ---- activations ------------------------------------------------------------


def _neuron(E, act, z, fused):
    """One neuron act(0 + 1 * z) (pre-activation exactly z) and its grads."""
    w, x, b = E.Value(1.0), E.Value(z), E.Value(0.0)
    try:
        (y,) = E.layer([[w]], [b], [x], act, fused=fused)
        y.backward()
    except Exception as exc:  # noqa: BLE001 - compared across engines and forms
        return ("raises", type(exc).__name__)
    local = tuple(y._local_grads) if fused else None
    return (y.data, w.grad, x.grad, b.grad, local)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_fused_and_unfused_on_both_engines(act):
    ex = ACTS[act]
    for z in ex.points + EDGES:
        runs = {(E.__name__, fused): _neuron(E, act, z, fused)
                for E in engines() for fused in (True, False)}
        first = next(iter(runs.values()))
        for key, r in runs.items():
            # the unfused neuron has no one node to read _local_grads from
            assert bits(r[:4]) == bits(first[:4]), f"{act} at {z}: {key} gives {r}, not {first}"
        for key, r in runs.items():
            if key[1] and r[0] != "raises":
                assert bits(accumulated(r[4])) == bits(r[1:4]), (
                    f"{act} at {z}: the fused node's _local_grads {r[4]} are not its "
                    f"gradients {r[1:4]} ({key[0]})"
                )
        if z in ex.points:
            data, _, _, slope, _ = first
            assert close(data, ex.f(z), 1e-12), f"{act}({z}) = {data}, not {ex.f(z)}"
            assert close(slope, ex.slope(z), 1e-9), f"{act}'({z}) = {slope}"
            h = 1e-6 * max(1.0, abs(z))
            fd = (_neuron(_engine_py, act, z + h, True)[0]
                  - _neuron(_engine_py, act, z - h, True)[0]) / (2 * h)
            assert close(slope, fd, 1e-5, 1e-7), f"{act}'({z}) = {slope}, finite difference {fd}"


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_against_its_torch_module(act):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    from micrograd_fast._torch_bridge import torch_module

    module = torch_module(torch, act)()
    for z in ACTS[act].points:
        t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        out = module(t)
        out.backward()
        for E in engines():
            data, _, _, slope, _ = _neuron(E, act, z, True)
            assert close(data, out.item(), 1e-12), (act, z, data, out.item())
            assert close(slope, t.grad.item(), 1e-9), (act, z, slope, t.grad.item())


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_through_the_torch_bridge(engine, act):
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    from micrograd_fast import nn

    model = nn.MLP(2, [3, 2], act=act, out_act=act, engine=engine)
    seq = model.to_torch()
    x = [0.3, -0.8]
    ours = [v.data for v in model(x)]
    theirs = seq(torch.tensor(x, dtype=torch.float64)).tolist()
    assert all(close(a, b, 1e-12) for a, b in zip(ours, theirs)), (ours, theirs)
    back = nn.MLP.from_torch(seq, engine=engine)
    assert [n.activation for layer in back.layers for n in layer.neurons] == [act] * 5
    assert [v.data for v in back(x)] == ours
