"""Test configuration for tests/ and book/: every test, and every notebook nbval executes, runs at ``smoke`` scale.

The variable is set here, before lensbox is imported, and inherited by the notebook kernels that
nbval starts. ``test_config.py::test_smoke_scale_is_in_force`` fails if that ever stops working.
"""

import os

os.environ["LENSBOX_SCALE"] = "smoke"
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
