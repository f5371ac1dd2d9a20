"""The registry: every case study's experiment by name, and :func:`results`, what chapters call."""

from __future__ import annotations

from lensbox.boosting.experiment import EXPERIMENT as BOOSTING
from lensbox.complexity.double_descent import EXPERIMENT as DOUBLE_DESCENT
from lensbox.complexity.double_descent import (
    EXPERIMENT_MNIST1D as DOUBLE_DESCENT_MNIST1D,
)
from lensbox.complexity.grokking import EXPERIMENT as GROKKING
from lensbox.connectivity.experiment import EXPERIMENT as MODE_CONNECTIVITY
from lensbox.errors import ArgumentError
from lensbox.runtime.results import Experiment, Results, load_or_run

#: The registered experiments, by name.
REGISTRY: dict[str, Experiment] = {
    e.name: e
    for e in (
        BOOSTING,
        DOUBLE_DESCENT,
        DOUBLE_DESCENT_MNIST1D,
        GROKKING,
        MODE_CONNECTIVITY,
    )
}


def get(name: str) -> Experiment:
    """The registered experiment ``name``."""
    if name not in REGISTRY:
        raise ArgumentError(
            f"name must be a registered experiment ({', '.join(sorted(REGISTRY))}); got {name!r}."
        )
    return REGISTRY[name]


def results(name: str, scale: str | None = None, *, progress: bool = False) -> Results:
    """The results a chapter shows for experiment ``name`` (see
    :func:`lensbox.runtime.results.load_or_run`, with a bar over the units computed live when
    ``progress``); prints where they came from and their configuration."""
    found = load_or_run(get(name), scale, progress=progress)
    print(found.describe())
    print(f"configuration ({found.scale}): {found.config}")
    return found
