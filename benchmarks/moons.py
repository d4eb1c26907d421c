"""The demo's training set, from the package's own two-moons generator."""

__all__ = ["demo_data"]


def demo_data(n_samples=100, noise=0.1, seed=1):
    """The demo's training set as plain Python numbers.

    Returns ``(xs, ys)``: a list of ``[x0, x1]`` float pairs and a list of
    labels in {-1, 1} (the hinge loss wants signed labels).  The same seed
    always gives the same points.
    """
    # imported here: the runner imports this module and must not need a
    # built micrograd_fast itself (its workers load the engines)
    from micrograd_fast.datasets import make_moons

    X, y = make_moons(n_samples, noise=noise, random_state=seed)
    return X.tolist(), (2 * y - 1).tolist()
