r"""Gradient-boosted trees as a telescoping sum of kernel smoothers (paper section 4.2, Eq. 9).

Boosting with squared loss :math:`\ell = \tfrac12 (y - f)^2` builds
:math:`\hat f_T(x) = h_0(x) + \gamma \sum_{t=1}^T \hat h_t(x)`, each tree :math:`\hat h_t` fitted to
the negative gradients :math:`-g_{it} = y_i - \hat f_{t-1}(x_i)` and predicting their mean in the
leaf :math:`x` falls into. A leaf mean is a kernel smoother, so (Eq. 9)

.. math:: \hat f_T(x) = h_0(x) - \gamma \sum_{t=1}^T \sum_{i=1}^n K_{\hat h_t}(x, x_i)\, g_{it},
    \qquad K_{\hat h_t}(x, x_i) = \frac{\mathbf 1\{l_t(x) = l_t(x_i)\}}{n_{l_t(x)}},

with :math:`n_{l_t(x)}` the number of training rows in :math:`x`'s leaf. Every row of this kernel is
non-negative and sums to one, so :math:`1/\sqrt n \le \|\mathbf k_{\hat h_t}(x)\|_2 =
1/\sqrt{n_{l_t(x)}} \le 1` for *any* input, seen or unseen: the tree kernel is bounded.

Everything here reads a fitted scikit-learn ``GradientBoostingRegressor`` through its public
``apply()`` leaf indices, and works with leaf counts and segment sums: :math:`O(nT)` time and memory
for :math:`n` rows and :math:`T` trees, never a dense :math:`n \times n` co-membership matrix per
tree (:func:`dense_kernel_norms` builds one, as the baseline it is benchmarked against).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lensbox.complexity.classical import leaf_kernel
from lensbox.engine.checks import check_finite
from lensbox.errors import ArgumentError, ArgumentTypeError, ShapeError

__all__ = [
    "check_gbt",
    "check_training_set",
    "dense_kernel_norms",
    "kernel_norms",
    "leaf_counts",
    "leaf_indices",
    "negative_gradients",
    "smoother_weights",
    "telescoping_predict",
    "tree_kernel",
]


def check_gbt(
    model: Any, X=None, *, exact: bool = False, name: str = "X"
) -> np.ndarray | None:
    """Check that ``model`` is a fitted squared-loss ``GradientBoostingRegressor``; return ``X``
    as a float array with the model's number of features (or ``None`` when ``X`` is ``None``).

    ``exact=True`` also requires what Eq. 9 needs to hold to round-off: ``subsample = 1`` (with
    ``subsample < 1`` the leaf means are over in-bag rows scikit-learn does not expose) and the
    default initial model (the training mean, or ``init="zero"``).

    Raises:
        TypeError: not a ``GradientBoostingRegressor`` (``HistGradientBoostingRegressor`` has no
            public ``apply()`` giving leaf indices).
        sklearn.exceptions.NotFittedError: the model is not fitted.
        ValueError: a loss other than squared error, ``subsample < 1`` or a custom ``init`` when
            ``exact``, or ``X`` with the wrong shape or non-finite entries.
    """
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
    )
    from sklearn.exceptions import NotFittedError

    if isinstance(model, HistGradientBoostingRegressor):
        raise ArgumentTypeError(
            "HistGradientBoostingRegressor has no public apply() giving leaf indices, so "
            "its tree kernel cannot be read; use GradientBoostingRegressor."
        )
    if not isinstance(model, GradientBoostingRegressor):
        raise ArgumentTypeError(
            f"model must be a scikit-learn GradientBoostingRegressor; got {type(model).__name__}."
        )
    if not hasattr(model, "estimators_"):
        raise NotFittedError(
            "model is not fitted: call model.fit(X, y) before reading its tree kernel."
        )
    if model.loss != "squared_error":
        raise ArgumentError(
            f"Eq. 9's leaf means hold for loss='squared_error' only; model.loss={model.loss!r}."
        )
    if exact and model.subsample < 1:
        raise ArgumentError(
            f"the Eq. 9 identity needs subsample=1 (in-bag rows are not exposed); "
            f"model.subsample={model.subsample}."
        )
    if exact and model.init not in (None, "zero"):
        raise ArgumentError(
            f"the Eq. 9 identity needs the default init (training mean) or 'zero'; "
            f"model.init={model.init!r}."
        )
    if X is None:
        return None
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise ArgumentError(
            f"{name} must have shape (rows, {model.n_features_in_}) (the model's "
            f"n_features_in_); got shape {X.shape}."
        )
    if not np.all(np.isfinite(X)):
        raise ArgumentError(f"{name} contains non-finite values.")
    return X


def _trees(model) -> list:
    return [est[0].tree_ for est in model.estimators_]


def leaf_indices(model: Any, X) -> np.ndarray:
    r"""The leaf :math:`l_t(x)` of every row in every tree: an ``(rows, T)`` integer array (node ids
    of scikit-learn's ``apply()``)."""
    X = check_gbt(model, X)
    return model.apply(X).reshape(X.shape[0], -1).astype(np.int64)


def leaf_counts(model: Any, X) -> np.ndarray:
    r""":math:`n_{l_t(x)}`, the number of training rows in each row's leaf of each tree, ``(rows, T)``.

    Read from ``tree_.n_node_samples`` (the rows the tree was grown on: the in-bag rows when
    ``subsample < 1``), so it needs no training data and costs :math:`O(\text{rows} \cdot T)`.
    """
    leaves = leaf_indices(model, X)
    out = np.empty(leaves.shape, dtype=np.int64)
    for t, tree in enumerate(_trees(model)):
        out[:, t] = tree.n_node_samples[leaves[:, t]]
    return out


def kernel_norms(model: Any, X) -> np.ndarray:
    r""":math:`\|\mathbf k_{\hat h_t}(x)\|_2 = 1/\sqrt{n_{l_t(x)}}` for every row and tree, ``(rows, T)``.

    The kernel row has :math:`n_{l_t(x)}` entries equal to :math:`1/n_{l_t(x)}` and zeros elsewhere
    (section 4.2); :math:`O(\text{rows} \cdot T)` from leaf counts alone.
    """
    return 1.0 / np.sqrt(leaf_counts(model, X))


def tree_kernel(model: Any, X, X_train, t: int) -> np.ndarray:
    r"""The dense kernel block :math:`[K_{\hat h_t}(x, x_i)]`, ``(rows, n)``, of tree ``t`` (0-based):
    one over the leaf count where ``x`` and ``x_i`` share a leaf. For teaching and checking only."""
    X, X_train = check_gbt(model, X), check_gbt(model, X_train, name="X_train")
    if not 0 <= t < len(model.estimators_):
        raise ArgumentError(
            f"t must index one of the {len(model.estimators_)} trees; got {t}."
        )
    tree = model.estimators_[t, 0]
    return leaf_kernel(tree.apply(X), tree.apply(X_train))


def dense_kernel_norms(model: Any, X, X_train) -> np.ndarray:
    """Baseline for :func:`kernel_norms`: builds every tree's dense co-membership block with the
    training rows and takes row norms, :math:`O(\\text{rows} \\cdot n \\cdot T)` (benchmarks only)."""
    X, X_train = check_gbt(model, X), check_gbt(model, X_train, name="X_train")
    la, lb = leaf_indices(model, X), leaf_indices(model, X_train)
    out = np.empty(la.shape)
    for t in range(la.shape[1]):
        K = leaf_kernel(la[:, t], lb[:, t])
        out[:, t] = np.sqrt(np.sum(K * K, axis=1))
    return out


def check_training_set(model: Any, X_train, y_train) -> tuple[np.ndarray, np.ndarray]:
    """``(X_train, y_train)`` as float arrays, checked to be the set ``model`` was fitted on, as
    far as the fitted trees record it (with ``subsample = 1``): every tree's leaves hold as many
    of these rows as it was grown on, the default initial model is their mean target, and the
    first tree's leaf values are the mean residuals of these targets. Eq. 9 and the smoother
    weights are sums over the training rows, so another set gives plausible, wrong numbers.

    Raises:
        ShapeError: ``y_train`` is not one target per row of ``X_train``.
        NonFiniteError: non-finite targets.
        ArgumentError: a set that is not the model's training set.
    """
    return _checked_training_set(model, X_train, y_train)[:2]


def _checked_training_set(model: Any, X_train, y_train):
    """:func:`check_training_set`, also returning the training rows' leaves (``None`` when
    ``subsample < 1``), so that callers that need them do not compute them again."""
    X_train = check_gbt(model, X_train, name="X_train")
    y = np.asarray(y_train, dtype=np.float64)
    if y.shape != (X_train.shape[0],):
        raise ShapeError(
            f"y_train must hold one target per row of X_train, shape ({X_train.shape[0]},); "
            f"got {y.shape}."
        )
    check_finite(y, "y_train")
    if model.subsample < 1:
        return X_train, y, None
    leaves = _training_leaves(model, X_train)
    residual = y - _initial(model, X_train)
    means = _leaf_means(leaves[:, 0], residual, leaves[:, 0])
    fitted = model.estimators_[0, 0].tree_.value[leaves[:, 0], 0, 0]
    scale = max(1.0, float(np.max(np.abs(residual))))
    if not np.allclose(means, fitted, rtol=1e-6, atol=1e-9 * scale):
        raise ArgumentError(
            "y_train is not the targets the model was fitted on: the first tree's leaf values "
            "are not the mean residuals of these targets. Pass the targets given to model.fit."
        )
    return X_train, y, leaves


def _training_leaves(model: Any, X_train: np.ndarray) -> np.ndarray:
    """The leaves of ``X_train``, checked to hold as many rows as every tree was grown on
    (``subsample = 1``): otherwise ``X_train`` is not the model's training set."""
    grown_on = int(model.estimators_[0, 0].tree_.n_node_samples[0])
    leaves = leaf_indices(model, X_train)
    counts_match = all(
        np.array_equal(
            np.bincount(leaves[:, t], minlength=t_.node_count)[t_.children_left == -1],
            t_.n_node_samples[t_.children_left == -1],
        )
        for t, t_ in enumerate(_trees(model))
    )
    if X_train.shape[0] != grown_on or not counts_match:
        raise ArgumentError(
            f"X_train is not the set the model was fitted on: its {X_train.shape[0]} rows do "
            f"not fall into the trees' leaves as the {grown_on} training rows did. Pass the "
            "rows given to model.fit."
        )
    return leaves


def negative_gradients(model: Any, X_train, y_train) -> np.ndarray:
    r"""The residuals :math:`-g_{it} = y_i - \hat f_{t-1}(x_i)` each tree was fitted to, ``(n, T)``,
    from ``staged_predict`` (squared loss :math:`\tfrac12(y - f)^2`); ``(X_train, y_train)`` must be
    the model's training set (:func:`check_training_set`)."""
    X_train, y = check_training_set(model, X_train, y_train)
    return _residuals(model, X_train, y)


def _residuals(model: Any, X_train: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`negative_gradients` on an already checked training set."""
    T = len(model.estimators_)
    f = np.empty((X_train.shape[0], T))
    f[:, 0] = _initial(model, X_train)
    for t, pred in enumerate(model.staged_predict(X_train)):
        if t + 1 < T:
            f[:, t + 1] = pred
    return y[:, None] - f


def _initial(model, X) -> np.ndarray:
    if isinstance(model.init_, str):  # "zero"
        return np.zeros(X.shape[0])
    return np.asarray(model.init_.predict(X), dtype=np.float64).reshape(-1)


def _leaf_means(
    leaf_train: np.ndarray, values: np.ndarray, leaf_x: np.ndarray
) -> np.ndarray:
    """Segment sum: the mean of ``values`` over the training rows in each row's leaf, O(n + rows)."""
    size = int(max(leaf_train.max(), leaf_x.max())) + 1
    sums = np.bincount(leaf_train, weights=values, minlength=size)
    counts = np.bincount(leaf_train, minlength=size)
    return sums[leaf_x] / counts[leaf_x]


def telescoping_predict(model: Any, X_train, y_train, X, *, terms: bool = False):
    r"""Eq. 9: :math:`h_0(x) + \gamma \sum_t \sum_i K_{\hat h_t}(x, x_i)(-g_{it})`, from leaf indices
    and segment sums, :math:`O((n + \text{rows}) T)`.

    Equals ``model.predict(X)`` to round-off for a model fitted on ``(X_train, y_train)`` with
    ``subsample=1`` (checked by :func:`check_gbt` with ``exact=True``).

    Returns:
        The ``(rows,)`` predictions, or with ``terms=True`` the pair ``(h0, contributions)`` where
        ``contributions[:, t]`` is :math:`\gamma\,\mathbf k_{\hat h_t}(x)^\top(-\mathbf g_t)`.
    """
    check_gbt(model, exact=True)
    X, X_train = check_gbt(model, X), check_gbt(model, X_train, name="X_train")
    X_train, y, lb = _checked_training_set(model, X_train, y_train)
    residuals = _residuals(model, X_train, y)
    la = leaf_indices(model, X)
    contrib = np.empty(la.shape)
    for t in range(la.shape[1]):
        contrib[:, t] = model.learning_rate * _leaf_means(
            lb[:, t], residuals[:, t], la[:, t]
        )
    h0 = _initial(model, X)
    return (h0, contrib) if terms else h0 + contrib.sum(1)


def smoother_weights(model: Any, X_train, X) -> np.ndarray:
    r"""The boosted trees' smoother rows :math:`\mathbf s_T(x)` (``(rows, n)``), so that
    ``predict(X) = S @ y_train`` with the tree structure held fixed (an adaptive smoother).

    With :math:`h_0 = \bar y` (:math:`\mathbf s_0(x) = \mathbf 1^\top/n`) and the training rows'
    :math:`\mathbf S_{t-1}`, boosting's residuals are :math:`(\mathbf I - \mathbf S_{t-1})\mathbf y`, so
    :math:`\mathbf s_t(x) = \mathbf s_{t-1}(x) + \gamma\,\mathbf k_{\hat h_t}(x)^\top(\mathbf I -
    \mathbf S_{t-1})`; each step is a leaf-mean (segment sum) of the rows of
    :math:`\mathbf I - \mathbf S_{t-1}`, :math:`O((n + \text{rows})\, n)` per tree. Feed the rows to
    :func:`lensbox.engine.smoother.effective_parameters`.
    """
    from scipy import sparse

    check_gbt(model, exact=True)
    if model.init is not None:
        raise ArgumentError(
            "smoother_weights needs the default init (the training mean); got init='zero'."
        )
    X, X_train = check_gbt(model, X), check_gbt(model, X_train, name="X_train")
    n = X_train.shape[0]
    la, lb = leaf_indices(model, X), _training_leaves(model, X_train)
    S_train, S_x = np.full((n, n), 1.0 / n), np.full((X.shape[0], n), 1.0 / n)
    for t in range(la.shape[1]):
        resid = np.eye(n) - S_train
        size = int(max(lb[:, t].max(), la[:, t].max())) + 1
        onehot = sparse.csr_matrix(
            (np.ones(n), (lb[:, t], np.arange(n))), shape=(size, n)
        )
        counts = np.bincount(lb[:, t], minlength=size)[:, None]
        means = np.asarray(onehot @ resid) / np.maximum(counts, 1)
        S_x += model.learning_rate * means[la[:, t]]
        S_train += model.learning_rate * means[lb[:, t]]
    return S_x
