"""Test configuration for tests/ and book/: every test, and every notebook nbval executes, runs at ``smoke`` scale.

The variable is set here, before lensbox is imported, and inherited by the notebook kernels that
nbval starts. ``tests/runtime/test_scale.py::test_smoke_scale_is_in_force`` fails if that ever stops working.
"""

import os

os.environ["LENSBOX_SCALE"] = "smoke"
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never touch the network: any attempt to connect fails at once, loudly."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's ``--dist loadgroup`` (``scripts/test.sh``), keep each notebook's
    cells on one worker: nbval runs them in order in one kernel. Other tests spread freely."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    # The longest first (whole chapters, then notebooks), so both workers stay busy to the end.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("chapters") is None,
            item.path.suffix != ".ipynb",
        )
    )
