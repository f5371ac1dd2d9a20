"""The smoother recursions against brute-force references, and their bad-input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import lensbox
from lensbox import optim
from lensbox.smoother import effective_parameters, smooth, smoother_tracker
from lensbox.train import Tracker

jax.config.update("jax_enable_x64", True)


def _data(n=12, m=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, d))
    y = np.sin(X[:n, 0]) + 0.3 * X[:n, 1]
    return X[:n], y, X[n:]


def reference_tracker(apply, X, y, X_eval, optimizer) -> Tracker:
    """Recursively linearised prediction driven by telescoping residuals, by brute force.

    Keeps the prediction f~ on all rows and a virtual parameter vector theta~ (for decay); each step
    forms the explicit Jacobian (jax.jacrev) at the real theta_{t-1}, the virtual gradient from the
    telescoping residuals y - f~_B, runs the optimiser's own formulas on it with the real phi_t, and
    adds J_R @ Delta theta~ to f~.
    """
    cfg = optimizer.config
    X_R = jnp.concatenate([jnp.asarray(X), jnp.asarray(X_eval)])
    y = jnp.asarray(y)

    def jac(params):
        theta, unravel = ravel_pytree(params)
        return jax.jacrev(lambda th: apply(unravel(th), X_R))(theta)  # (R, p)

    def init(params):
        theta = ravel_pytree(params)[0]
        return {"f": apply(params, X_R), "theta": theta, "m": jnp.zeros_like(theta)}

    def update(state, info):
        J = jac(info.params_prev)
        idx = info.batch
        resid = y[idx] - state["f"][idx]
        g = -(J[idx].T @ resid) / idx.shape[0]  # gradient of the mean of 1/2 (y - f~)^2
        lam = cfg.weight_decay
        if lam > 0 and not cfg.decoupled:
            g = g + lam * state["theta"]
        t = info.step.astype(g.dtype)
        b = cfg.momentum
        if cfg.name == "sgd" and b > 0 and cfg.momentum_style == "heavy_ball":
            m = b * state["m"] + g
            direction = m
        elif b > 0:
            m = b * state["m"] + (1 - b) * g
            direction = m / (1 - b**t)
        else:
            m, direction = state["m"], g
        phi = optim.preconditioner(info.opt_state, cfg)
        if phi is not None:
            direction = direction / ravel_pytree(phi)[0]
        delta = -info.learning_rate * direction
        if lam > 0 and cfg.decoupled:
            delta = delta - info.learning_rate * lam * state["theta"]
        return {"f": state["f"] + J @ delta, "theta": state["theta"] + delta, "m": m}

    return Tracker(init, update, lambda state, params: state["f"])


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.05),
    "sgd_warmup": lambda: optim.sgd(0.08, warmup_steps=4),
    "heavy_ball": lambda: optim.sgd(0.03, momentum=0.8),
    "ema": lambda: optim.sgd(0.05, momentum=0.7, momentum_style="ema"),
    "weight_decay": lambda: optim.sgd(0.05, weight_decay=0.3),
    "momentum_decay": lambda: optim.sgd(0.03, momentum=0.6, weight_decay=0.2, warmup_steps=3),
    "adam": lambda: optim.adam(0.01),
    "adam_coupled_decay": lambda: optim.adam(0.01, weight_decay=0.1),
    "adam_no_momentum": lambda: optim.adam(0.01, b1=0.0),
    "adamw": lambda: optim.adamw(0.01, weight_decay=0.5, warmup_steps=3),
}


CASES = [(name, 4 if i % 2 else None) for i, name in enumerate(sorted(OPTIMIZERS))] + [("sgd", 4)]


@pytest.mark.parametrize("name,batch_size", CASES)
def test_smoother_equals_recursively_linearised_prediction(name, batch_size):
    X, y, X_eval = _data()
    model = lensbox.mlp((6,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(1), X.shape[1])
    opt = OPTIMIZERS[name]()
    steps = 12
    result = lensbox.train(
        model, params, opt, X, y, steps=steps, batch_size=batch_size, seed=3,
        trackers={"smoother": smoother_tracker(model, X, y, X_eval, opt, record_weights=True),
                  "reference": reference_tracker(model.apply, X, y, X_eval, opt)},
        record_at=range(steps + 1),
    )
    pred = np.asarray(result.records["smoother"]["prediction"])
    ref = np.asarray(result.records["reference"])
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(pred, ref, rtol=0, atol=1e-10 * scale)
    # the prediction really is S y + c, and the model moved away from its start
    S, c = result.records["smoother"]["S"], result.records["smoother"]["c"]
    np.testing.assert_allclose(np.einsum("trn,n->tr", S, y) + c, pred, atol=1e-12)
    assert np.max(np.abs(ref[-1] - ref[0])) > 1e-2


def test_generic_route_matches_structured_for_adamw():
    X, y, X_eval = _data(n=8, m=3)
    model = lensbox.mlp((5, 4), activation="relu", init="torch")
    params = model.init(jax.random.PRNGKey(2), X.shape[1])
    opt = optim.adamw(0.01, weight_decay=0.2)
    trackers = {"structured": smoother_tracker(model, X, y, X_eval, opt),
                "generic": smoother_tracker(model.apply, X, y, X_eval, opt)}
    r = lensbox.train(model, params, opt, X, y, steps=6, batch_size=4, trackers=trackers)
    np.testing.assert_allclose(r.records["structured"]["prediction"],
                               r.records["generic"]["prediction"], atol=1e-10)


def test_linear_model_gradient_descent_gives_hat_matrix():
    rng = np.random.default_rng(0)
    n, q = 30, 4
    X = rng.normal(size=(n, q))
    y = X @ rng.normal(size=q) + 0.5 * rng.normal(size=n)
    X_eval = rng.normal(size=(7, q))
    model = lensbox.mlp((), init="torch")  # f(x) = x w + b: linear in its q + 1 parameters
    params = model.init(jax.random.PRNGKey(0), q)
    run = smooth(model, params, optim.sgd(0.5), X, y, X_eval, steps=400, record_weights=True)
    F = np.hstack([X, np.ones((n, 1))])
    F_eval = np.hstack([X_eval, np.ones((7, 1))])
    hat = F @ np.linalg.solve(F.T @ F, F.T)
    S = run.S[-1]
    np.testing.assert_allclose(S[:n], hat, atol=1e-8)
    np.testing.assert_allclose(S[n:], F_eval @ np.linalg.solve(F.T @ F, F.T), atol=1e-8)
    assert run.p_train[-1] == pytest.approx(q + 1, abs=1e-6)
    # the initial prediction's influence is gone: c -> 0 for a converged least-squares fit
    np.testing.assert_allclose(run.train.records["smoother"]["c"][-1], 0, atol=1e-8)
    # for a linear model the telescoping model is exact, so smoother = telescoping = network
    np.testing.assert_allclose(run.smoother[-1], run.network[-1], atol=1e-8)


def test_interpolating_smoother_has_n_effective_parameters():
    X, y, X_eval = _data(n=10, m=4, d=10)
    model = lensbox.mlp((64,), activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 10)
    run = smooth(model, params, optim.sgd(0.15), X, y, X_eval, steps=1000, record_weights=True)
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


def test_smooth_reports_gap_to_realised_telescoping_model():
    X, y, X_eval = _data()
    model = lensbox.mlp((6,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(1), X.shape[1])
    run = smooth(model, params, optim.sgd(0.05), X, y, X_eval, steps=20, record_at=range(0, 21, 5))
    gap = run.gap("eval")
    assert gap[0] == 0 and np.all(np.isfinite(gap)) and gap[-1] > 0
    # both first-order models stay close to the network for small steps
    assert np.max(np.abs(run.smoother - run.network)) < 0.05


def test_bad_inputs_give_clear_errors():
    X, y, X_eval = _data()
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="squared loss only"):
        smoother_tracker(model, X, y, X_eval, optim.sgd(0.1), loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="supports lensbox.optim"):
        smoother_tracker(model, X, y, X_eval, object())
    with pytest.raises(ValueError, match="entries but the inputs have"):
        smoother_tracker(model, X, y[:-1], X_eval, optim.sgd(0.1))
    with pytest.raises(ValueError, match="features like X_train"):
        smoother_tracker(model, X, y, X_eval[:, :2], optim.sgd(0.1))
    with pytest.raises(ValueError, match="parameter-space"):
        smoother_tracker(model, X, y, X_eval, optim.sgd(0.1, momentum=0.9),
                         kernel_fn=lambda p, a, b, phi: a @ b.T)
    # a training run on more rows than the smoother was given
    tracker = smoother_tracker(model, X[:6], y[:6], X_eval, optim.sgd(0.1))
    with pytest.raises(Exception, match="beyond the smoother's X_train"):
        lensbox.train(model, params, optim.sgd(0.1), X, y, steps=2, trackers={"s": tracker})
    # a non-finite kernel
    nan_kernel = lambda p, a, b, phi: jnp.full((a.shape[0], b.shape[0]), jnp.nan)
    with pytest.raises(Exception, match="non-finite"):
        smooth(model, params, optim.sgd(0.1), X, y, X_eval, steps=2, kernel_fn=nan_kernel)
