"""Input checks at lensbox's public boundary, with messages that say what was expected and what arrived."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from lensbox.errors import ArgumentError, ArgumentTypeError, NonFiniteError, ShapeError


def as_matrix(x, name: str, *, n_features: int | None = None):
    """Check ``x`` is a finite 2-D array (rows x features) and return it as a JAX array."""
    import jax.numpy as jnp

    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ShapeError(
            f"{name} must be a 2-D array (examples x features); got shape {arr.shape}."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ShapeError(
            f"{name} has {arr.shape[1]} features per row but the model expects {n_features}."
        )
    check_finite(arr, name)
    return jnp.asarray(arr)


def as_inputs(x, name: str, *, allow_empty: bool = False):
    """Check ``x`` is an array with a leading row axis, or a pytree of such arrays with the same
    number of rows (images ``(n, h, w, c)``, token ids, dicts of features); every entry finite.

    Returns the same structure with JAX arrays as leaves.
    """
    import jax
    import jax.numpy as jnp

    leaves, treedef = jax.tree_util.tree_flatten(x)
    if leaves and any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return x  # inside jit/vmap: the values are not known; the caller checked them outside
    if not leaves:
        raise ShapeError(
            f"{name} must be an array or a pytree of arrays; got {type(x).__name__} with no arrays."
        )
    arrays = [np.asarray(leaf) for leaf in leaves]
    for arr in arrays:
        if arr.ndim < 1:
            raise ShapeError(
                f"{name} must have a leading axis of examples; got a scalar."
            )
    rows = {arr.shape[0] for arr in arrays}
    if len(rows) != 1:
        raise ShapeError(
            f"every array in {name} must have the same number of rows; got {sorted(rows)}."
        )
    if not allow_empty and rows == {0}:
        raise ArgumentError(
            f"{name} has no rows; training and kernels need at least one example."
        )
    for arr in arrays:
        check_finite(arr, name)
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays])


def n_rows(x) -> int:
    """Number of examples in an input array or pytree (its leaves' common leading axis)."""
    import jax

    return int(np.shape(jax.tree_util.tree_leaves(x)[0])[0])


def as_targets(y, name: str, *, n_rows: int):
    """Check ``y`` is a finite vector (or column) with one entry per row; return it as 1-D."""
    import jax.numpy as jnp

    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be a vector of targets; got shape {arr.shape}.")
    if arr.shape[0] != n_rows:
        raise ShapeError(
            f"{name} has {arr.shape[0]} entries but the inputs have {n_rows} rows."
        )
    check_finite(arr, name)
    return jnp.asarray(arr)


def check_finite(arr, name: str) -> None:
    """Raise :class:`~lensbox.errors.NonFiniteError` naming how many entries are NaN or infinite."""
    arr = np.asarray(arr)
    if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf); clean it first."
        )


def check_finite_tree(tree: Any, name: str) -> None:
    """:func:`check_finite` over every leaf of a pytree (parameters, say)."""
    import jax

    bad = sum(
        int(np.size(leaf) - np.count_nonzero(np.isfinite(np.asarray(leaf))))
        for leaf in jax.tree_util.tree_leaves(tree)
        if np.issubdtype(np.asarray(leaf).dtype, np.inexact)
    )
    if bad:
        raise NonFiniteError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf) before any "
            "step was taken; check how they were initialised or loaded."
        )


def is_integer(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``True`` and ``False`` are not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_count(value, name: str, *, minimum: int = 0) -> int:
    """An integer argument (steps, batch size, warm-up steps): a Python or NumPy integer at least
    ``minimum``. A float is refused, even ``10.0``: lensbox never rounds a count for you."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be an integer; got {value!r} ({type(value).__name__})."
        )
    if value < minimum:
        raise ArgumentError(f"{name} must be at least {minimum}; got {value}.")
    return int(value)


def as_counts(
    values, name: str, *, minimum: int = 0, maximum: int | None = None
) -> np.ndarray:
    """A sequence of integers (recording steps), each checked like :func:`as_count`; sorted, unique."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr)):
            raise ArgumentTypeError(
                f"{name} must hold integers; got {arr[:5].tolist()}"
                f"{' ...' if arr.size > 5 else ''}."
            )
        raise ArgumentTypeError(
            f"{name} must hold integers, not floats; got dtype {arr.dtype}."
        )
    arr = np.unique(arr.astype(int))
    if arr.size and (
        arr.min() < minimum or (maximum is not None and arr.max() > maximum)
    ):
        raise ArgumentError(
            f"{name} must lie in [{minimum}, {maximum}]; got {arr.min()}..{arr.max()}."
        )
    return arr
