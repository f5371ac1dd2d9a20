"""Tests of lensbox.engine.statistics: means and standard errors over seeds."""

import numpy as np
import lensbox


def test_mean_and_se():
    values = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 7.0]])
    mean, se = lensbox.mean_and_se(values)
    np.testing.assert_allclose(mean, values.mean(0))
    np.testing.assert_allclose(se, values.std(0, ddof=1) / np.sqrt(3))
    # Several axes pooled (seeds and pairs): the error counts every pooled value.
    cube = np.arange(24.0).reshape(2, 3, 4) ** 1.5
    mean, se = lensbox.mean_and_se(cube, (1, 2))
    flat = cube.reshape(2, 12)
    np.testing.assert_allclose(mean, flat.mean(1))
    np.testing.assert_allclose(se, flat.std(1, ddof=1) / np.sqrt(12))
