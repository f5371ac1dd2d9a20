"""Tests of lensbox.complexity.faithfulness: both readings of the smoother against the network, and the bound."""

import jax
import numpy as np
import pytest
from fixtures import fixed_rule, sign_task

import lensbox
from lensbox.complexity import faithfulness
from lensbox.engine import seeds
from lensbox.engine.smoother import effective_parameters


def test_both_readings_agree_with_a_closed_loop_only_fit_and_a_brute_force_telescoping_model():
    X, y = sign_task(14, 5, 0)
    X_test, y_test = sign_task(6, 5, 1)
    model = lensbox.mlp((6,), activation="relu")
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 2), 5)
    opt = lensbox.sgd(seeds.kernel_learning_rate(model, params, X, stacked=True))
    fit = faithfulness.smoother_fit(
        model, params, opt, X, y, X_test, y_test, rule=fixed_rule(60), realised=True
    )
    ref = faithfulness.smoother_fit(
        model, params, opt, X, y, X_test, y_test, rule=fixed_rule(60)
    )
    assert ref.realised is None and fit.realised is not None
    np.testing.assert_allclose(fit.p_train, ref.p_train, rtol=1e-9)
    np.testing.assert_allclose(fit.p_test, ref.p_test, rtol=1e-9)
    np.testing.assert_allclose(fit.S_test, ref.S_test, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fit.closed_loop.mean_abs, ref.closed_loop.mean_abs, rtol=1e-9, atol=1e-14
    )
    np.testing.assert_allclose(fit.test_mse, ref.test_mse, rtol=1e-9)
    # The realised reading is Eq. 5's telescoping model of each seed, run on its own.
    X_R = np.concatenate([X, X_test])
    for s in range(2):
        one = jax.tree_util.tree_map(lambda a: a[s], params)
        tel = lensbox.telescope(model, one, opt, X, y, X_R, steps=60, progress=False)
        np.testing.assert_allclose(
            fit.realised.mse[s],
            np.mean((tel.telescoping[-1] - tel.network[-1]) ** 2),
            rtol=1e-6,
            atol=1e-16,
        )
    # A ReLU net at this step leaves its linear path: both gaps are measurably non-zero.
    assert np.all(fit.realised.mse > 0) and np.all(fit.closed_loop.mse > 0)


def test_a_linear_model_is_faithful_in_both_readings():
    X, y = sign_task(8, 12, 2)
    X_test, y_test = sign_task(4, 12, 3)
    model = lensbox.mlp(())
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(1), 2), 12)
    opt = lensbox.sgd(seeds.kernel_learning_rate(model, params, X, stacked=True))
    fit = faithfulness.smoother_fit(
        model, params, opt, X, y, X_test, y_test, rule=fixed_rule(200), realised=True
    )
    assert np.all(fit.closed_loop.mse < 1e-20) and np.all(fit.realised.mse < 1e-20)
    assert np.all(faithfulness.is_faithful(fit.closed_loop.mse, fit.test_mse))


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


def test_smoother_fit_rejects_misshapen_test_labels():
    X, y = sign_task(6, 3, 0)
    model = lensbox.mlp((2,))
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 1), 3)
    with pytest.raises(
        lensbox.ShapeError, match="y_test has 2 entries but the inputs have 3 rows"
    ):
        faithfulness.smoother_fit(
            model, params, lensbox.sgd(0.1), X, y, X[:3], y[:2], rule=fixed_rule(10)
        )


def test_smoother_fit_of_a_linear_model_is_exact_and_interpolates():
    # More features than examples: gradient descent on a linear model interpolates, its smoother
    # is exact (the tangent kernel never changes) and S_train -> I, so p_train -> n.
    rng = np.random.default_rng(0)
    n, d, m = 8, 20, 5
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    y, y_test = (
        rng.integers(0, 2, size=n).astype(float),
        rng.integers(0, 2, size=m).astype(float),
    )
    model = lensbox.mlp(())
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 2), d)
    lr = seeds.kernel_learning_rate(model, params, X, stacked=True)
    rule = seeds.StoppingRule(
        max_epochs=3000,
        patience=100,
        check_every=50,
        tolerance=1e-12,
        perfect_accuracy=False,
    )
    fit = faithfulness.smoother_fit(
        model,
        params,
        lensbox.sgd(lr),
        X,
        y,
        X_test,
        y_test,
        rule=rule,
    )
    gap = fit.closed_loop
    assert np.all(gap.max_abs < 1e-8) and np.all(gap.mean_abs <= gap.max_abs)
    np.testing.assert_allclose(fit.p_train, n, rtol=1e-3)
    assert np.all(fit.train_mse < 1e-6)
    np.testing.assert_allclose(fit.smoother_test_mse, fit.test_mse, rtol=1e-6)
    assert fit.S_test.shape == (2, m, n)
    expected = [effective_parameters(fit.S_test[s], n) for s in range(2)]
    np.testing.assert_allclose(fit.p_test, expected, rtol=1e-12)


def test_smoother_fit_without_smoother_reports_nan_parameters():
    X, y = sign_task()
    model = lensbox.mlp((3,))
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 2), X.shape[1]
    )
    rule = seeds.StoppingRule(max_epochs=100, patience=50, check_every=50)
    fit = faithfulness.smoother_fit(
        model, params, lensbox.sgd(0.1), X, y, X[:4], y[:4], rule=rule, smoother=False
    )
    assert np.all(np.isnan(fit.p_train)) and fit.closed_loop is None
    assert fit.realised is None and fit.S_test is None
    # The errors are those of each seed's final network on the test rows.
    f_test = np.asarray(fit.runs.final["network"])[:, len(y) :]
    np.testing.assert_allclose(
        fit.test_mse, np.mean((f_test - y[:4]) ** 2, axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        fit.test_error, np.mean((f_test > 0.5) != (y[:4] > 0.5), axis=1)
    )


def test_the_closed_loop_gap_is_small_for_a_smooth_network_and_measured_on_all_rows():
    # A tanh network trained with a small step is tracked closely by its smoother; the reported
    # gap is S y + c_closed_loop minus the network on all rows: its mean square, mean absolute
    # value and largest absolute value.
    X, y = sign_task(n=16, d=5)
    X_test, y_test = sign_task(n=6, d=5, seed=1)
    model = lensbox.mlp((8,), activation="tanh")
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 2), X.shape[1]
    )
    lr = seeds.kernel_learning_rate(model, params, X, stacked=True, fraction=0.25)
    rule = fixed_rule(400, check_every=50)
    fit = faithfulness.smoother_fit(
        model, params, lensbox.sgd(lr), X, y, X_test, y_test, rule=rule
    )
    rec = fit.runs.final
    gap = np.abs(
        np.einsum("srn,n->sr", np.asarray(rec["smoother"]["S"]), y)
        + np.asarray(rec["smoother"]["c_closed_loop"])
        - np.asarray(rec["network"])
    )
    np.testing.assert_allclose(
        fit.closed_loop.max_abs, gap.max(axis=1), rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(
        fit.closed_loop.mean_abs, gap.mean(axis=1), rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(
        fit.closed_loop.mse, np.mean(gap**2, axis=1), rtol=1e-6, atol=1e-14
    )
    assert np.all(fit.closed_loop.max_abs < 1e-3)
    # The network moved: the gap is small next to how far training took the predictions.
    assert np.all(
        np.abs(
            np.asarray(rec["network"]) - np.asarray(rec["smoother"]["c_closed_loop"])
        ).max(axis=1)
        > 0.1
    )


def test_the_probe_route_keeps_each_seeds_prediction_and_estimates_p():
    # Per-seed labels (a flipped label in seed 1) and momentum: the parameter-space route. The
    # probe route must rebuild each seed's closed-loop prediction from its own label column and
    # give p within 4 standard errors of the exact value.
    X, y = sign_task(24, 5, 4)
    X_test, y_test = sign_task(10, 5, 5)
    Y = np.stack([y, np.where(np.arange(24) == 3, 1 - y, y)])
    model = lensbox.mlp((8,), activation="tanh")
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(2), 2), 5)
    rate = seeds.kernel_learning_rate(model, params, X, stacked=True, fraction=0.25)
    opt = lensbox.sgd(0.5 * rate, momentum=0.5)
    run = dict(rule=fixed_rule(40))
    run = dict(run, realised=True)
    exact = faithfulness.smoother_fit(model, params, opt, X, Y, X_test, y_test, **run)
    probe = faithfulness.smoother_fit(
        model, params, opt, X, Y, X_test, y_test, probes=64, probe_seed=3, **run
    )
    assert probe.S_test is None and exact.p_train_se is None
    np.testing.assert_allclose(probe.closed_loop.mse, exact.closed_loop.mse, rtol=1e-6)
    np.testing.assert_allclose(probe.realised.mse, exact.realised.mse, rtol=1e-9)
    assert exact.closed_loop.mse[0] != pytest.approx(exact.closed_loop.mse[1])
    for rows in ("train", "test"):
        p, se = getattr(probe, f"p_{rows}"), getattr(probe, f"p_{rows}_se")
        assert np.all(se > 0) and np.all(se < 0.5 * p)
        assert np.all(np.abs(p - getattr(exact, f"p_{rows}")) < 4 * se)
    with pytest.raises(ValueError, match="realised=True"):
        faithfulness.smoother_fit(
            model, params, opt, X, Y, X_test, y_test, smoother=False, **run
        )


def test_one_smoother_tracker_serves_every_seeds_labels():
    """One smoother tracker, built with seed 0's labels, serves all seeds: S and c hold for each
    seed, so S Y[s] + c is each seed's closed-loop prediction; the fields built from seed 0's
    labels are recorded when the labels are shared (where the realised reading equals the
    realised-step telescoping model) and left out when they differ."""
    X, y = sign_task(10, 3, 0)
    model = lensbox.mlp((4,))
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 2), 3)
    rule = fixed_rule(20, check_every=10)
    args = (model, params, lensbox.sgd(0.2), X)
    shared = faithfulness.smoother_fit(
        *args, y, X[:4], y[:4], rule=rule, realised=True, record_at=[10]
    ).runs
    rec = shared.final["smoother"]
    np.testing.assert_allclose(rec["realised"], shared.final["telescoping"], atol=1e-5)
    Y = np.stack([y, 1 - y])
    fit = faithfulness.smoother_fit(
        *args, Y, X[:4], y[:4], rule=rule, realised=True, record_at=[10]
    )
    for record in (fit.runs.final["smoother"], fit.runs.records["smoother"]):
        assert not {"closed_loop", "realised", "c_realised"} & set(record)
        assert {"S", "c_closed_loop", "p_train", "p_test"} <= set(record)
    # Seed 1 alone, with its own labels in its own tracker, has the same S and c, and the same
    # closed-loop gap.
    alone = faithfulness.smoother_fit(
        model,
        jax.tree_util.tree_map(lambda a: a[1:], params),
        lensbox.sgd(0.2),
        X,
        Y[1],
        X[:4],
        y[:4],
        rule=rule,
    )
    for name in ("S", "c_closed_loop"):
        np.testing.assert_allclose(
            fit.runs.final["smoother"][name][1],
            alone.runs.final["smoother"][name][0],
            atol=1e-6,
        )
    np.testing.assert_allclose(
        fit.closed_loop.mse[1], alone.closed_loop.mse[0], rtol=1e-4, atol=1e-9
    )


def test_the_smoother_tracker_refuses_labels_of_another_length():
    X, y = sign_task(10, 3, 0)
    opt = lensbox.sgd(0.1)
    with pytest.raises(lensbox.ShapeError, match=r"labels must have shape \(L, 10\)"):
        lensbox.smoother_tracker(lensbox.mlp((4,)), X, y, X[:2], opt, labels=y[:5])
