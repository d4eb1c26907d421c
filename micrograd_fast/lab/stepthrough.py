"""A page that steps through backpropagation on the reader's own graph.

``backprop_page(root)`` (``micrograd_fast.viz.backprop_html``) records the
forward pass and then the backward pass of the graph below ``root``, one node
per step, in the engine's own order (the order the nodes were made, then its
reverse, which is the order ``backward()`` visits them), and writes them into
one self-contained HTML file: the graph as inline SVG drawn by Graphviz, the
steps as data, and a small script that highlights the current node, writes
out its local derivative and the chain-rule products, and fills in each
grad as it is computed.

The numbers are the engine's: the forward values are the nodes' ``data``,
and the backward pass is run by the engine one node at a time (each node's
``_backward()``, the lecture's manual step), from grads set to zero and the
root's to 1, so the last step shows what ``backward()`` gives.  The graph's
grads are left as that pass leaves them.
"""

import html
import json

#: graphs with more Values than this are refused: the page is for reading
MAX_NODES = 300

_UNARY = {"ReLU": "relu", "tanh": "tanh", "exp": "exp", "log": "log",
          "sigmoid": "sigmoid", "gelu": "gelu"}
# each one-input op's local derivative, written in its input x and output out
_UNARY_SLOPE = {"ReLU": "(out > 0)", "tanh": "1 - out**2", "exp": "out",
                "log": "1 / x", "sigmoid": "out * (1 - out)",
                "gelu": "Phi(x) + x * phi(x)"}


def _num(x):
    return repr(float(x))


class _Names:
    """A name for each node: its label, made unique, or n<k> by creation
    order."""

    def __init__(self, order):
        self.name = {}
        taken = {}
        for k, v in enumerate(order):
            label = str(getattr(v, "label", "") or "")
            base = label if label else f"n{k}"
            count = taken.get(base, 0)
            taken[base] = count + 1
            self.name[id(v)] = base if count == 0 else f"{base}#{count + 1}"

    def __call__(self, v):
        return self.name[id(v)]


def _formula(v, names):
    """How node v is computed from its children, in words."""
    op = v._op
    kids = list(v._children)
    n = [names(c) for c in kids]
    d = [_num(c.data) for c in kids]
    if op == "+" and len(kids) == 2:
        return f"{n[0]} + {n[1]}", f"{d[0]} + {d[1]}"
    if op == "*" and len(kids) == 2:
        return f"{n[0]} * {n[1]}", f"{d[0]} * {d[1]}"
    if op.startswith("**") and len(kids) == 1:
        return f"{n[0]}{op}", f"{d[0]}{op}"
    if op == "**" and len(kids) == 2:
        return f"{n[0]} ** {n[1]}", f"{d[0]} ** {d[1]}"
    if op in _UNARY and len(kids) == 1:
        return f"{_UNARY[op]}({n[0]})", f"{_UNARY[op]}({d[0]})"
    if op == "sum":
        return " + ".join(n) or "0", " + ".join(d) or "0"
    if op.startswith("neuron_") and len(kids) % 2 == 1:
        m = len(kids) // 2
        act = op[len("neuron_"):]
        terms = " + ".join([n[-1]] + [f"{n[j]}*{n[m + j]}" for j in range(m)])
        nums = " + ".join([d[-1]] + [f"{d[j]}*{d[m + j]}" for j in range(m)])
        return f"{act}({terms})", f"{act}({nums})"
    shown = op or "a rule of its own"
    return f"{shown}({', '.join(n)})", f"{shown}({', '.join(d)})"


def _local_words(v, t, names):
    """The local derivative d v / d child_t, in words."""
    op = v._op
    kids = list(v._children)
    if op in ("+", "sum"):
        return "1"
    if op == "*" and len(kids) == 2:
        return names(kids[1 - t])
    if op.startswith("**") and op != "**" and len(kids) == 1:
        k = op[2:]
        return f"{k} * {names(kids[0])}**({k} - 1)"
    if op == "**" and len(kids) == 2:
        x, e = names(kids[0]), names(kids[1])
        return f"{e} * {x}**({e} - 1)" if t == 0 else f"{names(v)} * log({x})"
    if op in _UNARY_SLOPE and len(kids) == 1:
        return _UNARY_SLOPE[op].replace("out", names(v)).replace("x", names(kids[0]))
    return "local grad"


def _neuron_lines(v, g, local, kids, names):
    """The fused neuron's rule as the engine computes it: pre = act' * g
    first, then each weight's and input's share of it."""
    m = len(kids) // 2
    act = v._op[len("neuron_"):]
    s = local[-1]
    pre = s * g
    me = names(v)
    lines = [f"pre = dL/d{me} * {act}'(z) = {_num(g)} * {_num(s)} = {_num(pre)}"]
    shares = []
    for j in range(m):
        w, x = kids[j], kids[m + j]
        shares.append((j, f"{names(x)} * pre", x.data * pre, f"{_num(x.data)} * {_num(pre)}"))
        shares.append((m + j, f"{names(w)} * pre", w.data * pre, f"{_num(w.data)} * {_num(pre)}"))
    shares.append((2 * m, "pre", pre, _num(pre)))
    return lines, shares


def record_steps(root, max_nodes=MAX_NODES):
    """The steps of the page as plain data: (nodes, steps).

    ``nodes``: per node in creation order, its id, name, final data and the
    final grad; ``steps``: per step its phase ('forward' or 'backward'),
    the node it is about, lines of text, and the data and grads it sets."""
    from micrograd_fast.engine import engine_of
    from micrograd_fast.viz import collect_graph

    eng = engine_of(root)
    if eng is None:
        raise TypeError(f"backprop_html: expected a micrograd_fast Value, not {type(root).__name__}")
    try:
        found, _ = collect_graph(root, max_nodes)
    except ValueError:
        raise ValueError(
            f"backprop_html steps through graphs of up to max_nodes={max_nodes} Values, one "
            f"node per step, and more than that are reachable from this one: step through "
            f"a smaller expression (a Neuron, the lecture's expressions), or pass a larger "
            f"max_nodes"
        ) from None
    order = eng._creation_order(found)
    names = _Names(order)
    ids = {id(v): f"n{k}" for k, v in enumerate(order)}
    steps = []

    # forward: every node in creation order (leaves first, as they were made)
    for v in order:
        me = names(v)
        if not v._prev:
            lines = [f"{me} = {_num(v.data)}  (a leaf: an input or a parameter)"]
        else:
            words, nums = _formula(v, names)
            lines = [f"{me} = {words} = {nums} = {_num(v.data)}"]
        steps.append({"phase": "forward", "node": ids[id(v)], "lines": lines,
                      "data": {ids[id(v)]: _num(v.data)}, "grad": {}, "edges": []})

    # backward: the engine's own pass, one node at a time
    for v in order:
        v.grad = 0.0
    root.grad = 1.0
    first_seen = {id(root)}
    steps.append({"phase": "backward", "node": ids[id(root)],
                  "lines": [f"dL/d{names(root)} = 1.0  (the output's derivative with "
                            "respect to itself" + ("" if names(root) == "L" else
                                                   f"; L is {names(root)}") + ")"],
                  "data": {}, "grad": {ids[id(root)]: _num(1.0)}, "edges": []})
    for v in reversed(order):
        kids = list(v._children)
        if not kids:
            continue
        me = names(v)
        g = v.grad
        local = tuple(v._local_grads)
        before = [c.grad for c in kids]
        v._backward()
        after = {id(c): c.grad for c in kids}
        lines = []
        grads = {}
        if local and v._op.startswith("neuron_"):
            lines, shares = _neuron_lines(v, g, local, kids, names)
            running = dict(zip(map(id, kids), before))
            for t, words, p, nums in shares:
                c = kids[t]
                running[id(c)] = running[id(c)] + p
                lines.append(_chain_line(c, names, first_seen, words, nums, p, running[id(c)]))
        elif local:
            running = dict(zip(map(id, kids), before))
            for t, c in enumerate(kids):
                p = local[t] * g
                running[id(c)] = running[id(c)] + p
                words = f"dL/d{me} * d{me}/d{names(c)}"
                nums = f"{_num(g)} * {_num(local[t])}"
                line = _chain_line(c, names, first_seen, words, nums, p, running[id(c)])
                lines.append(line + f"   (d{me}/d{names(c)} = {_local_words(v, t, names)})")
        else:
            lines.append(f"{me}'s rule is Python code (its _backward): it ran, and left")
            for c in kids:
                first_seen.add(id(c))
                lines.append(f"  dL/d{names(c)} = {_num(after[id(c)])}")
        for c in kids:
            grads[ids[id(c)]] = _num(after[id(c)])
        steps.append({"phase": "backward", "node": ids[id(v)], "lines": lines, "data": {},
                      "grad": grads, "edges": [ids[id(c)] for c in kids]})

    nodes = [{"id": ids[id(v)], "name": names(v), "data": _num(v.data), "grad": _num(v.grad),
              "op": v._op} for v in order]
    return nodes, steps


def _chain_line(c, names, first_seen, words, nums, product, total):
    """dL/dc = (words) = (numbers) = product, or += when c already has a share."""
    cn = names(c)
    if id(c) in first_seen:
        return f"dL/d{cn} += {words} = {nums} = {_num(product)}  ->  dL/d{cn} = {_num(total)}"
    first_seen.add(id(c))
    return f"dL/d{cn} = {words} = {nums} = {_num(total)}"


def _svg(nodes, edges_of):
    """The graph drawn by Graphviz as SVG text: one record per node (name,
    data, grad, laid out with the final numbers so they fit) and an oval per
    op, with ids the page's script finds."""
    from micrograd_fast.viz import _digraph_class, _record_text

    Graph = _digraph_class()
    dot = Graph(format="svg", graph_attr={"rankdir": "LR", "bgcolor": "transparent"},
                node_attr={"fontname": "Helvetica", "fontsize": "11"})
    for n in nodes:
        nid = n["id"]
        label = "{ %s | data %.4f | grad %.4f }" % (_record_text(n["name"]), float(n["data"]),
                                                     float(n["grad"]))
        dot.node(nid, label=label, shape="record", id=nid)
        if edges_of[nid]:
            dot.node(nid + "_op", label=_record_text(n["op"] or "f"), shape="ellipse",
                     fontsize="10", width="0.3", height="0.3", margin="0.02", id=nid + "_op")
            dot.edge(nid + "_op", nid, id=nid + "_out")
    for n in nodes:
        for t, c in enumerate(edges_of[n["id"]]):
            dot.edge(c, n["id"] + "_op", id=f"{c}_to_{n['id']}_{t}")
    svg = dot.pipe(format="svg", encoding="utf-8")
    return svg[svg.index("<svg"):]


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%(title)s</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.2em; margin: 0 0 .4em 0; }
#controls { display: flex; gap: .5em; align-items: center; flex-wrap: wrap; margin: .4em 0; }
#controls button { font-size: 1em; padding: .2em .7em; }
#slider { flex: 1; min-width: 12em; }
#where { font-weight: bold; min-width: 14em; }
#explain { font-family: Menlo, Consolas, monospace; font-size: .95em; background: #f6f6f6;
           border-left: 4px solid #999; padding: .5em .8em; min-height: 4.5em;
           white-space: pre-wrap; margin: .4em 0; }
#explain.forward { border-color: #3a7bd5; }
#explain.backward { border-color: #d5533a; }
#graph { overflow: auto; border: 1px solid #ddd; padding: .3em; }
#graph svg { max-width: 100%%; height: auto; }
g.node.pending text { fill: #aaa; }
g.node.current polygon { fill: #ffe08a; stroke: #c08000; stroke-width: 2; }
g.node.current ellipse { fill: #ffe08a; stroke: #c08000; stroke-width: 2; }
g.node.done polygon { fill: #eef5ff; }
g.edge.active path { stroke: #d5533a; stroke-width: 2.5; }
g.edge.active polygon { fill: #d5533a; stroke: #d5533a; }
table { border-collapse: collapse; margin-top: .6em; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .15em .6em; text-align: right; }
th { background: #f0f0f0; }
td.name { text-align: left; font-family: Menlo, Consolas, monospace; }
tr.current td { background: #ffe08a; }
.help { color: #666; font-size: .85em; }
</style>
</head>
<body>
<h1>%(title)s</h1>
<div id="controls">
  <button id="first" title="first step (Home)">&#9664;&#9664;</button>
  <button id="prev" title="previous step (left arrow)">&#9664; back</button>
  <button id="next" title="next step (right arrow)">next &#9654;</button>
  <button id="last" title="last step (End)">&#9654;&#9654;</button>
  <input id="slider" type="range" min="0" max="0" value="0" aria-label="step">
  <span id="where"></span>
</div>
<div id="explain"></div>
<div id="graph">%(svg)s</div>
<table id="values"><thead><tr><th>node</th><th>data</th><th>grad</th></tr></thead><tbody></tbody></table>
<p class="help">Forward pass: every node's value, in the order the engine made the nodes.
Backward pass: the engine's own order, the reverse; each step applies one node's chain rule,
adding dL/dnode &times; dnode/dchild to each child's gradient. Keys: &larr; &rarr;, Home, End.</p>
<script>
(function () {
  "use strict";
  var NODES = %(nodes)s;
  var STEPS = %(steps)s;
  var k = 0;
  var rows = {};
  var tbody = document.querySelector("#values tbody");
  NODES.forEach(function (n) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-node", n.id);
    tr.innerHTML = "<td class='name'></td><td class='data'></td><td class='grad'></td>";
    tr.querySelector(".name").textContent = n.name;
    tbody.appendChild(tr);
    rows[n.id] = tr;
  });
  function texts(id) {
    var g = document.getElementById(id);
    return g ? g.querySelectorAll("text") : [];
  }
  function fmt(s) { return s === null ? "" : Number(s).toFixed(4); }
  function show(step) {
    var data = {}, grad = {}, done = {}, t, s, id;
    for (t = 0; t <= step; t++) {
      s = STEPS[t];
      for (id in s.data) { data[id] = s.data[id]; }
      for (id in s.grad) { grad[id] = s.grad[id]; }
      if (t < step) { done[s.node] = true; }
    }
    s = STEPS[step];
    NODES.forEach(function (n) {
      var g = document.getElementById(n.id), ts = texts(n.id), last = ts.length;
      var has = data.hasOwnProperty(n.id), hg = grad.hasOwnProperty(n.id);
      if (last >= 2) {
        ts[last - 2].textContent = "data " + (has ? fmt(data[n.id]) : "?");
        ts[last - 1].textContent = "grad " + (hg ? fmt(grad[n.id]) : "");
      }
      if (g) {
        g.classList.toggle("current", n.id === s.node);
        g.classList.toggle("pending", !has);
        g.classList.toggle("done", !!done[n.id] && n.id !== s.node);
      }
      var op = document.getElementById(n.id + "_op");
      if (op) { op.classList.toggle("current", n.id === s.node); }
      var tr = rows[n.id];
      tr.querySelector(".data").textContent = has ? data[n.id] : "";
      tr.querySelector(".grad").textContent = hg ? grad[n.id] : "";
      tr.classList.toggle("current", n.id === s.node);
    });
    Array.prototype.forEach.call(document.querySelectorAll("g.edge"), function (e) {
      e.classList.remove("active");
    });
    if (s.phase === "backward") {
      s.edges.forEach(function (c, t) {
        var e = document.getElementById(c + "_to_" + s.node + "_" + t);
        if (e) { e.classList.add("active"); }
      });
    }
    var box = document.getElementById("explain");
    box.className = s.phase;
    box.textContent = s.lines.join("\\n");
    document.getElementById("where").textContent =
      "step " + (step + 1) + " of " + STEPS.length + ": " + s.phase + " pass";
    document.getElementById("slider").value = step;
  }
  function go(step) {
    k = Math.max(0, Math.min(STEPS.length - 1, step));
    show(k);
  }
  var slider = document.getElementById("slider");
  slider.max = STEPS.length - 1;
  slider.addEventListener("input", function () { go(parseInt(slider.value, 10)); });
  document.getElementById("first").addEventListener("click", function () { go(0); });
  document.getElementById("prev").addEventListener("click", function () { go(k - 1); });
  document.getElementById("next").addEventListener("click", function () { go(k + 1); });
  document.getElementById("last").addEventListener("click", function () { go(STEPS.length - 1); });
  document.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT") { return; }
    if (ev.key === "ArrowRight") { go(k + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { go(k - 1); ev.preventDefault(); }
    else if (ev.key === "Home") { go(0); ev.preventDefault(); }
    else if (ev.key === "End") { go(STEPS.length - 1); ev.preventDefault(); }
  });
  go(0);
}());
</script>
</body>
</html>
"""


class BackpropPage:
    """The step-through page of one graph: ``html`` is the whole file's
    text, ``nodes`` and ``steps`` what it shows; ``save(path)`` writes it,
    and Jupyter displays it inline (``_repr_html_``, in a frame of its own)."""

    def __init__(self, html_text, nodes, steps):
        self.html = html_text
        self.nodes = nodes
        self.steps = steps

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)
        return path

    def _repr_html_(self):
        return ('<iframe style="width: 100%%; height: 720px; border: 1px solid #ddd" '
                'srcdoc="%s"></iframe>' % html.escape(self.html, quote=True))

    def __repr__(self):
        return f"<BackpropPage: {len(self.nodes)} nodes, {len(self.steps)} steps>"


def _script_json(obj):
    """JSON for inside a <script>: no '</' can close the element early."""
    return json.dumps(obj).replace("</", "<\\/")


def backprop_page(root, path=None, title=None, max_nodes=MAX_NODES):
    nodes, steps = record_steps(root, max_nodes)
    edges_of = {n["id"]: [] for n in nodes}
    for s in steps:
        if s["phase"] == "backward" and s["edges"]:
            edges_of[s["node"]] = s["edges"]
    svg = _svg(nodes, edges_of)
    title = title or f"Backpropagation through {nodes[-1]['name'] if nodes else 'a graph'}, step by step"
    text = _PAGE % {"title": html.escape(title), "svg": svg, "nodes": _script_json(nodes),
                    "steps": _script_json(steps)}
    page = BackpropPage(text, nodes, steps)
    if path is not None:
        page.save(path)
    return page
