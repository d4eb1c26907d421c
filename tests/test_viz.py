"""draw_dot and the Jupyter picture of a Value (micrograd_fast.viz)."""

import sys

import pytest

import micrograd_fast
from micrograd_fast.viz import collect_graph, draw_dot, value_svg


# -- draw_dot ---------------------------------------------------------------------------


def lecture_graph(Value):
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = Value(10.0, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = Value(-2.0, label="f")
    L = d * f
    L.label = "L"
    return L


def test_draw_dot_records_and_ops(Value):
    pytest.importorskip("graphviz")
    L = lecture_graph(Value)
    dot = micrograd_fast.draw_dot(L)
    src = dot.source
    assert "{ L | data -8.0000 | grad 0.0000 }" in src
    assert "{ a | data 2.0000 | grad 0.0000 }" in src
    assert src.count("shape=record") == 7
    assert src.count('label="*"') == 2 and src.count('label="+"') == 1
    assert "rankdir=LR" in src
    L.backward()
    assert "{ a | data 2.0000 | grad 6.0000 }" in micrograd_fast.draw_dot(L).source
    assert "rankdir=TB" in micrograd_fast.draw_dot(L, rankdir="TB").source
    assert micrograd_fast.draw_dot(L, format="png").format == "png"


def test_draw_dot_escapes_labels(Value):
    pytest.importorskip("graphviz")
    v = Value(1.0, label="x|{y}<z>")
    assert r"x\|\{y\}\<z\>" in draw_dot(v).source


def test_draw_dot_refuses_big_graphs(Value):
    x = Value(0.0)
    for _ in range(2500):
        x = x + 1.0
    with pytest.raises(ValueError, match="max_nodes=2000"):
        draw_dot(x)
    with pytest.raises(ValueError, match="max_nodes=10"):
        draw_dot(x, max_nodes=10)
    assert value_svg(x) is None


def test_draw_dot_walks_deep_graphs_without_recursion(Value):
    x = Value(1.0)
    for _ in range(5 * sys.getrecursionlimit()):
        x = x * 1.0
    nodes, edges = collect_graph(x, max_nodes=None)
    assert len(nodes) == 1 + 2 * 5 * sys.getrecursionlimit()
    assert len(edges) == 2 * 5 * sys.getrecursionlimit()


def test_draw_dot_on_upstream_values():
    pytest.importorskip("graphviz")
    upstream = pytest.importorskip("micrograd.engine")
    v = upstream.Value(2.0) * upstream.Value(3.0)
    assert "data 6.0000" in draw_dot(v).source


def test_render_without_dot_explains(Value, tmp_path, monkeypatch):
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot in there
    dot = draw_dot(lecture_graph(Value))
    for call in (lambda: dot.pipe(), lambda: dot.render(tmp_path / "g")):
        with pytest.raises(graphviz.ExecutableNotFound) as info:
            call()
        assert isinstance(info.value, RuntimeError)
        assert "install" in str(info.value).lower() and "dot" in str(info.value)
    assert value_svg(lecture_graph(Value)) is None


def test_repr_svg(Value, dot_program):
    pytest.importorskip("graphviz")
    L = lecture_graph(Value)
    svg = L._repr_svg_()
    assert svg.startswith("<?xml") and "data &#45;8.0000" in svg
    assert value_svg(L) == svg
