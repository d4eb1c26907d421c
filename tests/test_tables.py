"""Each vocabulary is written once; the few copies that must exist agree.

Op codes and their ``_op`` names are written in ``MGF_OPS`` (csrc/mgf_core.h),
activation codes and names in ``MGF_ACTS`` and, for Python, in
``micrograd_fast._vocab.ACTIVATIONS``.  These tests add nothing: they fail when
the C tables, the pure engine, the stubs, ``nn`` and the op table of
docs/architecture.md drift apart (the recipes there rely on them).
"""

import ast
import importlib
import inspect
import math
import os
import pathlib
import re

import pytest

from micrograd_fast import _engine_py, _vocab, nn
from micrograd_fast._vocab import ACTIVATIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
HEADER = ROOT / "csrc" / "mgf_core.h"
STUB = ROOT / "micrograd_fast" / "_engine.pyi"

_ROW = re.compile(r"^\| `(\w+)` \| `([^`]*)` \| `([^`]+)` \| `([^`]*)` \| `([\w.]+)` \|$")


def _doc_ops():
    """(code, name, example, example's _op, pure rule) rows of the op table."""
    rows = [m.groups() for m in map(_ROW.match, DOC.read_text().splitlines()) if m]
    assert len(rows) >= 10
    return rows


def _header_list(macro):
    """The entries of an X-macro list in csrc/mgf_core.h, as tuples of strings."""
    text = HEADER.read_text()
    start = text.index(f"#define {macro}(X)")
    body = []
    for line in text[start:].splitlines()[1:]:
        body.append(re.sub(r"/\*.*?\*/", "", line))
        if not line.rstrip().endswith("\\"):
            break
    return [tuple(a.strip().strip('"') for a in args.split(","))
            for args in re.findall(r"X\(([^)]*)\)", " ".join(body))]


def _core():
    """The compiled core (an error, never a skip, when it is expected)."""
    if os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0"):
        pytest.skip("MICROGRAD_FAST_NO_EXTENSIONS is set")
    return importlib.import_module("micrograd_fast._engine")


def test_the_compiled_op_names_come_from_the_c_table():
    core = _core()
    table = _header_list("MGF_OPS")
    assert list(core._OP_CODES) == [code for code, _ in table]
    assert list(core._OP_NAMES) == [name for _, name in table]


def test_the_docs_op_table_is_the_c_table():
    table = _header_list("MGF_OPS")
    assert [(code, name) for code, name, *_ in _doc_ops()] == table


def test_every_op_rule_of_the_pure_engine_names_its_code():
    for code, _, _, _, rule in _doc_ops():
        obj = _engine_py
        for part in rule.split("."):
            obj = getattr(obj, part)
        assert f"mirrored by MGF_{code}" in inspect.getsource(obj), (code, rule)
    codes = {code for code, _ in _header_list("MGF_OPS")}
    named = set(re.findall(r"mirrored by MGF_(\w+)", inspect.getsource(_engine_py)))
    assert named <= codes, f"the pure engine names op codes C does not have: {named - codes}"


@pytest.mark.parametrize("row", _doc_ops(), ids=lambda r: r[0])
def test_each_op_shows_its_name_on_both_engines(engine, row):
    code, name, example, shown, _ = row
    a, b = engine.Value(0.5), engine.Value(2.0)
    env = {"Value": engine.Value, "vsum": engine.vsum, "layer": engine.layer,
           "linear": engine.linear, "a": a, "b": b}
    out = eval(example, env)  # noqa: S307 - the examples of our own docs
    assert out._op == shown
    assert shown.startswith(name)
    out.backward()
    assert math.isfinite(a.grad)


def test_one_list_of_activations():
    assert _engine_py._ACTIVATIONS is ACTIVATIONS
    assert nn.ACTIVATIONS is ACTIVATIONS
    assert len(set(ACTIVATIONS)) == len(ACTIVATIONS)
    c_names = [name for _, name, _ in _header_list("MGF_ACTS")]
    assert sorted(c_names) == sorted(ACTIVATIONS)
    assert set(_engine_py._ACT_METHODS) | {"linear"} == set(ACTIVATIONS)
    assert set(nn._REPR_NAMES) == set(ACTIVATIONS)
    assert _vocab.__name__ == "micrograd_fast._vocab"


_ACT_ROW = re.compile(r"^\| `ACT_(\w+)` \| `(\w+)` \| `(\w+)` \| `(\w+)` \| ([^|]+) \|$")


def test_the_docs_activation_table_is_the_c_table():
    rows = [m.groups() for m in map(_ACT_ROW.match, DOC.read_text().splitlines()) if m]
    table = _header_list("MGF_ACTS")
    assert [(code, name, "MGF_" + op) for code, name, op, _, _ in rows] == table, (
        "the activation table of docs/architecture.md is not MGF_ACTS"
    )
    assert {name: shown for _, name, _, shown, _ in rows} == nn._REPR_NAMES


def test_the_compiled_activation_codes_come_from_the_c_table():
    core = _core()
    table = _header_list("MGF_ACTS")
    assert list(core._ACT_NAMES) == [name for _, name, _ in table]
    assert core._ACT_CODES == {name: code for code, name in enumerate(core._ACT_NAMES)}


def test_the_stub_lists_the_activations():
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "_Activation":
            literal = node.value.slice
            names = [e.value for e in getattr(literal, "elts", [literal])]
            assert sorted(names) == sorted(ACTIVATIONS)
            return
    raise AssertionError("no _Activation in micrograd_fast/_engine.pyi")


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("fused", [True, False])
def test_each_activation_builds_the_same_node_on_both_engines(act, fused):
    outs = []
    for engine in (_core(), _engine_py):
        w, x, bias = engine.Value(0.75), engine.Value(-1.5), engine.Value(0.25)
        (y,) = engine.layer([[w]], [bias], [x], act, fused=fused)
        y.backward()
        outs.append((y._op, y.data, w.grad, x.grad, bias.grad))
    assert outs[0] == outs[1]
    if fused:
        assert outs[0][0] == "neuron_" + act


def test_an_unknown_activation_is_refused_alike(engine):
    with pytest.raises(ValueError, match="expected one of " + ", ".join(ACTIVATIONS)):
        engine.layer([[engine.Value(1.0)]], [engine.Value(0.0)], [1.0], "not an activation")
