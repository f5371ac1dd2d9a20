"""Input checks at lensbox's public boundary, with messages that say what was expected."""

from __future__ import annotations

import numpy as np


def as_matrix(x, name: str, *, n_features: int | None = None):
    """Check ``x`` is a finite 2-D array (rows x features) and return it as a JAX array."""
    import jax.numpy as jnp

    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (examples x features); got shape {arr.shape}.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features per row but the model expects {n_features}."
        )
    check_finite(arr, name)
    return jnp.asarray(arr)


def as_targets(y, name: str, *, n_rows: int):
    """Check ``y`` is a finite vector (or column) with one entry per row; return it as 1-D."""
    import jax.numpy as jnp

    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a vector of targets; got shape {arr.shape}.")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the inputs have {n_rows} rows.")
    check_finite(arr, name)
    return jnp.asarray(arr)


def check_finite(arr, name: str) -> None:
    """Raise ``ValueError`` naming how many entries of ``arr`` are NaN or infinite."""
    arr = np.asarray(arr)
    if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); clean it first.")


def check_positive(value, name: str) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
