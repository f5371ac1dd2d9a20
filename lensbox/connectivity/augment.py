"""Random crops and horizontal flips of image batches, as jitted array code.

The linear-mode-connectivity protocol (paper section 4.3 and App. C.3, after Frankle et al. 2020)
augments CIFAR-10 with the standard *random crop* (pad each side with zeros, then cut a window of
the original size at a uniformly drawn offset) and *random horizontal flip* (mirror an image with
probability one half). Images are ``(n, height, width, channels)``; every image gets its own draw.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lensbox.connectivity.networks import check_images
from lensbox.engine.checks import as_count
from lensbox.errors import ArgumentTypeError


def _check_key(key) -> None:
    """A JAX random key: a typed key, or the ``uint32`` pair ``jax.random.PRNGKey`` returns."""
    if isinstance(key, jax.core.Tracer):
        return
    typed = hasattr(key, "dtype") and jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key
    )
    raw = hasattr(key, "dtype") and key.dtype == jnp.uint32 and key.shape == (2,)
    if not (typed or raw):
        raise ArgumentTypeError(
            f"key must be a JAX random key, e.g. jax.random.PRNGKey(0); got {key!r}."
        )


def random_crop(key: jax.Array, x: jax.Array, pad: int) -> jax.Array:
    """Zero-pad each image by ``pad`` pixels on every side and cut a window of the original size.

    The window's top-left corner is uniform on ``{0, ..., 2 pad}`` in each direction, independently
    per image; ``pad = 0`` returns ``x``.
    """
    _check_key(key)
    x = check_images(x, "x", allow_empty=True)
    pad = as_count(pad, "pad")
    if pad == 0:
        return x
    n, h, w, c = x.shape
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)

    def cut(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    return jax.vmap(cut)(padded, offsets)


def random_flip(key: jax.Array, x: jax.Array) -> jax.Array:
    """Mirror each image left-right with probability one half, independently per image."""
    _check_key(key)
    x = check_images(x, "x", allow_empty=True)
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def augment(
    key: jax.Array, x: jax.Array, *, pad: int = 4, flip: bool = True
) -> jax.Array:
    """The CIFAR-10 augmentation of the paper's protocol: :func:`random_crop`, then :func:`random_flip`.

    ``pad = 4`` and ``flip = True`` are the standard CIFAR-10 settings; ``flip = False`` suits images
    whose meaning changes when mirrored (handwritten digits).
    """
    if not isinstance(flip, bool):
        raise ArgumentTypeError(f"flip must be True or False; got {flip!r}.")
    _check_key(key)
    k_crop, k_flip = jax.random.split(key)
    x = random_crop(k_crop, x, pad)
    return random_flip(k_flip, x) if flip else x
