"""Classical smoothers (section 4.1): each reproduces scikit-learn and has its known p."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor

import lensbox
from lensbox.complexity.classical import (
    knn_smoother,
    ridge_smoother,
    tree_smoother,
    with_constant,
)
from lensbox.engine.smoother import effective_parameters


@pytest.fixture
def task(rng):
    X = rng.normal(size=(40, 3))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=40)
    return X, y, rng.normal(size=(15, 3))


def test_ridge_smoother_is_scikit_learns_ridge_and_shrinks_with_the_penalty(task):
    X, y, X_test = task
    S, S_test = ridge_smoother(X, X_test, 2.0)
    ref = Ridge(alpha=2.0, fit_intercept=False).fit(with_constant(X), y)
    np.testing.assert_allclose(
        S_test @ y, ref.predict(with_constant(X_test)), rtol=1e-10
    )
    np.testing.assert_allclose(S @ y, ref.predict(with_constant(X)), rtol=1e-10)
    traces = [np.trace(ridge_smoother(X, X_test, lam)[0]) for lam in (1e-6, 1.0, 1e3)]
    assert (
        traces[0] == pytest.approx(X.shape[1] + 1, rel=1e-6)
        and traces[0] > traces[1] > traces[2]
    )
    assert (
        effective_parameters(S, 40) <= np.trace(S) + 1e-9
    )  # p <= trace for a ridge hat matrix


def test_knn_smoother_is_scikit_learns_and_has_n_over_k_parameters(task):
    X, y, X_test = task
    for k in (1, 4, 10):
        S, S_test = knn_smoother(X, X_test, k)
        np.testing.assert_allclose(
            S_test @ y, KNeighborsRegressor(k).fit(X, y).predict(X_test), rtol=1e-12
        )
        assert effective_parameters(S, 40) == pytest.approx(40 / k)
        np.testing.assert_allclose(S_test.sum(axis=1), 1.0)


def test_tree_smoother_is_the_fitted_tree_and_has_one_parameter_per_leaf(task):
    X, y, X_test = task
    S, S_test, tree = tree_smoother(X, X_test, y, 6)
    np.testing.assert_allclose(S @ y, tree.predict(X), rtol=1e-12)
    np.testing.assert_allclose(S_test @ y, tree.predict(X_test), rtol=1e-12)
    assert effective_parameters(S, 40) == pytest.approx(tree.get_n_leaves())


def test_bad_smoother_arguments(task):
    X, y, X_test = task
    with pytest.raises(
        lensbox.ArgumentError, match="k must be at most the number of training rows"
    ):
        knn_smoother(X, X_test, 41)
    with pytest.raises(lensbox.ArgumentTypeError, match="k must be an integer"):
        knn_smoother(X, X_test, 2.5)
    with pytest.raises(lensbox.ShapeError, match="same number of features"):
        ridge_smoother(X, X_test[:, :2], 1.0)
    with pytest.raises(lensbox.ArgumentError, match="penalty must be a positive"):
        ridge_smoother(X, X_test, 0.0)
