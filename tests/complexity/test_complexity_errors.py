"""Bad input to the effective-parameter case studies gets a lensbox error naming the argument
(issue 26): the multi-seed smoother fit, the faithfulness test, the classical smoothers and the
double-descent protocol's helpers."""

import jax
import numpy as np
import pytest

import lensbox
from lensbox.complexity import classical, double_descent, faithfulness
from lensbox.engine.models import mlp
from lensbox.engine.optim import sgd
from lensbox.engine.seeds import StoppingRule, init_seeds

MODEL = mlp((4,))
PARAMS = init_seeds(MODEL, jax.random.split(jax.random.PRNGKey(0), 2), 3)
_rng = np.random.default_rng(0)
X, Y = _rng.normal(size=(8, 3)), _rng.normal(size=(2, 8))
X_TEST, Y_TEST = _rng.normal(size=(5, 3)), _rng.normal(size=5)
RULE = StoppingRule(max_epochs=2, check_every=1)


def fit(**change):
    args = dict(X_train=X, Y_train=Y, X_test=X_TEST, y_test=Y_TEST, rule=RULE) | change
    return faithfulness.smoother_fit(MODEL, PARAMS, sgd(0.1), **args)


MISTAKES = {
    "labels one short": (
        lambda: fit(Y_train=Y[:, :-1]),
        lensbox.ShapeError,
        r"Y_train must have shape \(seeds, n\) = \(2, 8\)",
    ),
    "labels for four seeds": (
        lambda: fit(Y_train=np.vstack([Y, Y])),
        lensbox.ShapeError,
        "Y_train must have shape",
    ),
    "labels 3-D": (
        lambda: fit(Y_train=Y[..., None]),
        lensbox.ShapeError,
        "Y_train must have shape",
    ),
    "labels with NaN": (
        lambda: fit(Y_train=np.where(Y > 1, np.nan, Y)),
        lensbox.NonFiniteError,
        "Y_train contains",
    ),
    "test labels with NaN": (
        lambda: fit(y_test=np.where(Y_TEST > 0, np.nan, Y_TEST)),
        lensbox.NonFiniteError,
        "y_test contains",
    ),
    "test labels short": (
        lambda: fit(y_test=Y_TEST[:-1]),
        lensbox.ShapeError,
        "y_test has 4 entries",
    ),
    "test inputs other features": (
        lambda: fit(X_test=X_TEST[:, :2]),
        lensbox.ShapeError,
        "X_test has 2 features per row but the model expects 3",
    ),
    "rule an int": (
        lambda: fit(rule=100),
        lensbox.ArgumentTypeError,
        "rule must be a StoppingRule",
    ),
    "realised without smoother": (
        lambda: fit(smoother=False, realised=True),
        lensbox.ArgumentError,
        "realised=True",
    ),
    "probes zero": (lambda: fit(probes=0), lensbox.ArgumentError, "probes must be"),
    "fraction above one": (
        lambda: faithfulness.is_faithful([1.0], [1.0], 1.5),
        lensbox.ArgumentError,
        "fraction must lie in",
    ),
    "gap and test MSE shapes": (
        lambda: faithfulness.is_faithful([1.0, 2.0], [1.0]),
        lensbox.ShapeError,
        "gap_mse and test_mse must have the same shape",
    ),
    "negative test MSE": (
        lambda: faithfulness.is_faithful([1.0], [-1.0]),
        lensbox.ArgumentError,
        "cannot be negative",
    ),
    "gap of other shapes": (
        lambda: faithfulness.Gap.between(np.ones((2, 3)), np.ones((2, 4))),
        lensbox.ShapeError,
        "prediction and network must both have shape",
    ),
    "ridge penalty negative": (
        lambda: classical.ridge_smoother(X, X_TEST, -1.0),
        lensbox.ArgumentError,
        "penalty must be a positive",
    ),
    "ridge other features": (
        lambda: classical.ridge_smoother(X, X_TEST[:, :2], 1.0),
        lensbox.ShapeError,
        "X and X_test must be 2-D with the same number",
    ),
    "ridge NaN inputs": (
        lambda: classical.ridge_smoother(np.where(X > 1, np.nan, X), X_TEST, 1.0),
        lensbox.NonFiniteError,
        "X contains",
    ),
    "k-NN k beyond n": (
        lambda: classical.knn_smoother(X, X_TEST, 9),
        lensbox.ArgumentError,
        "k must be at most",
    ),
    "k-NN k fractional": (
        lambda: classical.knn_smoother(X, X_TEST, 2.5),
        lensbox.ArgumentTypeError,
        "k must be an integer",
    ),
    "leaf indices 2-D": (
        lambda: classical.leaf_kernel(np.zeros((3, 2), int), np.zeros(4, int)),
        lensbox.ShapeError,
        "leaf_rows and leaf_train must be vectors",
    ),
    "leaves of another tree": (
        lambda: classical.leaf_kernel(np.array([0, 5]), np.array([0, 1, 1])),
        lensbox.ArgumentError,
        "leaf_rows puts 1 row",
    ),
    "noise above one": (
        lambda: double_descent.labels(np.array([0, 1, 0, 1]), 1.5, 2),
        lensbox.ArgumentError,
        "noise must be a fraction",
    ),
    "no seeds": (
        lambda: double_descent.labels(np.array([0, 1, 0, 1]), 0.1, 0),
        lensbox.ArgumentError,
        "seeds must be at least 1",
    ),
    "width unit misnamed": (
        lambda: double_descent.run_unit(double_descent.CONFIGS["smoke"], "w20"),
        lensbox.ArgumentError,
        "unit must name a width, 'width20' or 'clean-width20' say",
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_name_the_argument(case):
    call, error, named = MISTAKES[case]
    with pytest.raises(error, match=named):
        call()


def test_a_leaf_kernel_of_the_trees_own_rows_still_sums_to_one():
    K = classical.leaf_kernel(np.array([0, 1, 1]), np.array([0, 1, 1, 0]))
    np.testing.assert_allclose(K.sum(1), 1.0)
