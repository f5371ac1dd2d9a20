"""The realised-step telescoping model (Eq. 5 i) against brute-force references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import lensbox
from lensbox.engine.telescoping import (
    approximation_error,
    first_order_error,
    linearised_step,
)
from lensbox.engine.training import BatchOrder


def _digits(n_train=60, n_eval=30):
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, [3, 5])
    X, y = d.data[keep] / 16.0, (d.target[keep] == 5).astype(float)
    return X[:n_train], y[:n_train], X[n_train : n_train + n_eval]


def test_jvp_telescoping_sum_equals_brute_force_jacobian_sum():
    X, y, X_eval = _digits()
    model = lensbox.mlp((12, 12), activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 64)
    opt = lensbox.adamw(0.01, weight_decay=0.1)
    run = lensbox.telescope(
        model, params, opt, X, y, X_eval, steps=15, batch_size=20, record_at=range(16)
    )

    # Brute force: replay the same run, build each full Jacobian and sum J_{t-1} dtheta_t.
    flat0, unravel = ravel_pytree(params)
    # (each piece compiled once: the brute force is in the Python loop, not in the pieces)
    jac = jax.jit(jax.jacrev(lambda flat: model.apply(unravel(flat), X_eval)))
    order = BatchOrder(len(X), 20, seed=0)
    state, p, f_tilde = opt.init(params), params, model.apply(params, X_eval)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    objective = lambda q, idx: jnp.mean(0.5 * (model.apply(q, Xj[idx]) - yj[idx]) ** 2)
    grad, update = jax.jit(jax.grad(objective)), jax.jit(opt.update)
    for t, idx in enumerate(order.batches(1, 15), start=1):
        delta, state = update(grad(p, idx), state, p)
        f_tilde = f_tilde + jac(ravel_pytree(p)[0]) @ ravel_pytree(delta)[0]
        p = lensbox.engine.optim.apply_updates(p, delta)
        np.testing.assert_allclose(run.telescoping[t], f_tilde, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            run.network[t], model.apply(p, X_eval), rtol=1e-10, atol=1e-12
        )


def test_telescoping_is_exact_for_a_model_linear_in_its_parameters():
    X, y, X_eval = _digits()
    features = lambda Z: jnp.concatenate([Z, jnp.sin(Z)], axis=1)
    apply = lambda p, Z: features(Z) @ p["w"] + p["b"]
    params = {"w": jnp.zeros(128), "b": jnp.zeros(())}
    run = lensbox.telescope(
        apply,
        params,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        X_eval,
        steps=200,
        batch_size=10,
        record_at=[0, 50, 200],
    )
    np.testing.assert_allclose(run.telescoping, run.network, rtol=1e-12, atol=1e-12)
    # ... while the network really moved.
    assert np.abs(run.network[-1] - run.network[0]).mean() > 0.1


def test_first_order_error_shrinks_like_the_learning_rate_squared():
    X, y, X_eval = _digits()
    model = lensbox.mlp((32,))
    params = model.init(jax.random.PRNGKey(1), 64)
    grads = jax.grad(lambda p: jnp.mean(0.5 * (model.apply(p, X) - y) ** 2))(params)
    lrs = np.array([0.4, 0.2, 0.1, 0.05, 0.025])
    errs = [
        np.mean(
            np.abs(
                first_order_error(
                    model.apply,
                    params,
                    jax.tree_util.tree_map(lambda g: -lr * g, grads),
                    X_eval,
                )
            )
        )
        for lr in lrs
    ]
    slope = np.polyfit(np.log(lrs), np.log(errs), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.1)


def test_linearised_model_at_init_and_approximation_error():
    X, y, X_eval = _digits()
    model = lensbox.mlp((16,))
    params = model.init(jax.random.PRNGKey(0), 64)
    run = lensbox.telescope(
        model, params, lensbox.sgd(0.05), X, y, X_eval, steps=100, record_at=[0, 1, 100]
    )
    # One step from theta_0: f_lin and f~ are the same first-order model.
    np.testing.assert_allclose(run.linearised[1], run.telescoping[1], rtol=1e-12)
    np.testing.assert_allclose(run.linearised[0], run.network[0])
    assert run.telescoping_error[0] == 0.0
    # Direct f_lin check at the last step.
    step = jax.tree_util.tree_map(jnp.subtract, run.train.params, params)
    direct = model.apply(params, X_eval) + linearised_step(
        model.apply, params, step, X_eval
    )
    np.testing.assert_allclose(run.linearised[-1], direct, rtol=1e-10)
    assert approximation_error([1.0, 2.0], [1.5, 1.0]) == pytest.approx(0.75)
    # After many steps the telescoping model is closer to the network than the lazy baseline.
    assert run.telescoping_error[-1] < run.linearised_error[-1]


def test_eval_inputs_must_match_the_training_features():
    X, y, X_eval = _digits()
    model = lensbox.mlp((4,))
    with pytest.raises(
        lensbox.ShapeError,
        match=r"X_eval rows have shape \(10,\) but the rows of X have shape \(64,\)",
    ):
        lensbox.telescope(
            model,
            model.init(jax.random.PRNGKey(0), 64),
            lensbox.sgd(0.1),
            X,
            y,
            np.ones((3, 10)),
            steps=1,
        )


def test_telescope_without_evaluation_inputs_tracks_the_training_inputs_like_smooth():
    import jax
    import jax.numpy as jnp
    import numpy as np

    import lensbox

    X = jax.random.normal(jax.random.PRNGKey(2), (12, 3))
    y = jnp.tanh(X[:, 0])
    net = lensbox.mlp((8,))
    params = net.init(jax.random.PRNGKey(0), 3)
    kw = dict(steps=5, batch_size=4, record_at=[0, 5], progress=False)
    alone = lensbox.telescope(net, params, lensbox.sgd(0.1), X, y, **kw)
    given = lensbox.telescope(net, params, lensbox.sgd(0.1), X, y, X, **kw)
    assert alone.network.shape == (2, 12)
    np.testing.assert_array_equal(alone.telescoping, given.telescoping)
    smooth = lensbox.smooth(net, params, lensbox.sgd(0.1), X, y, None, **kw)
    np.testing.assert_allclose(smooth.network, alone.network, atol=1e-6)


def test_kink_tracker_counts_the_sign_changes_of_every_pre_activation():
    from lensbox.engine.telescoping import kink_tracker

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 3)), rng.normal(size=24)
    model = lensbox.mlp((8, 5))
    params = model.init(jax.random.PRNGKey(0), 3)
    opt = lensbox.sgd(0.3)
    kw = dict(batch_size=6, seed=1, progress=False)
    run = lensbox.train(
        model, params, opt, X, y, steps=12, trackers={"k": kink_tracker(model, X)}, **kw
    )

    def signs(p):
        h, out = X, []
        for layer in p[:-1]:
            z = h @ np.asarray(layer["w"]) + np.asarray(layer["b"])
            out.append(z > 0)
            h = np.maximum(z, 0)
        return np.concatenate(out, axis=1)

    # Brute force: one step at a time, the same batches, comparing the signs before and after.
    state, pairs, rows = params, 0, 0
    for _ in range(12):
        nxt = lensbox.train(model, state, opt, X, y, steps=1, **kw).state
        before = signs(state.params if hasattr(state, "params") else state)
        changed = before != signs(nxt.params)
        pairs, rows, state = pairs + changed.sum(), rows + changed.any(1).sum(), nxt
    record = jax.device_get(run.records["k"])
    assert pairs > 0  # the step is large enough to cross kinks
    np.testing.assert_array_equal(record["crossings"], [0, pairs])
    np.testing.assert_array_equal(record["rows"], [0, rows])
    with pytest.raises(lensbox.ArgumentError, match="ReLU network"):
        kink_tracker(lensbox.mlp((4,), activation="tanh"), X)
