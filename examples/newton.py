"""Newton's method on a scalar function, with derivatives from micrograd_fast.grad.

Newton's step x <- x - f'(x) / f''(x) needs the second derivative.
grad(f, [x], create_graph=True) gives f'(x) as a Value that is itself a
graph of ordinary nodes, so grad of it gives f''(x).  Each step is checked
against central finite differences of f.

    python examples/newton.py
    python examples/newton.py --x0 2.5 --steps 8
    MICROGRAD_FAST_NO_EXTENSIONS=1 python examples/newton.py
"""

import argparse
import math

import micrograd_fast
from micrograd_fast import Value


def f(x):
    """x**4 - 3x**2 + exp(x) - x tanh(x), on Values."""
    return x ** 4 - 3 * x ** 2 + x.exp() - x * x.tanh()


def f_float(x):
    return x ** 4 - 3 * x ** 2 + math.exp(x) - x * math.tanh(x)


def derivatives(x0):
    """f(x0), f'(x0), f''(x0) from the graph."""
    x = Value(x0)
    y = f(x)
    (d1,) = micrograd_fast.grad(y, [x], create_graph=True)
    (d2,) = micrograd_fast.grad(d1, [x])
    return y.data, d1.data, d2.data


def finite_differences(x0, h=1e-4):
    d1 = (f_float(x0 + h) - f_float(x0 - h)) / (2 * h)
    d2 = (f_float(x0 + h) - 2 * f_float(x0) + f_float(x0 - h)) / (h * h)
    return d1, d2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x0", type=float, default=1.5, help="starting point")
    parser.add_argument("--steps", type=int, default=6, help="Newton steps")
    args = parser.parse_args(argv)

    engine = "compiled" if micrograd_fast.COMPILED else "pure"
    print(f"Newton's method on f(x) = x**4 - 3x**2 + exp(x) - x tanh(x) ({engine} engine)")
    x = args.x0
    for step in range(args.steps):
        y, d1, d2 = derivatives(x)
        fd1, fd2 = finite_differences(x)
        assert math.isclose(d1, fd1, rel_tol=1e-6, abs_tol=1e-6), (d1, fd1)
        assert math.isclose(d2, fd2, rel_tol=1e-4, abs_tol=1e-4), (d2, fd2)
        print(f"step {step}: x={x:.12f}  f={y:.12f}  f'={d1:+.3e}  f''={d2:.6f}"
              f"  (finite differences: {fd1:+.3e}, {fd2:.6f})")
        x = x - d1 / d2
    y, d1, d2 = derivatives(x)
    print(f"minimum: x={x:.12f}, f(x)={y:.12f}, f'(x)={d1:+.1e}")


if __name__ == "__main__":
    main()
