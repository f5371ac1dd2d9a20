r"""Classical smoothers written as smoother matrices, the baselines of the paper's section 4.1.

A *smoother* predicts :math:`\hat f(x) = \hat{\mathbf s}(x)\mathbf y` (Eq. 6): a weighted sum of
the training labels, with weights that depend on the inputs only. Ridge regression, k-nearest
neighbours and regression trees are smoothers; the paper (section 4.1, after Curth et al. 2023)
measures each one's complexity by its effective parameters :math:`p^0_{\hat s}` (Eq. 8,
:func:`lensbox.engine.smoother.effective_parameters`), and the *Smoothers* chapter derives their known
values (:math:`n/k` for k-NN, the number of leaves for a tree, at most the trace of the hat matrix
for ridge). Each function returns the pair ``(S_train, S_test)`` of weight matrices, rows the
inputs it predicts at and columns the ``n`` training rows, so that ``S_test @ y`` is the prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lensbox.engine.checks import as_count, as_targets, check_finite
from lensbox.errors import ArgumentError, ShapeError


def _inputs(X, X_test) -> tuple[np.ndarray, np.ndarray]:
    X, X_test = np.asarray(X, dtype=float), np.asarray(X_test, dtype=float)
    if X.ndim != 2 or X_test.ndim != 2 or X.shape[1] != X_test.shape[1]:
        raise ShapeError(
            f"X and X_test must be 2-D with the same number of features; got shapes "
            f"{X.shape} and {X_test.shape}."
        )
    check_finite(X, "X")
    check_finite(X_test, "X_test")
    if X.shape[0] == 0:
        raise ArgumentError(
            "X has no rows; a smoother needs at least one training example."
        )
    return X, X_test


def with_constant(A) -> np.ndarray:
    """``A`` with a column of ones appended (the intercept as one more feature)."""
    A = np.asarray(A, dtype=float)
    return np.hstack([A, np.ones((len(A), 1))])


def ridge_smoother(X, X_test, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Ridge regression on the features and a constant, as a smoother.

    With :math:`F = [X, \mathbf 1]` the fitted weights are :math:`(F^\top F + \lambda I)^{-1}F^\top\mathbf y`,
    so :math:`\hat{\mathbf s}(x) = [x, 1](F^\top F + \lambda I)^{-1}F^\top`; the intercept is
    penalised like every other weight (scikit-learn's ``Ridge(fit_intercept=False)`` on ``F``).
    """
    X, X_test = _inputs(X, X_test)
    if not (np.isfinite(penalty) and penalty > 0):
        raise ArgumentError(
            f"penalty must be a positive finite number; got {penalty!r}."
        )
    F, F_test = with_constant(X), with_constant(X_test)
    M = np.linalg.solve(F.T @ F + penalty * np.eye(F.shape[1]), F.T)
    return F @ M, F_test @ M


def knn_smoother(X, X_test, k: int) -> tuple[np.ndarray, np.ndarray]:
    r"""k-nearest-neighbour regression as a smoother: weight :math:`1/k` on each of the ``k``
    training rows nearest to :math:`x` (Euclidean; a training row is its own nearest neighbour),
    0 elsewhere. Matches scikit-learn's ``KNeighborsRegressor(k)``."""
    from sklearn.neighbors import NearestNeighbors

    X, X_test = _inputs(X, X_test)
    k = as_count(k, "k", minimum=1)
    if k > len(X):
        raise ArgumentError(
            f"k must be at most the number of training rows ({len(X)}); got {k}."
        )
    nn = NearestNeighbors(n_neighbors=k).fit(X)
    out = []
    for A in (X, X_test):
        S = np.zeros((len(A), len(X)))
        np.put_along_axis(S, nn.kneighbors(A, return_distance=False), 1.0 / k, axis=1)
        out.append(S)
    return out[0], out[1]


def leaf_kernel(leaf_rows: np.ndarray, leaf_train: np.ndarray) -> np.ndarray:
    r"""One tree's kernel from leaf indices: :math:`1/n_\ell` where row ``x`` and training row
    ``x_i`` share leaf :math:`\ell` (:math:`n_\ell` training rows), 0 elsewhere; ``(rows, n)``.
    Every row must fall in a leaf that holds a training row (true for the tree's own fit). The
    tree smoother here and each tree of a boosted ensemble (Eq. 9, :mod:`lensbox.boosting.trees`)
    are built from it."""
    leaf_rows, leaf_train = np.asarray(leaf_rows), np.asarray(leaf_train)
    if leaf_rows.ndim != 1 or leaf_train.ndim != 1:
        raise ShapeError(
            "leaf_rows and leaf_train must be vectors of leaf indices (one per row); got shapes "
            f"{leaf_rows.shape} and {leaf_train.shape}."
        )
    same = (leaf_rows[:, None] == leaf_train[None, :]).astype(np.float64)
    counts = same.sum(1, keepdims=True)
    if np.any(counts == 0):
        raise ArgumentError(
            f"leaf_rows puts {int(np.sum(counts == 0))} row(s) in leaves that no row of leaf_train "
            "falls in; were the leaves read from another tree?"
        )
    return same / counts


def tree_smoother(
    X, X_test, y, leaves: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, Any]:
    r"""A regression tree with at most ``leaves`` leaves, fitted to ``(X, y)``, as a smoother.

    A tree predicts the mean label of the leaf :math:`x` falls in, so
    :math:`\hat s_i(x) = \mathbb 1[\ell(x) = \ell(x_i)] / n_{\ell(x_i)}`. The *split* depends on
    ``y``; given the fitted tree, the prediction is linear in the labels. Returns
    ``(S_train, S_test, tree)`` with the fitted scikit-learn ``DecisionTreeRegressor``.
    """
    from sklearn.tree import DecisionTreeRegressor

    X, X_test = _inputs(X, X_test)
    y = np.asarray(as_targets(y, "y", n_rows=len(X)))
    leaves = as_count(leaves, "leaves", minimum=2)
    tree = DecisionTreeRegressor(max_leaf_nodes=leaves, random_state=seed).fit(X, y)
    leaf_train = tree.apply(X)
    S, S_test = (
        leaf_kernel(leaf_train, leaf_train),
        leaf_kernel(tree.apply(X_test), leaf_train),
    )
    return S, S_test, tree
