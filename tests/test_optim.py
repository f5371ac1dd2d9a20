"""Each optimiser agrees step for step with optax where optax implements the same algorithm."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lensbox import optim


def _problem():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"w": jax.random.normal(k1, (5, 3)), "b": jax.random.normal(k2, (3,))}
    X = jax.random.normal(k3, (20, 5))

    def loss(p, t):
        # A loss whose gradient changes from step to step (so momentum and Adam state matter).
        return jnp.mean(jnp.tanh(X @ p["w"] + p["b"] + 0.1 * t) ** 2) + 0.01 * jnp.sum(p["w"] ** 3)

    return params, loss


def _trajectory(opt, steps=25):
    """Parameters after each step; ``opt`` is a lensbox Optimizer or an optax transformation,
    which share the ``init`` / ``update(grads, state, params)`` protocol."""
    params, loss = _problem()
    state = opt.init(params)
    out = []
    for t in range(steps):
        step, state = opt.update(jax.grad(loss)(params, t), state, params)
        params = optim.apply_updates(params, step)
        out.append(params)
    return out


def _assert_same(ours, theirs):
    for a, b in zip(ours, theirs):
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


LR = 0.05


def _warmup(lr, n):
    # lensbox's step t (1-based) uses lr * min(1, t / n); optax's count starts at 0.
    return lambda count: lr * jnp.minimum(1.0, (jnp.asarray(count, jnp.float64) + 1) / n)


CASES = {
    "sgd": (optim.sgd(LR), optax.sgd(LR)),
    "heavy_ball": (optim.sgd(LR, momentum=0.9), optax.sgd(LR, momentum=0.9)),
    "ema_momentum": (
        optim.sgd(LR, momentum=0.9, momentum_style="ema"),
        optax.chain(optax.ema(0.9, debias=True), optax.scale(-LR)),
    ),
    "sgd_weight_decay": (
        optim.sgd(LR, weight_decay=0.1),
        optax.chain(optax.add_decayed_weights(0.1), optax.sgd(LR)),
    ),
    "heavy_ball_weight_decay": (
        optim.sgd(LR, momentum=0.95, weight_decay=0.1),
        optax.chain(optax.add_decayed_weights(0.1), optax.sgd(LR, momentum=0.95)),
    ),
    "adam": (optim.adam(LR, b1=0.9, b2=0.99), optax.adam(LR, b1=0.9, b2=0.99)),
    "adam_l2": (
        optim.adam(LR, weight_decay=0.1),
        optax.chain(optax.add_decayed_weights(0.1), optax.adam(LR)),
    ),
    "adamw": (
        optim.adamw(LR, b1=0.9, b2=0.99, weight_decay=0.1),
        optax.adamw(LR, b1=0.9, b2=0.99, weight_decay=0.1),
    ),
    "adamw_warmup": (
        optim.adamw(LR, b1=0.9, b2=0.99, weight_decay=0.1, warmup_steps=10),
        optax.adamw(_warmup(LR, 10), b1=0.9, b2=0.99, weight_decay=0.1),
    ),
    "sgd_warmup": (optim.sgd(LR, warmup_steps=7), optax.sgd(_warmup(LR, 7))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_step_for_step(name):
    ours, theirs = CASES[name]
    _assert_same(_trajectory(ours), _trajectory(theirs))


def test_ema_momentum_is_the_bias_corrected_average_of_eq_11():
    # Direct evaluation of Eq. 11's step: -lr (1-b)/(1-b^t) sum_k b^(t-k) g_k.
    beta, opt = 0.8, optim.sgd(LR, momentum=0.8, momentum_style="ema")
    grads = [{"w": jnp.full((2,), float(k + 1))} for k in range(6)]
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    for t, g in enumerate(grads, start=1):
        delta, state = opt.update(g, state, params)
        expected = -LR * (1 - beta) / (1 - beta**t) * sum(beta ** (t - k) * (k) for k in range(1, t + 1))
        np.testing.assert_allclose(delta["w"], expected)


def test_preconditioner_is_sqrt_vhat_plus_eps():
    opt = optim.adam(0.1, b2=0.9, eps=1e-3)
    params = {"w": jnp.zeros(3)}
    state = opt.init(params)
    g = {"w": jnp.array([1.0, -2.0, 0.0])}
    _, state = opt.update(g, state, params)
    phi = optim.preconditioner(state, opt.config)
    np.testing.assert_allclose(phi["w"], np.abs(np.array([1.0, -2.0, 0.0])) + 1e-3)
    assert optim.preconditioner(state, optim.sgd(0.1).config) is None


def test_learning_rate_warmup_schedule():
    cfg = optim.sgd(0.5, warmup_steps=4).config
    assert [float(optim.learning_rate_at(cfg, t)) for t in (1, 2, 4, 9)] == [0.125, 0.25, 0.5, 0.5]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optim.sgd(-1.0), "learning_rate must be positive"),
        (lambda: optim.sgd(0.1, momentum=1.0), "momentum must lie in"),
        (lambda: optim.sgd(0.1, momentum=0.5, momentum_style="nesterov"), "momentum_style must be one of"),
        (lambda: optim.adamw(0.1, weight_decay=-0.1), "weight_decay must be non-negative"),
        (lambda: optim.adam(0.1, b2=1.5), "b2 must lie in"),
    ],
)
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()
