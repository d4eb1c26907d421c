"""Make the pictures of docs/lab.md: the step-through page of the lecture's
expression at its first and its last step (Chromium, headless), the
training animation of the moons demo (a GIF), and the gradient graph of
docs/higher_order.md.

    python tools/lab_pictures.py

Needs the viz packages, selenium, Graphviz's dot, and Chromium with its
driver (Debian: apt-get install graphviz chromium chromium-driver).
"""

import os
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def browser(width, height):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def page_pictures():
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from micrograd_fast import Value
    from micrograd_fast.lab.walkthrough import ROOT as L, build
    from micrograd_fast.viz import backprop_html

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lecture.html")
        page = backprop_html(build(Value)[L], path,
                             title="Backpropagation through L = (a*b + c) * f, step by step")
        b = browser(1100, 620)
        try:
            b.get("file://" + path)
            body = b.find_element(By.TAG_NAME, "body")
            b.save_screenshot(os.path.join(DOCS, "backprop_first.png"))
            for _ in range(len(page.steps)):
                body.send_keys(Keys.ARROW_RIGHT)
            b.save_screenshot(os.path.join(DOCS, "backprop_last.png"))
        finally:
            b.quit()


def animation():
    from micrograd_fast.lab.demo import run_demo

    run_demo(steps=100, plot=None, animation_path=os.path.join(DOCS, "moons_training.gif"))


def gradient_graph():
    """The lecture's neuron, o = tanh(x1*w1 + x2*w2 + b), and the graph of
    do/dw1 that grad(..., create_graph=True) builds for it."""
    import micrograd_fast
    from micrograd_fast import Value

    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.label = "o"
    (dw1,) = micrograd_fast.grad(o, [w1], create_graph=True)
    dw1.label = "do/dw1"
    dot = micrograd_fast.draw_dot(dw1, format="png")
    dot.render(os.path.join(DOCS, "gradient_graph"), cleanup=True)


if __name__ == "__main__":
    page_pictures()
    animation()
    gradient_graph()
    print("wrote docs/backprop_first.png, docs/backprop_last.png, docs/moons_training.gif, "
          "docs/gradient_graph.png")
