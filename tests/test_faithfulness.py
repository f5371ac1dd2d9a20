"""Tests of lensbox.faithfulness: both readings of the smoother against the network, and the bound."""

import jax
import numpy as np
import pytest
from fixtures import fixed_rule

import lensbox
from lensbox import faithfulness
from lensbox.engine import seeds


def _task(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    return X, (X[:, 0] > 0).astype(float)


def test_faithful_fit_agrees_with_smoother_fit_and_a_brute_force_telescoping_model():
    X, y = _task(14, 5, 0)
    X_test, y_test = _task(6, 5, 1)
    model = lensbox.mlp((6,), activation="relu")
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 2), 5)
    opt = lensbox.sgd(seeds.kernel_learning_rate(model, params, X, stacked=True))
    fit = faithfulness.faithful_fit(
        model, params, opt, X, y, X_test, y_test, rule=fixed_rule(60)
    )
    ref = seeds.smoother_fit(
        model,
        params,
        opt,
        X,
        y,
        X_test,
        y_test,
        rule=fixed_rule(60),
        record_weights=True,
    )
    np.testing.assert_allclose(fit.p_train, ref.p_train, rtol=1e-9)
    np.testing.assert_allclose(fit.p_test, ref.p_test, rtol=1e-9)
    np.testing.assert_allclose(fit.S_test, ref.S_test, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fit.closed_loop_abs, ref.mean_drift, rtol=1e-9, atol=1e-14
    )
    np.testing.assert_allclose(fit.test_mse, ref.test_mse, rtol=1e-9)
    # The realised reading is Eq. 5's telescoping model of each seed, run on its own.
    X_R = np.concatenate([X, X_test])
    for s in range(2):
        one = jax.tree_util.tree_map(lambda a: a[s], params)
        tel = lensbox.telescope(model, one, opt, X, y, X_R, steps=60, progress=False)
        np.testing.assert_allclose(
            fit.realised[s],
            np.mean((tel.telescoping[-1] - tel.network[-1]) ** 2),
            rtol=1e-6,
            atol=1e-16,
        )
    # A ReLU net at this step leaves its linear path: both gaps are measurably non-zero.
    assert np.all(fit.realised > 0) and np.all(fit.closed_loop > 0)


def test_a_linear_model_is_faithful_in_both_readings():
    X, y = _task(8, 12, 2)
    X_test, y_test = _task(4, 12, 3)
    model = lensbox.mlp(())
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(1), 2), 12)
    opt = lensbox.sgd(seeds.kernel_learning_rate(model, params, X, stacked=True))
    fit = faithfulness.faithful_fit(
        model, params, opt, X, y, X_test, y_test, rule=fixed_rule(200)
    )
    assert np.all(fit.closed_loop < 1e-20) and np.all(fit.realised < 1e-20)
    assert np.all(faithfulness.is_faithful(fit.closed_loop, fit.test_mse))


def test_is_faithful_applies_the_fraction_of_the_test_mse():
    np.testing.assert_array_equal(
        faithfulness.is_faithful([0.001, 0.0011, np.nan], [0.1, 0.1, 0.1]),
        [True, False, False],
    )
    assert faithfulness.is_faithful(0.02, 0.1, fraction=0.25)
    with pytest.raises(ValueError, match="fraction must lie in"):
        faithfulness.is_faithful(0.1, 0.1, fraction=1.5)
    with pytest.raises(ValueError, match="same shape"):
        faithfulness.is_faithful([0.1, 0.2], [0.1])


def test_faithful_fit_rejects_misshapen_test_labels():
    X, y = _task(6, 3, 0)
    model = lensbox.mlp((2,))
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 1), 3)
    with pytest.raises(
        lensbox.ShapeError, match="y_test must have one label per test row"
    ):
        faithfulness.faithful_fit(
            model, params, lensbox.sgd(0.1), X, y, X[:3], y[:2], rule=fixed_rule(10)
        )
