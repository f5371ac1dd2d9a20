"""Bad input to the mode-connectivity case study gets a lensbox error naming the argument
(issue 26): labels outside the classes, BatchNorm momentum out of range, float counts, a batch
larger than the data, a diverging run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.connectivity import augment, barriers, networks, spawning
from lensbox.engine.optim import sgd


def _images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, 2, 2, 1))), rng.integers(0, 3, size=n)


NET = networks.residual_mlp(4, blocks=1, classes=3)


@pytest.mark.parametrize(
    "labels, error, named",
    [
        (
            "beyond the classes",
            lensbox.ArgumentError,
            r"y must hold class labels in \[0, 2\]",
        ),
        ("negative", lensbox.ArgumentError, r"y must hold class labels in \[0, 2\]"),
        ("fractional", lensbox.ArgumentError, "y must hold integer class labels"),
        ("one short", lensbox.ShapeError, "y must hold one integer label per image"),
    ],
)
def test_make_trainer_refuses_labels_the_network_cannot_fit(labels, error, named):
    X, y = _images()
    y = {
        "beyond the classes": np.where(np.arange(12) == 0, 3, y),
        "negative": np.where(np.arange(12) == 0, -1, y),
        "fractional": y + 0.5,
        "one short": y[:-1],
    }[labels]
    with pytest.raises(error, match=named):
        spawning.make_trainer(NET, sgd(0.1), X, y, batch_size=4)


@pytest.mark.parametrize(
    "batch_size, error, named",
    [
        (13, lensbox.ArgumentError, r"batch_size must lie in \[1, 12\]"),
        (0, lensbox.ArgumentError, "batch_size must be at least 1"),
        (4.0, lensbox.ArgumentTypeError, "batch_size must be an integer"),
    ],
)
def test_make_trainer_refuses_a_bad_batch_size(batch_size, error, named):
    X, y = _images()
    with pytest.raises(error, match=named):
        spawning.make_trainer(NET, sgd(0.1), X, y, batch_size=batch_size)


def test_make_trainer_refuses_non_finite_images():
    X, y = _images()
    with pytest.raises(lensbox.NonFiniteError, match="X contains 1 non-finite"):
        spawning.make_trainer(
            NET, sgd(0.1), X.at[0, 0, 0, 0].set(jnp.nan), y, batch_size=4
        )


@pytest.mark.parametrize("momentum", [-0.1, 1.5])
def test_batchnorm_momentum_outside_zero_one_is_refused(momentum):
    X, _ = _images()
    params, state = NET.init(jax.random.PRNGKey(0), (2, 2, 1))
    with pytest.raises(lensbox.ArgumentError, match=r"momentum must lie in \[0, 1\]"):
        NET.apply(params, state, X, True, momentum)


@pytest.mark.parametrize(
    "kwargs, error, named",
    [
        (dict(width=8.5), lensbox.ArgumentTypeError, "widths must be an integer"),
        (dict(blocks=1.0), lensbox.ArgumentTypeError, "blocks must be an integer"),
        (dict(classes=0), lensbox.ArgumentError, "classes must be at least 1"),
    ],
)
def test_network_sizes_must_be_positive_integers(kwargs, error, named):
    with pytest.raises(error, match=named):
        networks.residual_mlp(**({"width": 4} | kwargs))


def test_counts_of_the_spawning_protocol_are_not_truncated():
    X, y = _images()
    advance = spawning.make_trainer(NET, sgd(0.1), X, y, batch_size=4)
    states = jax.vmap(lambda k: spawning.init_state(NET, sgd(0.1), k, (2, 2, 1)))(
        jax.random.split(jax.random.PRNGKey(0), 2)
    )
    keys = [1, 2]  # one data seed per run
    with pytest.raises(
        lensbox.ArgumentTypeError, match="n_children must be an integer"
    ):
        spawning.spawn(states, 2.5)
    with pytest.raises(
        lensbox.ArgumentTypeError, match="checkpoints must be an integer"
    ):
        spawning.train_to_checkpoints(advance, states, keys, [2, 4.5], progress=False)
    with pytest.raises(lensbox.ArgumentTypeError, match="chunk must be an integer"):
        spawning.train_many(advance, states, keys, [2, 2], chunk=1.5, progress=False)


def test_a_diverging_spawning_run_is_a_divergence_error_naming_the_step():
    X, y = _images()
    advance = spawning.make_trainer(NET, sgd(1e38, momentum=0.9), X, y, batch_size=4)
    states = jax.vmap(
        lambda k: spawning.init_state(NET, sgd(1e38, momentum=0.9), k, (2, 2, 1))
    )(jax.random.split(jax.random.PRNGKey(0), 2))
    keys = [1, 2]  # one data seed per run
    with pytest.raises(lensbox.DivergenceError, match="diverged by step") as caught:
        spawning.train_many(advance, states, keys, [30, 30], chunk=10, progress=False)
    assert caught.value.step in (10, 20, 30)
    assert np.all(np.asarray(caught.value.partial.step) <= caught.value.step)


# ------------------------------------------------ barriers, augmentation (measurement side)


P, S = NET.init(jax.random.PRNGKey(0), (2, 2, 1))
XI, YI = _images(6)
A = [0.0, 0.5, 1.0]
KEY = jax.random.PRNGKey(0)

BARRIER_MISTAKES = {
    "alphas 2-D": (
        lambda: barriers.interpolate(P, P, [[0.0, 1.0]]),
        lensbox.ArgumentError,
        "alphas must be a non-empty 1-D",
    ),
    "alphas beyond one": (
        lambda: barriers.interpolate(P, P, [0, 1.5]),
        lensbox.ArgumentError,
        r"alphas must lie in \[0, 1\]",
    ),
    "other structure": (
        lambda: barriers.interpolate(P, {"a": 1.0}, A),
        lensbox.ArgumentError,
        "theta_1 and theta_2 must be pytrees",
    ),
    "other shapes": (
        lambda: barriers.interpolate({"a": jnp.ones(2)}, {"a": jnp.ones(3)}, A),
        lensbox.ShapeError,
        r"theta_1 and theta_2 must hold arrays of the same shapes; 1 differ, the first \(2,\)",
    ),
    "unknown bn": (
        lambda: barriers.interpolation_curve(
            NET, (P, S), (P, S), XI, YI, A, bn="recomputed"
        ),
        lensbox.ArgumentError,
        "bn must be one of",
    ),
    "recompute without X_stats": (
        lambda: barriers.interpolation_curve(
            NET, (P, S), (P, S), XI, YI, A, bn="recompute"
        ),
        lensbox.ArgumentError,
        "needs X_stats",
    ),
    "curve labels short": (
        lambda: barriers.interpolation_curve(NET, (P, S), (P, S), XI, YI[:-1], A),
        lensbox.ShapeError,
        r"y must hold one integer label per image, shape \(6,\)",
    ),
    "X_stats flat": (
        lambda: barriers.interpolation_curve(
            NET, (P, S), (P, S), XI, YI, A, bn="recompute", X_stats=XI.reshape(6, -1)
        ),
        lensbox.ShapeError,
        "X_stats must be images",
    ),
    "labels beyond the classes": (
        lambda: barriers.evaluate(NET, P, S, XI, YI + 3),
        lensbox.ArgumentError,
        r"y must hold class labels in \[0, 2\]",
    ),
    "X flat": (
        lambda: barriers.evaluate(NET, P, S, XI.reshape(6, -1), YI),
        lensbox.ShapeError,
        "X must be images",
    ),
    "X with NaN": (
        lambda: barriers.evaluate(NET, P, S, XI.at[0].set(jnp.nan), YI),
        lensbox.NonFiniteError,
        "X contains 4 non-finite",
    ),
    "no images": (
        lambda: barriers.evaluate(NET, P, S, XI[:0], YI[:0]),
        lensbox.ArgumentError,
        "X has no images",
    ),
    "chunk zero": (
        lambda: barriers.evaluate(NET, P, S, XI, YI, chunk=0),
        lensbox.ArgumentError,
        "chunk must be at least 1",
    ),
    "chunk fractional": (
        lambda: barriers.evaluate(NET, P, S, XI, YI, chunk=2.5),
        lensbox.ArgumentTypeError,
        "chunk must be an integer",
    ),
    "barrier kind": (
        lambda: barriers.barrier(jnp.ones(3), A, kind="mean"),
        lensbox.ArgumentError,
        "kind must be 'max' or 'midpoint'",
    ),
    "barrier values short": (
        lambda: barriers.barrier(jnp.ones(4), A),
        lensbox.ArgumentError,
        "values must end with one entry per alpha",
    ),
    "barrier without the children": (
        lambda: barriers.barrier(jnp.ones(2), [0.2, 0.5]),
        lensbox.ArgumentError,
        "alphas must contain 0 and 1",
    ),
    "midpoint without one half": (
        lambda: barriers.barrier(jnp.ones(2), [0.0, 1.0], kind="midpoint"),
        lensbox.ArgumentError,
        "alpha = 0.5",
    ),
    "barrier of NaN losses": (
        lambda: barriers.barrier(jnp.array([1.0, jnp.nan, 1.0]), A),
        lensbox.NonFiniteError,
        "values contains 1 non-finite",
    ),
    "gradient change flat X": (
        lambda: barriers.gradient_change(NET, (P, S), (P, S), XI.reshape(6, -1)),
        lensbox.ShapeError,
        "X must be images",
    ),
    "gradient change chunk zero": (
        lambda: barriers.gradient_change(NET, (P, S), (P, S), XI, chunk=0),
        lensbox.ArgumentError,
        "chunk must be at least 1",
    ),
    "gradient change no images": (
        lambda: barriers.gradient_change(NET, (P, S), (P, S), XI[:0]),
        lensbox.ArgumentError,
        "X has no images",
    ),
    "Eq. 10 alpha outside": (
        lambda: barriers.eq10_comparison(
            NET, (P, S), (P, S), (P, S), XI, YI, XI, alpha=2.0
        ),
        lensbox.ArgumentError,
        r"alpha must lie in \[0, 1\]",
    ),
    "Eq. 10 labels short": (
        lambda: barriers.eq10_comparison(NET, (P, S), (P, S), (P, S), XI, YI[:2], XI),
        lensbox.ShapeError,
        "y must hold one integer label per image",
    ),
    "crop of one image": (
        lambda: augment.random_crop(KEY, XI[0], 1),
        lensbox.ShapeError,
        "x must be images",
    ),
    "negative pad": (
        lambda: augment.random_crop(KEY, XI, -1),
        lensbox.ArgumentError,
        "pad must be at least 0",
    ),
    "fractional pad": (
        lambda: augment.random_crop(KEY, XI, 1.5),
        lensbox.ArgumentTypeError,
        "pad must be an integer",
    ),
    "pad as text": (
        lambda: augment.random_crop(KEY, XI, "4"),
        lensbox.ArgumentTypeError,
        "pad must be an integer",
    ),
    "crop key an int": (
        lambda: augment.random_crop(0, XI, 1),
        lensbox.ArgumentTypeError,
        "key must be a JAX random key",
    ),
    "flip key an int": (
        lambda: augment.random_flip(3, XI),
        lensbox.ArgumentTypeError,
        "key must be a JAX random key",
    ),
    "flip as text": (
        lambda: augment.augment(KEY, XI, flip="no"),
        lensbox.ArgumentTypeError,
        "flip must be True or False",
    ),
    "augment NaN images": (
        lambda: augment.augment(KEY, XI.at[0].set(jnp.inf)),
        lensbox.NonFiniteError,
        "x contains 4 non-finite",
    ),
}


@pytest.mark.parametrize("case", sorted(BARRIER_MISTAKES))
def test_measurement_mistakes_name_the_argument(case):
    call, error, named = BARRIER_MISTAKES[case]
    with pytest.raises(error, match=named):
        call()


def test_checked_measurements_still_run_inside_jit_and_accept_typed_keys():
    loss, acc = jax.jit(lambda X, y: barriers.evaluate(NET, P, S, X, y))(XI, YI)
    assert np.isfinite(loss) and 0 <= acc <= 1
    out = augment.augment(jax.random.key(1), XI, pad=1, flip=True)
    assert out.shape == XI.shape
    assert jax.jit(lambda k, x: augment.augment(k, x, pad=1))(KEY, XI).shape == XI.shape
