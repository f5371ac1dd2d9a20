"""Summaries over seeds: the one standard-error helper the book's tables and bands use."""

from __future__ import annotations

import numpy as np


def mean_and_se(
    values, axis: int | tuple[int, ...] = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error :math:`\\mathrm{sd}/\\sqrt{S}` (sample sd, ``ddof=1``) over ``axis``
    (the seeds), or over several axes pooled (seeds and pairs), ``S`` being the number of values
    pooled; the error is 0 for a single value.

    Examples:
        Three seeds (rows) of two settings (columns):

        >>> import lensbox
        >>> mean, se = lensbox.mean_and_se([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
        >>> mean.tolist(), se.round(3).tolist()  # se = sd / sqrt(3) = 2 / sqrt(3)
        ([3.0, 2.0], [1.155, 0.0])
        >>> mean, se = lensbox.mean_and_se([[1.0, 3.0], [5.0, 7.0]], axis=(0, 1))  # pooled
        >>> float(mean), round(float(se), 3)
        (4.0, 1.291)
        >>> [float(v) for v in lensbox.mean_and_se([4.0])]  # one seed: no error to estimate
        [4.0, 0.0]
    """
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
