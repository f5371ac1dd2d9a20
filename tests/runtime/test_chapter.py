"""Tests of lensbox.runtime.chapter: setup, precision."""

import lensbox
from lensbox.runtime import chapter


def test_setup_sets_precision_and_seed():
    import jax
    import numpy as np

    key = lensbox.setup(seed=3, x64=True)
    assert jax.config.read("jax_enable_x64")
    first = np.random.rand()
    lensbox.setup(seed=3)
    assert np.random.rand() == first
    # The key is the seed's own: equal to PRNGKey(3), different from another seed's.
    np.testing.assert_array_equal(key, jax.random.PRNGKey(3))
    assert not np.array_equal(lensbox.setup(seed=4), key)
    assert "scale: smoke" in chapter.describe()


def test_precision_context_switches_float64_inside_only():
    import jax
    import jax.numpy as jnp

    lensbox.setup(seed=0, x64=False)
    try:
        assert jnp.zeros(()).dtype == jnp.float32
        with chapter.precision(True):
            assert jnp.zeros(()).dtype == jnp.float64
        assert jnp.zeros(()).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
