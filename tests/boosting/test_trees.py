"""Tests of lensbox.boosting.trees: the tree kernel of gradient-boosted trees and Eq. 9."""

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError

from lensbox.boosting import trees
from lensbox.engine.smoother import effective_parameters


def _data(n=300, m=80, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + m, d))
    y = X[:, 0] ** 2 + np.sin(2 * X[:, 1]) + 0.2 * rng.standard_normal(n + m)
    return X[:n], y[:n], X[n:], y[n:]


@pytest.fixture(scope="module")
def fitted():
    X, y, Xt, yt = _data()
    model = GradientBoostingRegressor(
        n_estimators=25, max_depth=3, learning_rate=0.2, random_state=0
    )
    return model.fit(X, y), X, y, Xt


def test_eq9_identity_on_train_and_unseen_rows(fitted):
    model, X, y, Xt = fitted
    far = 50.0 * Xt  # far outside the training data
    for Z in (X, Xt, far):
        assert (
            np.max(np.abs(trees.telescoping_predict(model, X, y, Z) - model.predict(Z)))
            < 1e-12
        )


def test_each_tree_is_its_dense_kernel_times_the_residuals(fitted):
    model, X, y, Xt = fitted
    h0, terms = trees.telescoping_predict(model, X, y, Xt, terms=True)
    g = trees.negative_gradients(model, X, y)
    assert np.allclose(h0, y.mean())
    for t in (0, 7, 24):
        K = trees.tree_kernel(model, Xt, X, t)
        assert np.allclose(K.sum(1), 1.0) and K.min() >= 0
        assert np.allclose(model.learning_rate * K @ g[:, t], terms[:, t], atol=1e-13)
        # ... and the tree's own prediction (fitted to -g) is the same leaf mean
        assert np.allclose(model.estimators_[t, 0].predict(Xt), K @ g[:, t], atol=1e-13)


def test_first_residuals_are_labels_minus_mean(fitted):
    model, X, y, _ = fitted
    g = trees.negative_gradients(model, X, y)
    assert g.shape == (len(y), 25)
    assert np.allclose(g[:, 0], y - y.mean())
    assert np.allclose(g[:, -1], y - list(model.staged_predict(X))[-2])


def test_zero_init_identity():
    X, y, Xt, _ = _data(seed=1)
    model = GradientBoostingRegressor(n_estimators=10, init="zero", random_state=0).fit(
        X, y
    )
    assert (
        np.max(np.abs(trees.telescoping_predict(model, X, y, Xt) - model.predict(Xt)))
        < 1e-12
    )


def test_norms_equal_dense_and_are_bounded(fitted):
    model, X, _, Xt = fitted
    for Z in (X, Xt, 1e3 * Xt):
        fast = trees.kernel_norms(model, Z)
        assert fast.shape == (len(Z), 25)
        assert np.allclose(fast, trees.dense_kernel_norms(model, Z, X), atol=1e-14)
        assert fast.min() >= 1 / np.sqrt(len(X)) - 1e-15 and fast.max() <= 1.0


def test_leaf_counts_are_training_rows_per_leaf(fitted):
    model, X, _, Xt = fitted
    leaves_X, leaves_t = (
        trees.leaf_indices(model, X),
        trees.leaf_indices(model, Xt),
    )
    counts = trees.leaf_counts(model, Xt)
    for t in (0, 12):
        brute = np.array([(leaves_X[:, t] == leaf).sum() for leaf in leaves_t[:, t]])
        assert np.array_equal(counts[:, t], brute)


def test_extreme_norms_reach_the_bounds():
    X, y, _, _ = _data(n=64)
    stump = GradientBoostingRegressor(
        n_estimators=1, max_depth=None, random_state=0
    ).fit(X, y)
    assert np.allclose(trees.kernel_norms(stump, X), 1.0)  # one row per leaf: norm 1
    mean_only = GradientBoostingRegressor(
        n_estimators=1, max_depth=1, min_samples_split=10**6
    ).fit(X, y)
    assert np.allclose(
        trees.kernel_norms(mean_only, X), 1 / np.sqrt(64)
    )  # one leaf: 1/sqrt(n)


def test_subsample_norms_use_in_bag_counts_but_identity_refuses():
    X, y, Xt, _ = _data()
    model = GradientBoostingRegressor(
        n_estimators=8, subsample=0.5, random_state=0
    ).fit(X, y)
    norms = trees.kernel_norms(model, Xt)
    assert norms.min() >= 1 / np.sqrt(len(X) // 2) - 1e-15 and norms.max() <= 1
    with pytest.raises(ValueError, match="subsample"):
        trees.telescoping_predict(model, X, y, Xt)


def test_smoother_weights_reproduce_predict(fitted):
    model, X, y, Xt = fitted
    for Z in (X, Xt):
        S = trees.smoother_weights(model, X, Z)
        assert np.max(np.abs(S @ y - model.predict(Z))) < 1e-12
        assert np.allclose(S.sum(1), 1.0)
    p_train = effective_parameters(trees.smoother_weights(model, X, X), len(y))
    assert 1.0 < p_train < len(y)


def test_clear_errors():
    X, y, Xt, _ = _data(n=60, m=5)
    with pytest.raises(NotFittedError, match="not fitted"):
        trees.kernel_norms(GradientBoostingRegressor(), X)
    with pytest.raises(ValueError, match="squared_error"):
        trees.kernel_norms(
            GradientBoostingRegressor(loss="absolute_error", n_estimators=2).fit(X, y),
            X,
        )
    with pytest.raises(TypeError, match="HistGradientBoostingRegressor"):
        trees.kernel_norms(HistGradientBoostingRegressor(max_iter=2).fit(X, y), X)
    with pytest.raises(TypeError, match="GradientBoostingRegressor"):
        trees.kernel_norms(RandomForestRegressor(n_estimators=2).fit(X, y), X)
    model = GradientBoostingRegressor(n_estimators=2).fit(X, y)
    with pytest.raises(ValueError, match=r"X must have shape \(rows, 4\)"):
        trees.kernel_norms(model, Xt[:, :3])
    with pytest.raises(ValueError, match="X_train must have shape"):
        trees.telescoping_predict(model, X[:, :2], y, Xt)
    with pytest.raises(ValueError, match="y_train must hold one target per row"):
        trees.telescoping_predict(model, X, y[:-1], Xt)
    with pytest.raises(ValueError, match="t must index"):
        trees.tree_kernel(model, Xt, X, 5)


def test_identity_and_smoother_refuse_what_they_cannot_represent():
    from sklearn.dummy import DummyRegressor

    X, y, Xt, _ = _data(n=80, m=5)
    custom = GradientBoostingRegressor(
        n_estimators=3, init=DummyRegressor(strategy="median")
    ).fit(X, y)
    with pytest.raises(ValueError, match="default init"):
        trees.telescoping_predict(custom, X, y, Xt)
    assert trees.kernel_norms(custom, Xt).shape == (
        5,
        3,
    )  # the norms do not need h_0
    zero = GradientBoostingRegressor(n_estimators=3, init="zero").fit(X, y)
    with pytest.raises(ValueError, match="training mean"):
        trees.smoother_weights(zero, X, Xt)
