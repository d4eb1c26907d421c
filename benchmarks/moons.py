"""Two interleaving half circles ("moons"), the toy data set of the demo.

A small NumPy generator so nothing beyond NumPy is needed: the upper moon is
the half circle of radius 1 centred at (0, 0) and labelled 0, the lower moon is
the same half circle turned upside down and moved to (1, 0.5), labelled 1.
Gaussian noise of standard deviation ``noise`` is added to every coordinate,
and the points are shuffled.  The same ``seed`` always gives the same points.
"""

import numpy as np

__all__ = ["make_moons", "demo_data"]


def make_moons(n_samples=100, noise=0.1, seed=1):
    """Return ``(X, y)``: an ``(n_samples, 2)`` float array and 0/1 labels.

    The first moon gets ``n_samples // 2`` points (the second the rest), spread
    evenly along the half circle before the noise is added.
    """
    if n_samples < 2:
        raise ValueError("make_moons needs at least 2 samples")
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    rng = np.random.default_rng(seed)

    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])

    X = np.vstack([upper, lower])
    y = np.concatenate([np.zeros(n_upper, dtype=np.int64), np.ones(n_lower, dtype=np.int64)])
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    order = rng.permutation(n_samples)
    return X[order], y[order]


def demo_data(n_samples=100, noise=0.1, seed=1):
    """The demo's training set as plain Python numbers.

    Returns ``(xs, ys)``: a list of ``[x0, x1]`` float pairs and a list of
    labels in {-1, 1} (the hinge loss wants signed labels).
    """
    X, y = make_moons(n_samples, noise=noise, seed=seed)
    return X.tolist(), (2 * y - 1).tolist()
