"""Small toy data sets for the demos, in NumPy only.

``make_moons`` draws the same points as scikit-learn's function of the same
name (same arguments, same random draws in the same order), so a script that
seeds NumPy and asks for moons gets identical data with or without
scikit-learn installed.
"""

import numbers

import numpy as np

__all__ = ["make_moons"]


def _random_state(seed):
    """None -> NumPy's global RandomState; an int -> a fresh one; or pass one."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise TypeError(
        f"random_state must be None, an int or a numpy.random.RandomState, "
        f"not {type(seed).__name__}"
    )


def make_moons(n_samples=100, *, shuffle=True, noise=None, random_state=None):
    """Two interleaving half circles in the plane, labelled 0 and 1.

    The upper half circle (label 0) has centre (0, 0) and radius 1; the lower
    one (label 1) has centre (1, 0.5) and opens upwards.  ``n_samples`` is the
    total count (the first moon gets ``n_samples // 2`` points) or a pair
    ``(n_upper, n_lower)``.  With ``shuffle`` the rows are permuted; ``noise``
    is the standard deviation of Gaussian noise added to every coordinate.

    Randomness comes from ``random_state`` (None means NumPy's global state,
    so ``np.random.seed(...)`` beforehand makes the result reproducible): first
    one permutation of the row indices, then the noise, as scikit-learn does.

    Returns ``(X, y)``: a float array of shape (n, 2) and an int array (n,).
    """
    if isinstance(n_samples, numbers.Integral):
        n_upper = int(n_samples) // 2
        n_lower = int(n_samples) - n_upper
    else:
        try:
            n_upper, n_lower = (int(k) for k in n_samples)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "n_samples must be an int or a pair (n_upper, n_lower)"
            ) from exc
    if n_upper < 0 or n_lower < 0:
        raise ValueError("n_samples must not be negative")
    rng = _random_state(random_state)

    angle_upper = np.linspace(0.0, np.pi, n_upper)
    angle_lower = np.linspace(0.0, np.pi, n_lower)
    # written in the same floating-point order as scikit-learn, bit for bit
    xs = np.concatenate([np.cos(angle_upper), 1 - np.cos(angle_lower)])
    ys = np.concatenate([np.sin(angle_upper), 1 - np.sin(angle_lower) - 0.5])
    X = np.column_stack([xs, ys])
    y = np.concatenate(
        [np.zeros(n_upper, dtype=np.intp), np.ones(n_lower, dtype=np.intp)]
    )

    if shuffle:
        order = np.arange(X.shape[0])
        rng.shuffle(order)
        X, y = X[order], y[order]
    if noise is not None:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y
