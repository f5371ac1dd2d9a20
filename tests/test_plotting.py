import matplotlib

matplotlib.use(
    "Agg"
)  # the backend under which IPython produces no PNG of a figure by itself

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lensbox import plotting  # noqa: E402


def test_glue_stores_figures_as_png_whatever_the_backend(monkeypatch):
    monkeypatch.setenv(plotting.BUILD_ENV, "1")  # as under the website build
    stored = {}
    myst_nb = pytest.importorskip("myst_nb")
    monkeypatch.setattr(
        myst_nb, "glue", lambda name, value, display=False: stored.update({name: value})
    )
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plotting.glue("fig-x", fig)
    plotting.glue("number", np.float64(0.25))
    png = stored["fig-x"].data
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert stored["number"] == 0.25 and type(stored["number"]) is float
    assert not plt.fignum_exists(fig.number)  # closed, so it is not drawn twice


def test_glue_outside_the_book_build_shows_figures_only(monkeypatch):
    monkeypatch.delenv(plotting.BUILD_ENV, raising=False)
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda value: shown.append(value))
    stored = []
    myst_nb = pytest.importorskip("myst_nb")
    monkeypatch.setattr(myst_nb, "glue", lambda *args, **kwargs: stored.append(args))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plotting.glue("fig-x", fig)
    plotting.glue("number", 0.25)
    plotting.glue("text", "a sentence")
    assert (
        len(shown) == 1 and shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    )  # the figure, no value
    assert stored == []  # myst-nb is not asked to store anything outside the build
    assert not plt.fignum_exists(fig.number)


def test_band_draws_mean_and_standard_error():
    fig, ax = plt.subplots()
    line = plotting.band(ax, [0, 1, 2], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(line.get_ydata(), [2.0, 2.0, 2.0])
    plt.close(fig)
