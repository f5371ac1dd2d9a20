"""Optimisers as chains of pieces: each piece against a direct formula, each optimiser against optax
step for step, and the linearity the smoother relies on."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from lensbox.engine import optim
from lensbox.engine import transforms as T

jax.config.update("jax_enable_x64", True)


def _problem():
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"w": jax.random.normal(k1, (5, 3)), "b": jax.random.normal(k2, (3,))}
    X = jax.random.normal(k3, (20, 5))

    def loss(p, t):
        # A loss whose gradient changes from step to step (so momentum and Adam state matter).
        return jnp.mean(jnp.tanh(X @ p["w"] + p["b"] + 0.1 * t) ** 2) + 0.01 * jnp.sum(
            p["w"] ** 3
        )

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
    return lambda count: (
        lr * jnp.minimum(1.0, (jnp.asarray(count, jnp.float64) + 1) / n)
    )


def _steps(lr, at):
    # lensbox: divided by 10 once step s is completed; optax counts from 0.
    return optax.piecewise_constant_schedule(lr, {s: 0.1 for s in at})


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
    # the mode-connectivity recipe: heavy ball 0.9, weight decay, lr divided by 10 twice
    "heavy_ball_decay_step_schedule": (
        optim.sgd(0.1, momentum=0.9, weight_decay=5e-3, decay_at=(8, 16)),
        optax.chain(
            optax.add_decayed_weights(5e-3),
            optax.sgd(_steps(0.1, (8, 16)), momentum=0.9),
        ),
    ),
    "adam": (optim.adam(LR, b1=0.9, b2=0.99), optax.adam(LR, b1=0.9, b2=0.99)),
    "adam_l2": (
        optim.adam(LR, weight_decay=0.1),
        optax.chain(optax.add_decayed_weights(0.1), optax.adam(LR)),
    ),
    "adam_step_schedule": (
        optim.adam(LR, decay_at=(10,)),
        optax.adam(_steps(LR, (10,))),
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


# ----------------------------------------------------------------------------------------------
# Each piece against its formula, written out directly


def _run_piece(piece, us, theta=None):
    """Outputs of ``piece`` for the updates ``us`` at steps 1, 2, ... (its statistics observed)."""
    trace, stats, outs = piece.init(us[0]), piece.init_stats(us[0]), []
    for t, u in enumerate(us, start=1):
        out, (trace,), (stats,) = T.run_chain(
            [piece], u, (trace,), (stats,), theta, jnp.asarray(t), observe=True
        )
        outs.append(out)
    return outs


def _updates(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=4)) for _ in range(count)]


def test_heavy_ball_piece_is_the_undamped_sum():
    us, b = _updates(), 0.7
    for t, out in enumerate(_run_piece(T.heavy_ball(b), us), start=1):
        np.testing.assert_allclose(
            out, sum(b ** (t - k) * us[k - 1] for k in range(1, t + 1))
        )


def test_ema_and_debias_pieces_are_the_bias_corrected_average_of_eq_11():
    us, b = _updates(), 0.8
    m = _run_piece(T.ema(b), us)
    for t, out in enumerate(m, start=1):
        average = (1 - b) * sum(b ** (t - k) * us[k - 1] for k in range(1, t + 1))
        np.testing.assert_allclose(out, average)
        corrected = _run_piece(T.debias(b), [out] * t)[-1]
        np.testing.assert_allclose(corrected, average / (1 - b**t))


def test_second_moment_and_precondition_divide_by_sqrt_vhat_plus_eps():
    us, b2, eps = _updates(), 0.9, 1e-3
    pieces = [T.second_moment(b2, eps), T.precondition()]
    traces, stats = T.init_chain(pieces, us[0])
    for t, u in enumerate(us, start=1):
        out, traces, stats = T.run_chain(
            pieces, u, traces, stats, None, jnp.asarray(t), observe=True
        )
        v = (1 - b2) * sum(b2 ** (t - k) * us[k - 1] ** 2 for k in range(1, t + 1))
        np.testing.assert_allclose(out, u / (np.sqrt(v / (1 - b2**t)) + eps))


def test_decay_and_learning_rate_pieces():
    u, theta = _updates(2)
    np.testing.assert_allclose(
        _run_piece(T.add_decay(0.3), [u], theta)[0], u + 0.3 * theta
    )
    rate = T.Schedule(0.2, warmup_steps=4)
    outs = _run_piece(T.learning_rate(rate), [u] * 5)
    for t, out in enumerate(outs, start=1):
        np.testing.assert_allclose(out, -0.2 * min(1, t / 4) * u)


def test_step_schedule_divides_by_ten_after_each_decay_step():
    rate = T.Schedule(0.1, decay_at=(3, 5))
    got = [float(rate(t)) for t in range(1, 8)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    warm = T.Schedule(0.4, warmup_steps=4, decay_at=(6,))
    np.testing.assert_allclose(
        [float(warm(t)) for t in (1, 2, 4, 6, 7)], [0.1, 0.2, 0.4, 0.4, 0.04]
    )
    cfg = optim.sgd(0.5, warmup_steps=4).config
    assert [float(optim.learning_rate_at(cfg, t)) for t in (1, 2, 4, 9)] == [
        0.125,
        0.25,
        0.5,
        0.5,
    ]


def test_preconditioner_reads_phi_from_a_real_state():
    opt = optim.adam(0.1, b2=0.9, eps=1e-3)
    params = {"w": jnp.zeros(3)}
    _, state = opt.update({"w": jnp.array([1.0, -2.0, 0.0])}, opt.init(params), params)
    np.testing.assert_allclose(
        optim.preconditioner(state, opt.config)["w"], [1 + 1e-3, 2 + 1e-3, 1e-3]
    )
    assert optim.preconditioner(state, optim.sgd(0.1).config) is None


# ----------------------------------------------------------------------------------------------
# The property the smoother needs: the chain is linear in (u, traces, theta) given the statistics


OPTIMISERS = {
    "heavy_ball_decay": lambda: optim.sgd(
        0.1, momentum=0.9, weight_decay=0.05, decay_at=(3,)
    ),
    "ema": lambda: optim.sgd(0.1, momentum=0.6, momentum_style="ema"),
    "adam_l2": lambda: optim.adam(0.01, weight_decay=0.1),
    "adamw_warmup": lambda: optim.adamw(0.01, weight_decay=0.3, warmup_steps=3),
}


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_chain_on_affine_columns_equals_chain_on_their_value(name):
    """Run the pieces on [A | a] (p x (n + 1)) with the real run's statistics; contracting with
    [z; 1] must give what the real optimiser does to the vector A z + a, step after step."""
    opt, rng = OPTIMISERS[name](), np.random.default_rng(1)
    params, loss = _problem()
    theta, unravel = ravel_pytree(params)
    p, n = theta.shape[0], 3
    z = jnp.asarray(rng.normal(size=n))
    state = opt.init(params)
    D = jnp.concatenate([jnp.zeros((p, n)), theta[:, None]], axis=1)  # theta = D [z; 1]
    traces = tuple(piece.init(D) for piece in opt.pieces)
    for t in range(6):
        A = jnp.asarray(
            rng.normal(size=(p, n + 1))
        )  # this step's gradient, as A [z; 1]
        grads = unravel(A @ jnp.append(z, 1.0))
        delta, state = opt.update(grads, state, unravel(D @ jnp.append(z, 1.0)))
        stats = jax.tree_util.tree_map(
            lambda s: ravel_pytree(s)[0],
            state.stats,
            is_leaf=lambda x: isinstance(x, dict),
        )
        step, traces, _ = T.run_chain(
            opt.pieces, A, traces, stats, D, state.count, observe=False
        )
        np.testing.assert_allclose(
            step @ jnp.append(z, 1.0), ravel_pytree(delta)[0], rtol=1e-12, atol=1e-14
        )
        D = D + step


def test_a_new_optimiser_is_written_once_as_a_chain():
    # Adam without the first-moment bias correction, from pieces, against its formula.
    ours = optim.chain(
        T.second_moment(0.99, 1e-8),
        T.ema(0.9),
        T.precondition(),
        T.learning_rate(T.Schedule(LR)),
        name="adam_no_debias",
    )
    params, loss = _problem()
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    expected = []
    for t in range(1, 6):
        g = jax.grad(loss)(params, t - 1)
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.99 * a + 0.01 * b * b, v, g)
        params = jax.tree_util.tree_map(
            lambda th, a, b: th - LR * a / (jnp.sqrt(b / (1 - 0.99**t)) + 1e-8),
            params,
            m,
            v,
        )
        expected.append(params)
    _assert_same(_trajectory(ours, 5), expected)
    assert ours.config.name == "adam_no_debias" and ours.config.learning_rate == LR


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: optim.sgd(-1.0), ValueError, "learning_rate must be positive"),
        (lambda: optim.sgd("0.1"), ValueError, "learning_rate must be positive"),
        (lambda: optim.sgd(0.1, momentum=1.0), ValueError, "momentum must lie in"),
        (
            lambda: optim.sgd(0.1, momentum=0.5, momentum_style="nesterov"),
            ValueError,
            "momentum_style must be one of",
        ),
        (
            lambda: optim.adamw(0.1, weight_decay=-0.1),
            ValueError,
            "weight_decay must be non-negative",
        ),
        (lambda: optim.adam(0.1, b2=1.5), ValueError, "b2 must lie in"),
        (
            lambda: optim.sgd(0.1, warmup_steps=2.5),
            TypeError,
            "warmup_steps must be an integer",
        ),
        (
            lambda: optim.adam(0.1, warmup_steps=-1),
            ValueError,
            "warmup_steps must be at least 0",
        ),
        (
            lambda: optim.sgd(0.1, decay_at=(5, 3)),
            ValueError,
            "decay_at must be increasing",
        ),
        (lambda: optim.sgd(T.Schedule(0.1), warmup_steps=3), ValueError, "not both"),
        (lambda: optim.chain(T.ema(0.9)), ValueError, "exactly one learning_rate"),
        (
            lambda: optim.check_optimizer("sgd"),
            TypeError,
            r"optimizer must be .*lensbox.sgd\(learning_rate",
        ),
    ],
)
def test_bad_hyperparameters(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_state_of_another_optimiser_is_refused():
    params, _ = _problem()
    state = optim.sgd(0.1, momentum=0.9).init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    with pytest.raises(ValueError, match="made by another optimiser"):
        optim.sgd(0.1, momentum=0.8).update(grads, state, params)


# ----------------------------------------------------------------------------------------------
# optax transformations in lensbox.train and lensbox.telescope; the smoother refuses them

OPTAX_RUNS = {
    "sgd": ("sgd", "sgd"),
    "momentum": ("heavy_ball", "heavy_ball"),
    "adam": ("adam", "adam"),
    "adamw": ("adamw", "adamw"),
}


@pytest.mark.parametrize("name", sorted(OPTAX_RUNS))
def test_telescope_takes_an_optax_transformation_and_matches_lensbox(name):
    import lensbox

    ours, theirs = CASES[OPTAX_RUNS[name][0]]
    X = jax.random.normal(jax.random.PRNGKey(1), (40, 5))
    y, X_eval = jnp.sin(X[:, 0]), X[:8] + 0.1
    net = lensbox.mlp((16,))
    params = net.init(jax.random.PRNGKey(0), 5)
    kw = dict(steps=30, batch_size=10, record_at=[0, 10, 30], progress=False)
    a = lensbox.telescope(net, params, theirs, X, y, X_eval, **kw)
    b = lensbox.telescope(net, params, ours, X, y, X_eval, **kw)
    for field in ("network", "telescoping", "linearised"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-12)
    assert np.all(np.isfinite(a.telescoping_error))
    # a run goes on from its state with the optax transformation
    first = lensbox.train(
        net, params, theirs, X, y, steps=30, batch_size=10, progress=False
    )
    more = lensbox.train(net, first.state, theirs, X, y, steps=5, progress=False)
    assert more.state.step == 35


def test_two_wraps_of_one_optax_transformation_are_equal_so_training_compiles_once():
    tx = optax.adam(1e-3)
    assert optim.from_optax(tx) == optim.from_optax(tx)
    assert optim.from_optax(tx) != optim.from_optax(optax.adam(1e-3))


def test_the_smoother_refuses_an_optax_transformation_naming_the_lensbox_optimiser():
    import lensbox

    X = jax.random.normal(jax.random.PRNGKey(1), (12, 3))
    net = lensbox.mlp((4,))
    params = net.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(
        lensbox.ArgumentError, match=r"optax.adamw\(lr, weight_decay=l\) ->"
    ):
        lensbox.smooth(net, params, optax.adamw(1e-3), X, X[:, 0], X[:2], steps=2)
    with pytest.raises(lensbox.ArgumentError, match="lensbox.sgd"):
        lensbox.smoother_tracker(net, X, X[:, 0], None, optax.sgd(0.1))


def test_a_wrong_optimizer_is_named_by_its_type_not_a_cut_repr():
    import lensbox

    X = jnp.ones((4, 2))
    net = lensbox.mlp((3,))
    params = net.init(jax.random.PRNGKey(0), 2)
    with pytest.raises(
        TypeError, match=r"or an optax GradientTransformation .*got a dict\.$"
    ):
        lensbox.train(net, params, {"lr": 0.1}, X, X[:, 0], steps=1)
