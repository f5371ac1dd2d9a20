"""Random crops and horizontal flips of image batches, as jitted array code.

The linear-mode-connectivity protocol (paper section 4.3 and App. C.3, after Frankle et al. 2020)
augments CIFAR-10 with the standard *random crop* (pad each side with zeros, then cut a window of
the original size at a uniformly drawn offset) and *random horizontal flip* (mirror an image with
probability one half). Images are ``(n, height, width, channels)``; every image gets its own draw.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lensbox.errors import ArgumentError


def _check_images(x: jax.Array) -> None:
    if x.ndim != 4:
        raise ArgumentError(
            f"x must be a batch of images (n, height, width, channels); got shape {x.shape}."
        )


def random_crop(key: jax.Array, x: jax.Array, pad: int) -> jax.Array:
    """Zero-pad each image by ``pad`` pixels on every side and cut a window of the original size.

    The window's top-left corner is uniform on ``{0, ..., 2 pad}`` in each direction, independently
    per image; ``pad = 0`` returns ``x``.
    """
    _check_images(x)
    if int(pad) != pad or pad < 0:
        raise ArgumentError(f"pad must be a non-negative integer; got {pad!r}.")
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
    _check_images(x)
    flip = jax.random.bernoulli(key, 0.5, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def augment(
    key: jax.Array, x: jax.Array, *, pad: int = 4, flip: bool = True
) -> jax.Array:
    """The CIFAR-10 augmentation of the paper's protocol: :func:`random_crop`, then :func:`random_flip`.

    ``pad = 4`` and ``flip = True`` are the standard CIFAR-10 settings; ``flip = False`` suits images
    whose meaning changes when mirrored (handwritten digits).
    """
    k_crop, k_flip = jax.random.split(key)
    x = random_crop(k_crop, x, pad)
    return random_flip(k_flip, x) if flip else x
