import matplotlib

matplotlib.use(
    "Agg"
)  # the backend under which IPython produces no PNG of a figure by itself

import base64  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lensbox.runtime import plotting  # noqa: E402


GLUE_CELLS = [
    "import matplotlib.pyplot as plt\nimport numpy as np\nfrom lensbox.runtime import plotting",
    "fig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nplotting.glue('fig-x', fig)\n"
    "plotting.glue('number', np.float64(0.25))\nplotting.glue('text', 'a sentence')",
    "assert not plt.fignum_exists(fig.number)  # closed, so it is not drawn twice",
]


def _run_in_kernel(cells, env_update):
    """Execute ``cells`` in a real IPython kernel (Agg backend) and return the outputs."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {k: v for k, v in os.environ.items() if k != plotting.BUILD_ENV}
    env.update(MPLBACKEND="Agg", **env_update)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(env=env)
    return [out for cell in nb.cells for out in cell.outputs]


def _records(outputs):
    """myst-nb's glue records (what ``{glue}`` roles read) among the outputs, by name."""
    return {
        out.metadata["scrapbook"]["name"]: out.data
        for out in outputs
        if out.get("metadata", {}).get("scrapbook")
    }


def test_glue_under_the_build_stores_records_that_myst_nb_reads():
    pytest.importorskip("myst_nb")
    outputs = _run_in_kernel(GLUE_CELLS, {plotting.BUILD_ENV: "1"})
    records = _records(outputs)
    assert set(records) == {"fig-x", "number", "text"}
    png = records["fig-x"]["application/papermill.record/image/png"]
    assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"  # an image, not a repr
    # a plain float (not np.float64(0.25)), which {glue:text}`number:.2f` can format
    assert records["number"]["application/papermill.record/text/plain"] == "0.25"
    assert records["text"]["application/papermill.record/text/plain"] == "'a sentence'"
    assert not any("image/png" in out.get("data", {}) for out in outputs
                   if not out.get("metadata", {}).get("scrapbook"))  # fmt: skip


def test_glue_outside_the_build_shows_figures_only():
    outputs = _run_in_kernel(GLUE_CELLS, {})
    assert _records(outputs) == {}  # nothing stored for myst-nb outside the build
    shown = [out for out in outputs if out.output_type == "display_data"]
    assert len(shown) == 1 and set(shown[0].data) >= {"image/png"}  # the figure only
    assert base64.b64decode(shown[0].data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_band_draws_mean_and_standard_error():
    fig, ax = plt.subplots()
    line = plotting.band(ax, [0, 1, 2], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(line.get_ydata(), [2.0, 2.0, 2.0])
    plt.close(fig)
