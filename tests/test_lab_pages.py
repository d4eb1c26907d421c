"""The lab's moving pictures: the step-through page of backpropagation
(micrograd_fast.viz.backprop_html, in a real browser where one is
installed), the training animation (demo --animate) and why backward() runs
in topological order (walkthrough --topo)."""

import math
import shutil
import struct

import pytest

from micrograd_fast.lab import topo
from micrograd_fast.lab.demo import frame_steps, run_demo


def bits(x):
    return "nan" if math.isnan(x) else struct.pack("<d", x).hex()


def _lecture(Value):
    a, b, c, f = (Value(x, label=n) for x, n in ((2.0, "a"), (-3.0, "b"), (10.0, "c"), (-2.0, "f")))
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    return L


def _custom(Value):
    """A node reached along two paths, a Python rule, microgpt's form and
    a power: every kind of rule the page writes out."""
    x = Value(0.75, label="x")
    y = x.tanh() * x + x ** 3
    z = Value(2.0 * y.data, (y,), "double")

    def _backward():
        y.grad += 2.0 * z.grad

    z._backward = _backward
    w = Value(z.data * x.data, (z, x), (x.data, z.data))
    return (w + 1.0).sigmoid()


def _neuron(engine, fused):
    from micrograd_fast import nn

    import random

    random.seed(5)
    n = nn.Neuron(3, act="tanh", engine=engine, fused=fused)
    return n([0.5, -1.0, 2.0])


def _graphs(engine):
    V = engine.Value
    return {"lecture": _lecture(V), "custom": _custom(V),
            "neuron": _neuron(engine, False), "fused neuron": _neuron(engine, True)}


@pytest.fixture
def page_tools(dot_program):
    pytest.importorskip("graphviz", reason="graphviz is not installed (the viz extra)")
    from micrograd_fast.viz import backprop_html

    return backprop_html


def _reachable(root):
    from micrograd_fast.viz import collect_graph

    return collect_graph(root, None)[0]


def test_the_page_s_numbers_are_the_engine_s(engine, page_tools):
    for name, root in _graphs(engine).items():
        page = page_tools(root)
        shown = {n["id"]: n for n in page.nodes}
        order = engine._creation_order(_reachable(root))
        # the last step equals backward() from zero grads
        grads = [v.grad for v in order]
        for v in order:
            v.grad = 0.0
        root.backward()
        assert [bits(v.grad) for v in order] == [bits(g) for g in grads], name
        final = {}
        for s in page.steps:
            final.update(s["grad"])
        for k, v in enumerate(order):
            assert final[f"n{k}"] == repr(v.grad) == shown[f"n{k}"]["grad"], (name, k)
            assert shown[f"n{k}"]["data"] == repr(v.data)
        # one forward step per node, in creation order, then the backward pass
        phases = [s["phase"] for s in page.steps]
        assert phases[:len(order)] == ["forward"] * len(order)
        assert [s["node"] for s in page.steps[:len(order)]] == [f"n{k}" for k in range(len(order))]
        assert set(phases[len(order):]) == {"backward"}


def test_the_page_writes_out_the_chain_rule(engine, page_tools):
    page = page_tools(_lecture(engine.Value))
    lines = [line for s in page.steps for line in s["lines"]]
    assert "e = a * b = 2.0 * -3.0 = -6.0" in lines
    assert any(line.startswith("dL/da = dL/de * de/da = -2.0 * -3.0 = 6.0") for line in lines)
    assert any(line.startswith("dL/db = dL/de * de/db = -2.0 * 2.0 = -4.0") for line in lines)
    # a node reached twice adds its second share with +=
    page = page_tools(_custom(engine.Value))
    text = "\n".join(line for s in page.steps for line in s["lines"])
    assert "dL/dx += " in text and "rule is Python code" in text and "pre = " not in text


def test_a_fused_neuron_shows_the_engine_s_arithmetic(engine, page_tools):
    page = page_tools(_neuron(engine, True))
    (step,) = [s for s in page.steps if s["phase"] == "backward" and len(s["lines"]) > 1]
    assert step["lines"][0].startswith("pre = dL/dn7 * tanh'(z) = 1.0 * ")


def test_the_page_is_one_file_that_fetches_nothing(engine, page_tools, tmp_path):
    path = tmp_path / "page.html"
    page = page_tools(_lecture(engine.Value), path)
    text = path.read_text()
    assert text == page.html
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<script>" in text
    for fetch in ("src=", "href=", "@import", "url(http"):
        assert fetch not in text.replace('xlink:href="#', ""), fetch
    frame = page._repr_html_()
    assert frame.startswith("<iframe") and "srcdoc=" in frame and "<script" not in frame


def test_a_big_graph_is_refused_clearly(engine, page_tools):
    x = engine.Value(1.0)
    for _ in range(400):
        x = x * 1.0001
    with pytest.raises(ValueError, match="up to max_nodes=300 Values"):
        page_tools(x)
    assert len(page_tools(x, max_nodes=1000).nodes) == 801


def test_walkthrough_html_writes_the_page(engine, engine_name, cli, tmp_path, page_tools):
    path = tmp_path / "walk.html"
    r = cli(engine, "walkthrough", "--html", str(path), "--engine", engine_name)
    assert r.returncode == 0, r.stderr
    assert "wrote " + str(path) in r.stdout
    assert "L = (a*b + c) * f" in path.read_text()


# -- in a real browser -------------------------------------------------------------------------


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install selenium)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (Debian)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_in_a_browser(engine, page_tools, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser = _browser()
    try:
        for name, root in _graphs(engine).items():
            path = tmp_path / "page.html"
            page = page_tools(root, path)
            browser.get(path.as_uri())
            where = browser.find_element(By.ID, "where")
            assert where.text.startswith(f"step 1 of {len(page.steps)}: forward"), name
            body = browser.find_element(By.TAG_NAME, "body")
            for _ in range(len(page.steps) - 1):
                body.send_keys(Keys.ARROW_RIGHT)
            assert where.text.startswith(f"step {len(page.steps)} of {len(page.steps)}"), name
            body.send_keys(Keys.ARROW_RIGHT)  # past the end: stays
            assert where.text.startswith(f"step {len(page.steps)} of"), name
            shown = {
                row.get_attribute("data-node"): row.find_element(By.CLASS_NAME, "grad").text
                for row in browser.find_elements(By.CSS_SELECTOR, "#values tbody tr")
            }
            order = engine._creation_order(_reachable(root))
            assert shown == {f"n{k}": repr(v.grad) for k, v in enumerate(order)}, name
            svg_grad = browser.execute_script(
                "var t = document.getElementById(arguments[0]).querySelectorAll('text');"
                "return t[t.length - 1].textContent;", f"n{len(order) - 1}")
            assert svg_grad == "grad 1.0000"
            body.send_keys(Keys.HOME)
            assert where.text.startswith("step 1 of"), name
            assert browser.find_element(By.ID, "explain").text, name
            errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert not errors, errors
    finally:
        browser.quit()


# -- the training animation --------------------------------------------------------------------


def test_animation_gif(tmp_path, capsys):
    """In this process, on the engine micrograd_fast selects (the command's
    test below runs it on both)."""
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the viz extra)")
    pytest.importorskip("tqdm", reason="tqdm is not installed (the viz extra)")
    from PIL import Image, ImageChops

    path = tmp_path / "train.gif"
    run_demo(steps=12, plot=None, animation_path=path)
    with Image.open(path) as im:
        assert im.n_frames == len(frame_steps(12)) == 13
        assert im.size == (1000, 420)
        im.seek(0)
        first = im.convert("RGB")
        im.seek(im.n_frames - 1)
        last = im.convert("RGB")
    assert ImageChops.difference(first, last).getbbox() is not None
    assert "rendering" in capsys.readouterr().err  # the progress bar


def test_animation_html_and_bad_suffix(engine, engine_name, cli, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the viz extra)")
    path = tmp_path / "train.html"
    r = cli(engine, "demo", "--steps", "2", "--no-plot", "--animate", str(path),
            "--engine", engine_name)
    assert r.returncode == 0, r.stderr
    assert "3 frames" in r.stdout
    text = path.read_text()
    assert "<script" in text and "data:image/png;base64" in text
    r = cli(engine, "demo", "--steps", "4", "--no-plot", "--animate", str(tmp_path / "x.mp4"),
            "--engine", engine_name)
    assert r.returncode == 2 and "a .gif or an .html file" in r.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_frame_steps():
    assert frame_steps(100) == list(range(0, 101, 5))
    assert frame_steps(0) == [0]
    assert frame_steps(7) == list(range(8))


# -- why topological order ---------------------------------------------------------------------


def test_naive_recursions_are_wrong_and_topological_order_right(engine):
    rows = topo.compare(engine.Value)
    assert len(rows) == len(topo.EXAMPLES) == 3
    for title, _, _, fd, topological, plain, visited in rows:
        assert math.isclose(topological, fd, rel_tol=1e-6), title
        assert not math.isclose(plain, fd, rel_tol=1e-3), title
        assert not math.isclose(visited, fd, rel_tol=1e-3), title
        assert plain > fd > visited, title  # shares passed on twice, or lost


def test_walkthrough_topo(engine, engine_name, cli):
    r = cli(engine, "walkthrough", "--topo", "--engine", engine_name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("WRONG") == 6 and r.stdout.count("  right") == 3
    assert "Why the order matters" in r.stdout
