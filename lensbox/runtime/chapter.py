"""What a chapter calls first: :func:`setup` (seeds, precision, style, the chapter's name for its
claims), :func:`describe` (one line saying how it runs) and :func:`precision` (float64 for a block).
"""

from __future__ import annotations

import random

import numpy as np

from lensbox.runtime import claims, plotting
from lensbox.runtime.scale import paper_budget_is_smoke, scale


def setup(
    seed: int = 0, *, chapter: str | None = None, x64: bool = True, style: bool = True
):
    """Prepare a chapter: seeds, float precision and plotting style in one call.

    Args:
        seed: seeds Python's and NumPy's global generators; the returned JAX key derives from it.
        x64: enable float64 in JAX. The book's accuracy claims (an approximation error orders of
            magnitude below another) need it; float32 rounding would otherwise dominate.
        chapter: the chapter's notebook name (``"double_descent"``); names the records of its
            :func:`lensbox.claim` checks.
        style: apply the book's matplotlib style.

    Returns:
        A ``jax.random`` key built from ``seed``, for the chapter's own randomness.
    """
    import jax

    jax.config.update("jax_enable_x64", bool(x64))
    random.seed(seed)
    np.random.seed(seed)
    claims.set_chapter(chapter)
    if style:
        plotting.use_style()
    return jax.random.PRNGKey(seed)


def precision(x64: bool = True):
    """A context manager that switches JAX's float64 mode for the code inside it.

    Uses ``jax.enable_x64`` (JAX 0.8 and later) or ``jax.experimental.enable_x64`` (older JAX, as
    Colab may ship), so chapters run on either.

    Example:
        >>> with precision(True):
        ...     run_in_float64()
    """
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(bool(x64))
    from jax import experimental

    return experimental.enable_x64() if x64 else experimental.disable_x64()


def describe() -> str:
    """One line for a chapter's first output: scale, precision and JAX backend."""
    import jax

    bits = 64 if jax.config.read("jax_enable_x64") else 32
    override = " (smoke-sized budget: test override)" if paper_budget_is_smoke() else ""
    return (
        f"lensbox scale: {scale()}{override} | float{bits} | JAX {jax.__version__} on "
        f"{jax.default_backend()} ({jax.device_count()} device(s))"
    )
