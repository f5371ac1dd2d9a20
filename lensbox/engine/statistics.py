"""Summaries over seeds: the one standard-error helper the book's tables and bands use."""

from __future__ import annotations

import numpy as np


def mean_and_se(
    values, axis: int | tuple[int, ...] = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error :math:`\\mathrm{sd}/\\sqrt{S}` (sample sd, ``ddof=1``) over ``axis``
    (the seeds), or over several axes pooled (seeds and pairs), ``S`` being the number of values
    pooled; the error is 0 for a single value."""
    values = np.asarray(values, dtype=float)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = int(np.prod([values.shape[a] for a in axes]))
    mean = values.mean(axis=axes)
    se = (
        values.std(axis=axes, ddof=1) / np.sqrt(count)
        if count > 1
        else np.zeros_like(mean)
    )
    return mean, se
