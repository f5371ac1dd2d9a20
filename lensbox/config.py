"""Scale, seeds, precision and plotting style: the one place the book's switches are read.

Every experiment in the book comes in three sizes, chosen by the environment variable
``LENSBOX_SCALE``:

``smoke``
    Tests and CI: each chapter executes in seconds. Numbers are not meaningful.
``book``
    The default, used to build the website: minutes per chapter on two CPU cores, offline data.
``paper``
    The paper's own settings and data sets, meant for a GPU.

Chapters read the scale through :func:`scale` or :func:`by_scale` only, so one variable changes
every experiment at once.
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np

SCALES: tuple[str, ...] = ("smoke", "book", "paper")
DEFAULT_SCALE = "book"
ENV_VAR = "LENSBOX_SCALE"

T = TypeVar("T")


def scale() -> str:
    """The scale in force: the value of ``LENSBOX_SCALE``, or ``"book"`` when it is unset.

    Raises:
        ValueError: if the variable holds anything other than ``smoke``, ``book`` or ``paper``.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_SCALE
    if value not in SCALES:
        raise ValueError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a scale lensbox knows; "
            f"expected one of {', '.join(SCALES)} (unset means {DEFAULT_SCALE!r})."
        )
    return value


def by_scale(*, smoke: T, book: T, paper: T) -> T:
    """Pick the value for the scale in force.

    Example:
        >>> steps = by_scale(smoke=50, book=2_000, paper=100_000)
    """
    return {"smoke": smoke, "book": book, "paper": paper}[scale()]


def setup(seed: int = 0, *, x64: bool = True, style: bool = True):
    """Prepare a chapter: seeds, float precision and plotting style in one call.

    Args:
        seed: seeds Python's and NumPy's global generators; the returned JAX key derives from it.
        x64: enable float64 in JAX. The book's accuracy claims (an approximation error orders of
            magnitude below another) need it; float32 rounding would otherwise dominate.
        style: apply the book's matplotlib style.

    Returns:
        A ``jax.random`` key built from ``seed``, for the chapter's own randomness.
    """
    import jax

    jax.config.update("jax_enable_x64", bool(x64))
    random.seed(seed)
    np.random.seed(seed)
    if style:
        from lensbox import plotting

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
    return (
        f"lensbox scale: {scale()} | float{bits} | JAX {jax.__version__} on "
        f"{jax.default_backend()} ({jax.device_count()} device(s))"
    )
