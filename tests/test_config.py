import os

import pytest

import lensbox
from lensbox import config


def test_smoke_scale_is_in_force():
    # Sentinel: the test suite (and the notebooks nbval runs) must be at smoke scale.
    assert os.environ["LENSBOX_SCALE"] == "smoke"
    assert lensbox.scale() == "smoke"
    assert lensbox.by_scale(smoke=1, book=2, paper=3) == 1


@pytest.mark.parametrize("value, expected", [("book", "book"), ("PAPER", "paper"), ("", "book"), (" smoke ", "smoke")])
def test_scale_values(monkeypatch, value, expected):
    monkeypatch.setenv("LENSBOX_SCALE", value)
    assert config.scale() == expected


def test_scale_defaults_to_book(monkeypatch):
    monkeypatch.delenv("LENSBOX_SCALE")
    assert config.scale() == "book"
    assert config.by_scale(smoke="s", book="b", paper="p") == "b"


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LENSBOX_SCALE", "huge")
    with pytest.raises(ValueError, match="LENSBOX_SCALE='huge'.*smoke, book, paper"):
        config.scale()


def test_setup_sets_precision_and_seed():
    import jax
    import numpy as np

    key = lensbox.setup(seed=3, x64=True)
    assert jax.config.read("jax_enable_x64")
    first = np.random.rand()
    lensbox.setup(seed=3)
    assert np.random.rand() == first
    assert key.shape == jax.random.PRNGKey(3).shape
    assert "scale: smoke" in config.describe()


def test_precision_context_switches_float64_inside_only():
    import jax
    import jax.numpy as jnp

    lensbox.setup(seed=0, x64=False)
    try:
        assert jnp.zeros(()).dtype == jnp.float32
        with config.precision(True):
            assert jnp.zeros(()).dtype == jnp.float64
        assert jnp.zeros(()).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)


def test_tests_cannot_open_a_network_connection():
    import socket
    import urllib.request

    with pytest.raises(OSError, match="tried to open a network connection"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(OSError):
        urllib.request.urlopen("http://example.org", timeout=1)
