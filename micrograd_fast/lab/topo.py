"""Why backward() runs the chain rule in topological order.

On small graphs where a node is reached along two paths, three ways to run
the nodes' chain rules (each node's ``_backward()``) from the output:

* naive recursion: each child's backward as soon as its parent's is done,
  down every path (a node reached twice runs twice);
* naive recursion with a visited set: the same, but each node runs once, when
  it is first reached;
* topological order: ``backward()`` itself, every node after all the nodes
  that use it;

with central finite differences as the judge.  ``compare()`` returns the
numbers, ``report()`` prints them with the reason.
"""

import sys
import textwrap

H = 1e-6

WHY = (
    "Why the order matters. A node's gradient dL/dv is a sum over every path "
    "from the output L to v: each node that uses v adds its share when its own "
    "chain rule runs. v's chain rule passes dL/dv on to v's children, so it may "
    "run only once that sum is complete, after every node that uses v. A "
    "recursion that runs a child's rule as soon as one parent's is done runs v's "
    "rule with part of the sum; without a visited set it runs it again when the "
    "next parent has added its share, and passes the first share on twice (too "
    "big); with a visited set it never runs it again, and the later shares never "
    "reach v's children (too small). Which of the two a recursion over micrograd's "
    "_prev (a set) gets can even change from run to run, with memory addresses. "
    "Reverse topological order (every node after all the nodes that use it) is "
    "the order in which each sum is complete before it is passed on: micrograd's "
    "backward() sorts the graph depth-first before it runs any rule, and "
    "micrograd_fast's visits the nodes in the reverse of the order they were "
    "made, which is topological because a node's children always exist first."
)


def _twice_added(V, x):
    # the lecture's b = a + a, with a computed from x and used once more
    a = x * 3.0
    a.label = "a"
    b = a + a
    b.label = "b"
    L = a * b
    L.label = "L"
    return L


def _diamond(V, x):
    y = x * x
    y.label = "y"
    p = y + 1.0
    p.label = "p"
    q = y * 2.0
    q.label = "q"
    L = p * q
    L.label = "L"
    return L


def _used_after(V, x):
    b = x * 2.0
    b.label = "b"
    c = b + 1.0
    c.label = "c"
    L = b * c
    L.label = "L"
    return L


#: (title, the expression in words, builder(Value, x) -> L, x's value)
EXAMPLES = [
    ("b = a + a (the lecture's), a used again", "a = 3x, b = a + a, L = a * b", _twice_added, 0.5),
    ("a diamond", "y = x*x, p = y + 1, q = 2y, L = p * q", _diamond, 1.5),
    ("a node used again after an intermediate one", "b = 2x, c = b + 1, L = b * c",
     _used_after, 2.0),
]


def _children(v):
    """v's distinct children in the order its op lists them (micrograd's
    _prev is a set: the order would be memory addresses)."""
    out, seen = [], set()
    for c in v._children:
        if id(c) not in seen:
            seen.add(id(c))
            out.append(c)
    return out


def _everything(root):
    nodes, stack, seen = [], [root], {id(root)}
    while stack:
        v = stack.pop()
        nodes.append(v)
        for c in v._prev:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return nodes


def naive(root, visited_set):
    """Run the chain rules from root by recursion, each child's as soon as
    its parent's is done (depth first, children in order); with
    ``visited_set`` each node runs once, when first reached."""
    for v in _everything(root):
        v.grad = 0.0
    root.grad = 1.0
    seen = set()
    stack = [root]  # an explicit stack: the same visiting order as recursion
    while stack:
        v = stack.pop()
        if visited_set:
            if id(v) in seen:
                continue
            seen.add(id(v))
        v._backward()
        stack.extend(reversed(_children(v)))


def compare(Value):
    """Per example: (title, words, x, finite difference, topological,
    naive, naive with a visited set), each the gradient dL/dx."""
    rows = []
    for title, words, build, x0 in EXAMPLES:
        def grad_by(how):
            x = Value(x0, label="x")
            L = build(Value, x)
            how(L)
            return x.grad

        def f(x):
            return build(Value, Value(x, label="x")).data

        fd = (f(x0 + H) - f(x0 - H)) / (2 * H)
        topo = grad_by(lambda L: L.backward())
        plain = grad_by(lambda L: naive(L, visited_set=False))
        visited = grad_by(lambda L: naive(L, visited_set=True))
        rows.append((title, words, x0, fd, topo, plain, visited))
    return rows


def _right(g, fd):
    return abs(g - fd) <= 1e-4 * max(1.0, abs(fd))


def report(Value, out=None):
    """Print the comparison and the reason; True when topological order is
    right and both naive recursions are wrong on every example."""
    out = out or sys.stdout

    def say(line=""):
        print(line, file=out)

    say("dL/dx three ways, judged by central finite differences")
    say()
    ok = True
    for title, words, x0, fd, topo, plain, visited in compare(Value):
        say(f"{title}: {words}, at x = {x0}")
        say(f"  finite difference              {fd:12.6f}")
        for name, g in (("topological order (backward())", topo),
                        ("naive recursion", plain),
                        ("naive recursion, visited set", visited)):
            verdict = "right" if _right(g, fd) else "WRONG"
            say(f"  {name:30} {g:12.6f}  {verdict}")
        ok = ok and _right(topo, fd) and not _right(plain, fd) and not _right(visited, fd)
        say()
    say(textwrap.fill(WHY, 78))
    return ok
