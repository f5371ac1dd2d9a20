"""Summaries over seeds: the one standard-error helper the book's tables and bands use."""

from __future__ import annotations

import numpy as np


def mean_and_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error :math:`\\mathrm{sd}/\\sqrt{S}` (sample sd, ``ddof=1``) over ``axis``
    (the seeds); the error is 0 for a single seed."""
    values = np.asarray(values, dtype=float)
    count = values.shape[axis]
    mean = values.mean(axis=axis)
    se = (
        values.std(axis=axis, ddof=1) / np.sqrt(count)
        if count > 1
        else np.zeros_like(mean)
    )
    return mean, se
