"""Bad input to the mode-connectivity case study gets a lensbox error naming the argument
(issue 26): labels outside the classes, BatchNorm momentum out of range, float counts, a batch
larger than the data, a diverging run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.connectivity import networks, spawning
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
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
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
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    with pytest.raises(lensbox.DivergenceError, match="diverged by step") as caught:
        spawning.train_many(advance, states, keys, [30, 30], chunk=10, progress=False)
    assert caught.value.step in (10, 20, 30)
    assert np.all(np.asarray(caught.value.partial.step) <= caught.value.step)
