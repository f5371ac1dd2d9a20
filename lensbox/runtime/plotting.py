"""The book's plotting style and small figure helpers shared by chapters."""

from __future__ import annotations

import matplotlib

from lensbox.engine.statistics import mean_and_se

# Colours with a fixed meaning across the book: the network, the telescoping model, the
# model linearised at initialisation, and train/test splits.
COLORS = {
    "network": "#4d4d4d",
    "telescoping": "#d62728",
    "linearised": "#1f77b4",
    "train": "#1f77b4",
    "test": "#d62728",
}

_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's matplotlib style (called by :func:`lensbox.runtime.chapter.setup`)."""
    matplotlib.rcParams.update(_STYLE)


def band(ax, x, values, *, color=None, label=None, alpha: float = 0.2, **kwargs):
    """Plot the mean of ``values`` (seeds x points) with a band of one standard error."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    mean, se = mean_and_se(values[None] if values.ndim == 1 else values)
    (line,) = ax.plot(x, mean, color=color, label=label, **kwargs)
    ax.fill_between(
        x, mean - se, mean + se, color=line.get_color(), alpha=alpha, linewidth=0
    )
    return line


BUILD_ENV = "LENSBOX_BOOK_BUILD"
"""Set (to ``1``) by the book's Sphinx extension ``book/_ext/lensbox_book.py`` in the build process,
so every kernel the website build starts inherits it; nowhere else."""


def in_book_build() -> bool:
    """Whether this kernel runs under the website build (myst-nb stores glued values there)."""
    import os

    return os.environ.get(BUILD_ENV) == "1"


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` (a figure, a number, a string) under ``name`` for the book's ``{glue}`` roles.

    Under the website build (:func:`in_book_build`), myst-nb places it where a ``{glue:figure}``
    or ``{glue:text}`` refers to it. A matplotlib figure is stored as a PNG image, rendered here,
    so it does not depend on which matplotlib backend the kernel runs (a non-interactive one such
    as Agg gives IPython no PNG of a figure, and the page would show only ``<Figure size ...>``).
    Anywhere else (Colab, a plain Jupyter, tests) a figure is shown in place, so a reader running
    the chapter still sees it, and any other value is only returned silently: the prose of the
    Colab notebooks already carries the numbers, and a bare unlabelled value would be noise.
    """
    import numpy as np

    if isinstance(
        value, np.generic
    ):  # np.float64(0.5) would reach {glue:text} as unformattable text
        value = value.item()
    is_figure = hasattr(value, "savefig")
    if is_figure:
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image

        buffer = io.BytesIO()
        value.savefig(buffer, format="png")
        plt.close(value)
        value = Image(data=buffer.getvalue(), format="png")
    if in_book_build():
        from myst_nb import glue as _glue

        _glue(name, value, display=display)
    elif is_figure:
        from IPython.display import display as _display

        _display(value)
