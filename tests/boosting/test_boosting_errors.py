"""Bad input to the boosting case study gets a lensbox error naming the argument (issue 26):
another training set than the model's, shapes, non-finite values, counts."""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor

import lensbox
from lensbox.boosting import irregular, trees


def _data(n=120, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X[:, 0] ** 2 + 0.1 * rng.standard_normal(n)


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    model = GradientBoostingRegressor(n_estimators=5, max_depth=3, random_state=0)
    return model.fit(X, y), X, y


def test_the_models_own_training_set_passes(fitted):
    model, X, y = fitted
    np.testing.assert_allclose(
        trees.telescoping_predict(model, X, y, X[:7]), model.predict(X[:7]), atol=1e-10
    )


@pytest.mark.parametrize(
    "change, named",
    [
        ("other rows", "X_train is not the set the model was fitted on"),
        ("fewer rows", "X_train is not the set the model was fitted on"),
        ("shuffled targets", "y_train is not the targets the model was fitted on"),
        ("shifted targets", "y_train is not the targets the model was fitted on"),
    ],
)
def test_another_training_set_is_refused_not_silently_used(fitted, change, named):
    model, X, y = fitted
    X_other, y_other = _data(seed=1)
    X_bad, y_bad = {
        "other rows": (X_other, y_other),
        "fewer rows": (X[:-3], y[:-3]),
        "shuffled targets": (X, np.random.default_rng(0).permutation(y)),
        "shifted targets": (X, y + 1.0),
    }[change]
    with pytest.raises(lensbox.ArgumentError, match=named):
        trees.telescoping_predict(model, X_bad, y_bad, X[:5])
    if change in ("other rows", "fewer rows"):
        with pytest.raises(lensbox.ArgumentError, match=named):
            trees.smoother_weights(model, X_bad, X[:5])


@pytest.mark.parametrize(
    "y_train, error, named",
    [
        ("2-D", lensbox.ShapeError, "y_train must hold one target per row"),
        ("nan", lensbox.NonFiniteError, "y_train contains 1 non-finite"),
    ],
)
def test_malformed_targets_are_named(fitted, y_train, error, named):
    model, X, y = fitted
    bad = (
        y[:, None] if y_train == "2-D" else np.where(np.arange(len(y)) == 3, np.nan, y)
    )
    with pytest.raises(error, match=named):
        trees.negative_gradients(model, X, bad)


@pytest.mark.parametrize(
    "kwargs, error, named",
    [
        (dict(n_test=-5), lensbox.ArgumentError, "n_test must be at least 1"),
        (dict(n_test=10.0), lensbox.ArgumentTypeError, "n_test must be an integer"),
        (dict(n_val=0), lensbox.ArgumentError, "n_val must be at least 1"),
        (dict(n_train=50.5), lensbox.ArgumentTypeError, "n_train must be an integer"),
        (dict(seed=-1), lensbox.ArgumentError, "seed must be at least 0"),
    ],
)
def test_irregular_split_refuses_bad_counts(kwargs, error, named):
    X, y = _data(n=400)
    args = dict(n_train=100, n_val=20, n_test=40) | kwargs
    with pytest.raises(error, match=named):
        irregular.irregular_split(X, y, **args)


@pytest.mark.parametrize(
    "which, error, named",
    [
        ("X 1-D", lensbox.ShapeError, "X must be a 2-D array"),
        ("X nan", lensbox.NonFiniteError, "X contains 1 non-finite"),
        ("y short", lensbox.ShapeError, "y must hold one target per row of X"),
        ("y inf", lensbox.NonFiniteError, "y contains 1 non-finite"),
    ],
)
def test_irregular_split_refuses_bad_arrays(which, error, named):
    X, y = _data(n=400)
    if which == "X 1-D":
        X = X[:, 0]
    elif which == "X nan":
        X = X.copy()
        X[5, 1] = np.nan
    elif which == "y short":
        y = y[:-1]
    else:
        y = y.copy()
        y[0] = np.inf
    with pytest.raises(error, match=named):
        irregular.irregular_split(X, y, n_train=100, n_val=20, n_test=40)


def _split():
    X, y = _data()
    return irregular.irregular_split(X, y, n_train=50, n_val=10, n_test=20)


@pytest.mark.parametrize(
    "case, error, named",
    [
        (
            "gap shapes",
            lensbox.ShapeError,
            "mse_nn and mse_gbt must have the same shape",
        ),
        ("gap zero at p = 0", lensbox.ArgumentError, r"equal at p = 0"),
        ("unknown GBT setting", lensbox.ArgumentError, r"params holds \['depth'\]"),
        ("fixed GBT setting", lensbox.ArgumentError, r"params holds \['subsample'\]"),
        ("GBT settings a list", lensbox.ArgumentTypeError, "params must be a dict"),
        ("no GBT runs", lensbox.ArgumentError, "runs must be at least 1"),
        ("no network runs", lensbox.ArgumentError, "runs must be at least 1"),
        ("fractional steps", lensbox.ArgumentTypeError, "steps must be an integer"),
        (
            "fractional checkpoints",
            lensbox.ArgumentTypeError,
            "checkpoints must be an integer",
        ),
        ("tracked rows other features", lensbox.ShapeError, "X_rows has 3 features"),
    ],
)
def test_the_protocols_helpers_name_the_argument(case, error, named):
    X, y = _data()
    call = {
        "gap shapes": lambda: irregular.relative_gap(np.ones(3), np.ones(4)),
        "gap zero at p = 0": lambda: irregular.relative_gap(np.ones(3), np.ones(3)),
        "unknown GBT setting": lambda: irregular.fit_gbt(X, y, {"depth": 3}),
        "fixed GBT setting": lambda: irregular.fit_gbt(X, y, {"subsample": 0.5}),
        "GBT settings a list": lambda: irregular.fit_gbt(X, y, [("max_depth", 3)]),
        "no GBT runs": lambda: irregular.search_gbt(_split(), 0),
        "no network runs": lambda: irregular.search_network(_split(), 0, steps=5),
        "fractional steps": lambda: irregular.train_network(X, y, 1e-3, steps=10.5),
        "fractional checkpoints": lambda: irregular.train_network(
            X, y, 1e-3, steps=10, checkpoints=2.5
        ),
        "tracked rows other features": lambda: irregular.kernel_norm_tracker(
            lensbox.mlp((4,)), X[:, :3], X
        ),
    }[case]
    with pytest.raises(error, match=named):
        call()


def test_the_relative_gap_is_still_one_at_p_zero():
    np.testing.assert_allclose(
        irregular.relative_gap([[3.0, 2.0, 1.0]], [[1.0, 1.0, 1.0]]), [[1.0, 0.5, 0.0]]
    )
