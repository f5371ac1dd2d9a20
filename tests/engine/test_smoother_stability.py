"""Tests of the smoother's stability diagnostics: stability_limit and sharpness_tracker, against
the sharpness computed by hand on a linear model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.engine.smoother import sharpness_tracker, stability_limit
from lensbox.engine.training import predictions_tracker, train


def linear(params, X):
    return X @ params["w"]


def _problem(n=12, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    return jnp.asarray(X), jnp.asarray(y), {"w": jnp.asarray(0.1 * rng.normal(size=d))}


def test_the_limits_of_gradient_descent_heavy_ball_and_averaged_momentum():
    assert stability_limit(lensbox.sgd(0.1)) == 2.0
    assert stability_limit(lensbox.sgd(0.1, momentum=0.9)) == pytest.approx(3.8)
    assert stability_limit(
        lensbox.sgd(0.1, momentum=0.9, momentum_style="ema")
    ) == pytest.approx(38.0)
    assert stability_limit(lensbox.adam(1e-3, b1=0.5)) == pytest.approx(6.0)
    assert stability_limit(lensbox.adamw(1e-4)) == pytest.approx(38.0)


def test_gradient_descent_on_a_linear_model_has_the_data_kernels_sharpness():
    X, y, params = _problem()
    n = X.shape[0]
    lr = 0.05
    run = train(
        linear,
        params,
        lensbox.sgd(lr),
        X,
        y,
        steps=4,
        trackers={"sharp": sharpness_tracker(linear, X, lensbox.sgd(lr))},
        record_at=[1, 4],
    )
    expected = lr * np.linalg.eigvalsh(np.asarray(X @ X.T) / n)[-1]
    assert np.allclose(run.records["sharp"]["sharpness"], expected, rtol=1e-6)
    assert np.allclose(run.records["sharp"]["max_sharpness"], expected, rtol=1e-6)


def test_with_mini_batches_the_sharpness_is_the_steps_batch_kernels():
    """Each step's sharpness is that of the kernel on the step's own batch, divided by its size."""
    X, y, params = _problem()
    lr, batch = 0.05, 4
    seen = lensbox.Tracker(
        lambda p: jnp.zeros(batch, int),
        lambda s, info: info.batch.astype(s.dtype),
        lambda s, p: s,
    )
    run = train(
        linear,
        params,
        lensbox.sgd(lr),
        X,
        y,
        steps=6,
        batch_size=batch,
        seed=3,
        trackers={
            "sharp": sharpness_tracker(linear, X, lensbox.sgd(lr)),
            "batch": seen,
        },
        record_at=[1, 2, 3, 4, 5, 6],
    )
    Xn = np.asarray(X)
    expected = [
        lr * np.linalg.eigvalsh(Xn[b] @ Xn[b].T / batch)[-1]
        for b in np.asarray(run.records["batch"])
    ]
    assert len({tuple(b) for b in np.asarray(run.records["batch"])}) > 1
    assert np.allclose(run.records["sharp"]["sharpness"], expected, rtol=1e-6)
    assert np.allclose(
        run.records["sharp"]["max_sharpness"],
        np.maximum.accumulate(expected),
        rtol=1e-6,
    )


def test_adams_first_step_is_sharpened_by_its_preconditioner_and_bias_correction():
    X, y, params = _problem()
    n = X.shape[0]
    lr, b1 = 1e-3, 0.9
    opt = lensbox.adam(lr, b1=b1)
    run = train(
        linear,
        params,
        opt,
        X,
        y,
        steps=3,
        trackers={"sharp": sharpness_tracker(linear, X, opt)},
        record_at=[1, 2, 3],
    )
    # step 1: v_1 debiased is g_1^2, so phi_1 = |g_1| + eps; the momentum's debias is 1 / (1 - b1)
    g = -np.asarray(X).T @ (np.asarray(y) - np.asarray(X) @ np.asarray(params["w"])) / n
    phi = np.abs(g) + 1e-8
    K = (np.asarray(X) / phi) @ np.asarray(X).T / n
    expected = lr / (1 - b1) * np.linalg.eigvalsh(K)[-1]
    sharp = np.asarray(run.records["sharp"]["sharpness"])
    assert sharp[0] == pytest.approx(expected, rel=1e-6)
    running = np.asarray(run.records["sharp"]["max_sharpness"])
    assert np.allclose(running, np.maximum.accumulate(sharp))


def _run(opt, X, y, params, steps):
    return train(
        linear,
        params,
        opt,
        X,
        y,
        steps=steps,
        trackers={
            "sharp": sharpness_tracker(linear, X, opt),
            "f": predictions_tracker(linear, X),
        },
        record_at=[steps],
    )


def test_gradient_descent_past_the_limit_diverges_and_below_it_converges():
    """On a linear model the recursion is the network's own: a step whose recorded sharpness is
    just below the limit makes the residuals shrink, one just above makes training diverge."""
    X, y, params = _problem(n=8, d=8)
    top = np.linalg.eigvalsh(np.asarray(X @ X.T) / X.shape[0])[-1]
    limit = stability_limit(lensbox.sgd(1.0))
    below, above = lensbox.sgd(0.9 * limit / top), lensbox.sgd(1.1 * limit / top)
    run = _run(below, X, y, params, 60)
    assert float(run.records["sharp"]["sharpness"][0]) == pytest.approx(0.9 * limit)
    start = np.linalg.norm(np.asarray(y - linear(params, X)))
    assert np.linalg.norm(np.asarray(y - run.records["f"][0])) < 0.5 * start
    short = _run(above, X, y, params, 3)
    assert float(short.records["sharp"]["sharpness"][0]) == pytest.approx(1.1 * limit)
    with pytest.raises(lensbox.DivergenceError, match="diverged at step"):
        _run(above, X, y, params, 200)


def test_the_tracker_refuses_an_optax_optimiser_by_name():
    optax = pytest.importorskip("optax")
    X, _, _ = _problem()
    with pytest.raises(
        lensbox.ArgumentError, match="the smoother needs a lensbox optimiser"
    ):
        sharpness_tracker(linear, X, lensbox.engine.optim.from_optax(optax.sgd(0.1)))


@pytest.mark.parametrize(
    "optimizer, beta",
    [(lensbox.sgd, None), (lambda lr: lensbox.sgd(lr, momentum=0.5), 0.5)],
)
@pytest.mark.parametrize("fraction", [0.7, 0.95])
def test_growth_tracker_grows_at_the_recursions_spectral_radius(
    optimizer, beta, fraction
):
    # A linear model at full batch: the smoother's homogeneous recursion on the training rows is
    # q -> (I - eta K / n) q (with heavy-ball momentum, the companion matrix of the two-step
    # iteration), whose spectral radius sets the log growth per step. (Past the stability limit
    # the linear network diverges with its recursion, so only stable rates can be run.)
    from lensbox.engine.smoother import growth_tracker

    X, y, params = _problem(n=6, d=10)  # d > n: K has no null direction
    n = X.shape[0]
    K = np.asarray(X @ X.T) / n
    top = np.linalg.eigvalsh(K)[-1]
    limit = 2.0 if beta is None else 2.0 * (1 + beta)
    eta = fraction * limit / top
    opt = optimizer(eta)
    steps = 200
    r = train(
        linear,
        params,
        opt,
        X,
        y,
        steps=steps,
        trackers={"growth": growth_tracker(linear, X, opt)},
        record_at=[150, 200],
        progress=False,
    )
    if beta is None:
        A = np.eye(n) - eta * K
    else:  # (q_t, q_{t-1}) for v = beta v + g, theta -= eta v
        A = np.block(
            [[(1 + beta) * np.eye(n) - eta * K, -beta * np.eye(n)], [np.eye(n), 0 * K]]
        )
    radius = np.max(np.abs(np.linalg.eigvals(A)))
    slope = (r.records["growth"][1] - r.records["growth"][0]) / 50
    assert slope == pytest.approx(np.log(radius), abs=2e-3)
    assert slope < -1e-3  # shrinking, at the rate above


def test_growth_tracker_frozen_at_the_start_of_a_linear_run_changes_nothing():
    # A linear model's kernel never changes: freezing it must give the same growth.
    from lensbox.engine.smoother import growth_tracker

    X, y, params = _problem()
    opt = lensbox.adamw(0.05, weight_decay=0.1)
    start = train(linear, params, opt, X, y, steps=5, batch_size=4, progress=False)
    runs = {
        name: train(
            linear,
            start.state,
            opt,
            X,
            y,
            steps=30,
            batch_size=4,
            trackers={"growth": growth_tracker(linear, X, opt, frozen_at=frozen)},
            progress=False,
        ).records["growth"]
        for name, frozen in (
            ("run", None),
            ("frozen", (start.state.params, start.state.opt_state)),
            ("kernels", (start.state.params, None)),
            ("statistics", (None, start.state.opt_state)),
        )
    }
    # Adam's statistics do change along the run: frozen ones give another growth
    assert not np.allclose(runs["run"], runs["frozen"], rtol=1e-6)
    assert np.all(np.isfinite(runs["run"]))
    # Freezing one part only: the Jacobians of a linear model never move, so freezing them alone
    # is the run, and freezing the statistics alone is freezing both.
    np.testing.assert_allclose(runs["kernels"], runs["run"], rtol=1e-12)
    np.testing.assert_allclose(runs["statistics"], runs["frozen"], rtol=1e-12)
