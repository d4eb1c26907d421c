"""The lecture's first worked example, narrated.

    a = 2, b = -3, c = 10, f = -2
    e = a * b      d = e + c      L = d * f

Prints the forward values, then backpropagation one node at a time (local
derivative, then the chain-rule product that gives dL/dnode), checks the
engine's ``backward()`` got the same numbers, and finally checks every leaf's
gradient against a finite difference.
"""

import sys

# (name, value) of the leaves, and (name, op, left, right) of the inner nodes,
# in the order the lecture builds them
LEAVES = {"a": 2.0, "b": -3.0, "c": 10.0, "f": -2.0}
STEPS = [("e", "*", "a", "b"), ("d", "+", "e", "c"), ("L", "*", "d", "f")]
ORDER = ["a", "b", "c", "e", "d", "f", "L"]
ROOT = "L"
H = 1e-6


def build(Value, leaves=None):
    """The expression with labelled Values; returns {name: Value}."""
    leaves = dict(LEAVES, **(leaves or {}))
    nodes = {name: Value(x, label=name) for name, x in leaves.items()}
    for name, op, left, right in STEPS:
        x, y = nodes[left], nodes[right]
        out = x * y if op == "*" else x + y
        out.label = name
        nodes[name] = out
    return nodes


def _num(x):
    return repr(float(x))


def _local_derivatives(op, left, right, nodes):
    """[(input, formula, value)] for out = left op right."""
    if op == "+":
        return [(left, "1", 1.0), (right, "1", 1.0)]
    # product rule: the derivative with respect to one factor is the other
    return [
        (left, right, nodes[right].data),
        (right, left, nodes[left].data),
    ]


def walkthrough(Value, out=None, graph=None, html=None):
    """Print the walk-through to ``out`` (default stdout).

    With ``graph`` (a file name) the graph, grads filled in, is drawn there;
    with ``html`` (a file name) the step-through page of the same expression
    is written there (``micrograd_fast.viz.backprop_html``).
    Returns True when the engine's gradients match the hand computation and
    the finite differences.
    """
    out = out or sys.stdout

    def say(line=""):
        print(line, file=out)

    nodes = build(Value)
    formulas = {name: f"{left} {op} {right}" for name, op, left, right in STEPS}

    say("Expression: e = a * b, d = e + c, L = d * f  (so L = (a*b + c) * f)")
    say()
    say("Forward pass: every node's value")
    for name in ORDER:
        v = nodes[name]
        if name in formulas:
            _, op, left, right = next(s for s in STEPS if s[0] == name)
            say(f"  {name} = {formulas[name]} = {_num(nodes[left].data)} {op} "
                f"{_num(nodes[right].data)} = {_num(v.data)}")
        else:
            say(f"  {name} = {_num(v.data)}")
    say()

    say("Backward pass: dL/dx for every node x, from L back to the leaves")
    say(f"  dL/d{ROOT} = 1.0  (the output's derivative with respect to itself)")
    grads = {ROOT: 1.0}
    for name, op, left, right in reversed(STEPS):
        say(f"  {name} = {formulas[name]}:")
        for child, formula, local in _local_derivatives(op, left, right, nodes):
            if formula == "1":
                say(f"    local derivative d{name}/d{child} = {_num(local)}  (sum)")
            else:
                say(f"    local derivative d{name}/d{child} = {formula} = {_num(local)}"
                    f"  (product: the other factor)")
            g = grads[name] * local
            grads[child] = grads.get(child, 0.0) + g
            say(f"    dL/d{child} = dL/d{name} * d{name}/d{child} = "
                f"{_num(grads[name])} * {_num(local)} = {_num(g)}")
    say()

    nodes[ROOT].backward()
    agree = all(nodes[n].grad == grads[n] for n in ORDER)
    say("The engine's backward() gives the same gradients:" if agree
        else "The engine's backward() DISAGREES with the hand computation:")
    say("  " + ", ".join(f"{n}.grad = {_num(nodes[n].grad)}" for n in ORDER))
    say()

    say(f"Numerical check: dL/dx ~ (L(x + h) - L(x)) / h with h = {H}")
    base = nodes[ROOT].data
    close = True
    for leaf in LEAVES:
        bumped = build(Value, {leaf: LEAVES[leaf] + H})[ROOT].data
        estimate = (bumped - base) / H
        exact = nodes[leaf].grad
        ok = abs(estimate - exact) <= 1e-4 * max(1.0, abs(exact))
        close = close and ok
        say(f"  dL/d{leaf}: finite difference {estimate:.9f}, backprop "
            f"{_num(exact)}  {'ok' if ok else 'MISMATCH'}")
    say()

    if graph is not None:
        from micrograd_fast.viz import render_graph

        render_graph(nodes[ROOT], graph)
        say(f"wrote {graph} (the expression graph with data and grad)")
    if html is not None:
        from micrograd_fast.viz import backprop_html

        page = backprop_html(build(Value)[ROOT], html,
                             title="Backpropagation through L = (a*b + c) * f, step by step")
        say(f"wrote {html} (the forward and backward pass, {len(page.steps)} steps: open it "
            f"in a browser, step with the arrow keys)")
    return agree and close
