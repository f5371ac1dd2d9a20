import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lensbox.connectivity.augment import augment, random_crop, random_flip


def _images(rng, n=64):
    return jnp.asarray(rng.normal(size=(n, 5, 6, 2)))


def test_each_crop_is_a_window_of_the_zero_padded_image_and_offsets_cover_the_range(
    rng,
):
    x = _images(rng)
    out = np.asarray(
        jax.jit(random_crop, static_argnums=2)(jax.random.PRNGKey(0), x, 2)
    )
    padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
    seen = set()
    for i in range(x.shape[0]):
        hits = [
            (a, b)
            for a in range(5)
            for b in range(5)
            if np.array_equal(padded[i, a : a + 5, b : b + 6], out[i])
        ]
        assert (
            len(hits) == 1
        )  # exactly one window (random normal images have no repeats)
        seen.add(hits[0])
    assert len(seen) > 15  # 25 possible offsets, 64 images: most of them drawn
    np.testing.assert_array_equal(random_crop(jax.random.PRNGKey(0), x, 0), x)


def test_flip_mirrors_about_half_the_images_left_right(rng):
    x = _images(rng, 400)
    out = np.asarray(jax.jit(random_flip)(jax.random.PRNGKey(1), x))
    same = np.array([np.array_equal(o, i) for o, i in zip(out, np.asarray(x))])
    mirrored = np.array(
        [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, np.asarray(x))]
    )
    assert np.all(same ^ mirrored)
    assert (
        150 < mirrored.sum() < 250
    )  # Binomial(400, 1/2): 200 +- 20 at 2 standard deviations x2.5


def test_augment_is_seeded_and_can_skip_the_flip(rng):
    x = _images(rng)
    a = augment(jax.random.PRNGKey(3), x, pad=1)
    np.testing.assert_array_equal(a, augment(jax.random.PRNGKey(3), x, pad=1))
    assert not np.array_equal(a, augment(jax.random.PRNGKey(4), x, pad=1))
    np.testing.assert_array_equal(
        augment(jax.random.PRNGKey(3), x, pad=0, flip=False), x
    )


def test_bad_input_is_named(rng):
    with pytest.raises(ValueError, match="x must be images"):
        random_flip(jax.random.PRNGKey(0), jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="pad"):
        random_crop(jax.random.PRNGKey(0), _images(rng), -1)
