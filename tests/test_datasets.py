"""micrograd_fast.datasets.make_moons against scikit-learn's."""

import numpy as np
import pytest

from micrograd_fast.datasets import make_moons


# -- make_moons ---------------------------------------------------------------------


def test_make_moons_shape_and_labels():
    X, y = make_moons(n_samples=101, noise=None, shuffle=False)
    assert X.shape == (101, 2) and y.shape == (101,)
    assert (y[:50] == 0).all() and (y[50:] == 1).all()
    # without noise the points lie on the two unit half circles
    assert np.allclose(np.hypot(X[:50, 0], X[:50, 1]), 1.0)
    assert np.allclose(np.hypot(X[50:, 0] - 1.0, X[50:, 1] - 0.5), 1.0)
    assert (X[:50, 1] >= -1e-12).all() and (X[50:, 1] <= 0.5 + 1e-12).all()


def test_make_moons_uses_the_global_numpy_state():
    np.random.seed(1337)
    a = make_moons(n_samples=100, noise=0.1)
    np.random.seed(1337)
    b = make_moons(n_samples=100, noise=0.1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert sorted(a[1].tolist()) == [0] * 50 + [1] * 50


@pytest.mark.parametrize(
    "n,noise,shuffle",
    [(100, 0.1, True), (100, None, True), (7, 0.3, False), (33, 0.05, True), ((4, 9), 0.2, True)],
)
def test_make_moons_matches_scikit_learn(n, noise, shuffle):
    datasets = pytest.importorskip("sklearn.datasets")
    np.random.seed(1337)
    X, y = make_moons(n_samples=n, noise=noise, shuffle=shuffle)
    np.random.seed(1337)
    X_ref, y_ref = datasets.make_moons(n_samples=n, noise=noise, shuffle=shuffle)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    X, y = make_moons(n_samples=n, noise=noise, shuffle=shuffle, random_state=5)
    X_ref, y_ref = datasets.make_moons(n_samples=n, noise=noise, shuffle=shuffle,
                                       random_state=5)
    np.testing.assert_array_equal(X, X_ref)
