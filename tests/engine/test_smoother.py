"""The smoother recursions against brute-force references, and their bad-input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import lensbox
from lensbox.engine import optim
from lensbox.engine import transforms as T
from lensbox.engine.smoother import (
    check_record,
    effective_parameters,
    smooth,
    smoother_tracker,
)
from lensbox.engine.telescoping import telescoping_tracker
from lensbox.engine.training import Tracker

jax.config.update("jax_enable_x64", True)


def _data(n=12, m=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, d))
    y = np.sin(X[:n, 0]) + 0.3 * X[:n, 1]
    return X[:n], y, X[n:]


def _flat_stats(stats, params):
    treedef = jax.tree_util.tree_structure(params)
    return jax.tree_util.tree_map(
        lambda s: ravel_pytree(s)[0],
        stats,
        is_leaf=lambda x: jax.tree_util.tree_structure(x) == treedef,
    )


def reference_tracker(apply, X, y, X_eval, optimizer) -> Tracker:
    """Recursively linearised prediction driven by telescoping residuals, by brute force.

    Keeps the prediction f~ on all rows and virtual parameters theta~ with the optimiser's own
    piece states, as vectors; each step forms the explicit Jacobian (jax.jacrev) at the real
    theta_{t-1}, the virtual gradient from the telescoping residuals y - f~_B, steps it through the
    optimiser's pieces with the real run's statistics (phi_t), and adds J_R @ Delta theta~ to f~.
    No S, no c, no kernel: nothing of the smoother's bookkeeping is shared.
    """
    pieces = optimizer.pieces
    X_R = jnp.concatenate([jnp.asarray(X), jnp.asarray(X_eval)])
    y = jnp.asarray(y)

    def init(params):
        theta = ravel_pytree(params)[0]
        return {
            "f": apply(params, X_R),
            "theta": theta,
            "traces": tuple(p.init(theta) for p in pieces),
        }

    def update(state, info):
        theta_prev, unravel = ravel_pytree(info.params_prev)
        J = jax.jacrev(lambda th: apply(unravel(th), X_R))(theta_prev)  # (R, p)
        idx = info.batch
        g = (
            -(J[idx].T @ (y[idx] - state["f"][idx])) / idx.shape[0]
        )  # gradient of mean 1/2 (y - f~)^2
        stats = _flat_stats(info.opt_state.stats, info.params_prev)
        delta, traces, _ = T.run_chain(
            pieces, g, state["traces"], stats, state["theta"], info.step, observe=False
        )
        return {
            "f": state["f"] + J @ delta,
            "theta": state["theta"] + delta,
            "traces": traces,
        }

    return Tracker(init, update, lambda state, params: state["f"])


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.05),
    "sgd_warmup": lambda: optim.sgd(0.08, warmup_steps=4),
    "heavy_ball": lambda: optim.sgd(0.03, momentum=0.8),
    "ema": lambda: optim.sgd(0.05, momentum=0.7, momentum_style="ema"),
    "weight_decay": lambda: optim.sgd(0.05, weight_decay=0.3),
    "momentum_decay": lambda: optim.sgd(
        0.03, momentum=0.6, weight_decay=0.2, warmup_steps=3
    ),
    "momentum_decay_steps": lambda: optim.sgd(
        0.05, momentum=0.9, weight_decay=0.05, decay_at=(4, 8)
    ),
    "adam": lambda: optim.adam(0.01),
    "adam_coupled_decay": lambda: optim.adam(0.01, weight_decay=0.1),
    "adam_no_momentum": lambda: optim.adam(0.01, b1=0.0),
    "adamw": lambda: optim.adamw(0.01, weight_decay=0.5, warmup_steps=3),
    "custom_adam_no_debias": lambda: optim.chain(
        T.second_moment(0.99, 1e-8),
        T.ema(0.9),
        T.precondition(),
        T.learning_rate(T.Schedule(0.01)),
    ),
}


# full batch and mini-batches for the basic optimisers; one batch size for their combinations
BASIC = ("sgd", "heavy_ball", "ema", "weight_decay", "adam", "adamw")
# width 6: every layer's Jacobian block is smaller than its n + 2 = 14 columns, so the
# parameter-space route builds the blocks; width 20: the other order (kernels.factor_times)
CASES = [(name, b, 6) for name in BASIC for b in (None, 4)] + [
    (name, 4 if i % 2 else None, 6)
    for i, name in enumerate(sorted(set(OPTIMIZERS) - set(BASIC)))
]
CASES += [("heavy_ball", 4, 20), ("adamw", 4, 20)]


@pytest.mark.parametrize("name, batch_size, width", CASES)
def test_smoother_equals_brute_force_under_either_offset(name, batch_size, width):
    """Closed loop: S y + c equals the brute-force recursively linearised prediction. Network
    offset: S y + c_realised (the realised reading) equals lensbox.telescope's realised-step model."""
    X, y, X_eval = _data()
    model = lensbox.mlp((width,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(1), X.shape[1])
    opt = OPTIMIZERS[name]()
    steps = 12
    result = lensbox.train(
        model,
        params,
        opt,
        X,
        y,
        steps=steps,
        batch_size=batch_size,
        seed=3,
        trackers={
            "smoother": smoother_tracker(model, X, y, X_eval, opt, record_weights=True),
            "reference": reference_tracker(model.apply, X, y, X_eval, opt),
            "telescoping": telescoping_tracker(model, np.vstack([X, X_eval])),
        },
        record_at=range(steps + 1),
    )
    rec = result.records["smoother"]
    ref, tele = (
        np.asarray(result.records["reference"]),
        np.asarray(result.records["telescoping"]),
    )
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(rec["closed_loop"], ref, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(rec["realised"], tele, rtol=0, atol=1e-10 * scale)
    # the predictions really are S y + c, and the model moved away from its start
    S = rec["S"]
    np.testing.assert_allclose(
        np.einsum("trn,n->tr", S, y) + rec["c_closed_loop"],
        rec["closed_loop"],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        np.einsum("trn,n->tr", S, y) + rec["c_realised"],
        rec["realised"],
        atol=1e-12,
    )
    assert np.max(np.abs(ref[-1] - ref[0])) > 1e-2
    assert not np.any(rec["failure"])


def test_S_and_c_never_read_the_labels_only_the_network_offset_does():
    # Two trackers on one run, given different labels: S (hence p) and the closed-loop offset c
    # are the same to round-off (their recursions never read the labels); the network offset is not.
    X, y, X_eval = _data()
    model = lensbox.mlp((6,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(1), X.shape[1])
    opt = optim.adamw(0.02, weight_decay=0.1, warmup_steps=2)
    y_other = y + np.random.default_rng(5).normal(size=y.shape)
    trackers = {
        k: smoother_tracker(model, X, labels, X_eval, opt, record_weights=True)
        for k, labels in (("true", y), ("other", y_other))
    }
    r = lensbox.train(
        model, params, opt, X, y, steps=8, batch_size=4, trackers=trackers
    )
    a, b = r.records["true"], r.records["other"]
    np.testing.assert_allclose(a["S"], b["S"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(a["p_test"], b["p_test"], rtol=1e-13)
    assert np.max(np.abs(a["c_realised"][-1] - b["c_realised"][-1])) > 1e-3
    np.testing.assert_allclose(
        a["c_closed_loop"], b["c_closed_loop"], rtol=0, atol=1e-14
    )


def test_generic_route_matches_structured_for_adamw():
    X, y, X_eval = _data(n=8, m=3)
    model = lensbox.mlp((5, 4), activation="relu", init="torch")
    params = model.init(jax.random.PRNGKey(2), X.shape[1])
    opt = optim.adamw(0.01, weight_decay=0.2)
    trackers = {
        "structured": smoother_tracker(model, X, y, X_eval, opt),
        "generic": smoother_tracker(model.apply, X, y, X_eval, opt),
    }
    r = lensbox.train(
        model, params, opt, X, y, steps=6, batch_size=4, trackers=trackers
    )
    np.testing.assert_allclose(
        r.records["structured"]["closed_loop"],
        r.records["generic"]["closed_loop"],
        atol=1e-10,
    )


def test_linear_model_gradient_descent_gives_hat_matrix():
    rng = np.random.default_rng(0)
    n, q = 30, 4
    X = rng.normal(size=(n, q))
    y = X @ rng.normal(size=q) + 0.5 * rng.normal(size=n)
    X_eval = rng.normal(size=(7, q))
    model = lensbox.mlp(
        (), init="torch"
    )  # f(x) = x w + b: linear in its q + 1 parameters
    params = model.init(jax.random.PRNGKey(0), q)
    run = smooth(
        model, params, optim.sgd(0.5), X, y, X_eval, steps=400, record_weights=True
    )
    F = np.hstack([X, np.ones((n, 1))])
    F_eval = np.hstack([X_eval, np.ones((7, 1))])
    hat = F @ np.linalg.solve(F.T @ F, F.T)
    S = run.S[-1]
    np.testing.assert_allclose(S[:n], hat, atol=1e-8)
    np.testing.assert_allclose(S[n:], F_eval @ np.linalg.solve(F.T @ F, F.T), atol=1e-8)
    assert run.p_train[-1] == pytest.approx(q + 1, abs=1e-6)
    # the initial prediction's influence is gone: c -> 0 for a converged least-squares fit
    np.testing.assert_allclose(
        run.train.records["smoother"]["c_closed_loop"][-1], 0, atol=1e-8
    )
    # for a linear model the telescoping model is exact, so smoother = telescoping = network
    np.testing.assert_allclose(run.closed_loop[-1], run.network[-1], atol=1e-8)


def test_interpolating_smoother_has_n_effective_parameters():
    X, y, X_eval = _data(n=10, m=4, d=10)
    model = lensbox.mlp((64,), activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 10)
    run = smooth(
        model, params, optim.sgd(0.15), X, y, X_eval, steps=1000, record_weights=True
    )
    assert np.abs(run.network[-1, :10] - y).max() < 1e-4  # the network interpolates
    np.testing.assert_allclose(run.S[-1][:10], np.eye(10), atol=1e-3)
    assert run.p_train[-1] == pytest.approx(10, rel=1e-3)
    assert run.p_train[0] == 0.0


def test_effective_parameters_definition():
    S = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    assert effective_parameters(S, 3) == pytest.approx(3 / 2 * (1 + 0.5))
    assert effective_parameters(np.eye(4), 4) == 4
    with pytest.raises(ValueError, match="columns"):
        effective_parameters(S, 4)


def test_smooth_reports_both_offsets_and_the_gap_between_them():
    X, y, X_eval = _data()
    model = lensbox.mlp((6,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(1), X.shape[1])
    run = smooth(
        model,
        params,
        optim.sgd(0.05),
        X,
        y,
        X_eval,
        steps=20,
        record_at=range(0, 21, 5),
    )
    gap = run.gap("eval")
    assert gap[0] == 0 and gap[-1] > 0  # the closed loop leaves the realised-step model
    np.testing.assert_allclose(
        gap,
        np.mean(np.abs(run.closed_loop - run.realised)[:, 12:], axis=1),
        atol=1e-12,
    )
    # both first-order models stay close to the network for small steps
    assert np.max(np.abs(run.closed_loop - run.network)) < 0.05
    assert run.gap("all", to="network")[-1] > 0


def test_smooth_without_evaluation_rows():
    X, y, _ = _data()
    model = lensbox.mlp((4,), activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 3)
    run = smooth(
        model, params, optim.sgd(0.1), X, y, None, steps=3, record_weights=True
    )
    assert run.closed_loop.shape == (2, 12) and run.S.shape == (2, 12, 12)
    assert np.isnan(run.p_test[-1]) and run.p_train[-1] > 0


def test_a_tracker_run_with_another_optimiser_is_an_error():
    X, y, X_eval = _data()
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    for built, used in (
        (optim.sgd(0.1), optim.sgd(0.2)),
        (optim.adam(0.01, weight_decay=0.1), optim.adamw(0.01, weight_decay=0.1)),
        (optim.sgd(0.1, momentum=0.9), optim.sgd(0.1, momentum=0.9, decay_at=(2,))),
    ):
        tracker = smoother_tracker(model, X, y, X_eval, built)
        with pytest.raises(ValueError, match="tracker was built for the optimiser"):
            lensbox.train(model, params, used, X, y, steps=2, trackers={"s": tracker})


def test_bad_inputs_give_clear_errors():
    X, y, X_eval = _data()
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="squared loss only"):
        smoother_tracker(
            model, X, y, X_eval, optim.sgd(0.1), loss="binary_cross_entropy"
        )
    with pytest.raises(TypeError, match="optimizer must be a lensbox optimiser"):
        smoother_tracker(model, X, y, X_eval, object())
    with pytest.raises(
        TypeError, match=r"got the string 'sgd' \(build it with lensbox.sgd"
    ):
        smooth(model, params, "sgd", X, y, X_eval, steps=2)
    with pytest.raises(ValueError, match="entries but the inputs have"):
        smoother_tracker(model, X, y[:-1], X_eval, optim.sgd(0.1))
    with pytest.raises(ValueError, match="features like X_train"):
        smoother_tracker(model, X, y, X_eval[:, :2], optim.sgd(0.1))
    with pytest.raises(ValueError, match="parameter-space"):
        smoother_tracker(
            model,
            X,
            y,
            X_eval,
            optim.sgd(0.1, momentum=0.9),
            kernel_fn=lambda p, a, b, phi: a @ b.T,
        )
    # a training run on more rows than the smoother was given: flagged, raised on the host
    tracker = smoother_tracker(model, X[:6], y[:6], X_eval, optim.sgd(0.1))
    r = lensbox.train(
        model, params, optim.sgd(0.1), X, y, steps=2, trackers={"s": tracker}
    )
    with pytest.raises(ValueError, match="step 1 used a training row index beyond"):
        check_record(r.records["s"])
    # a non-finite kernel: the documented FloatingPointError, naming the step
    nan_kernel = lambda p, a, b, phi: jnp.full((a.shape[0], b.shape[0]), jnp.nan)
    with pytest.raises(FloatingPointError, match="non-finite at step 1"):
        smooth(
            model, params, optim.sgd(0.1), X, y, X_eval, steps=2, kernel_fn=nan_kernel
        )
