"""Bad names and counts given to the experiment runner and the case studies' configurations get
a lensbox error naming the argument (issue 26)."""

import pytest

import lensbox
from lensbox.boosting import experiment as boosting
from lensbox.complexity import grokking
from lensbox.connectivity import experiment as connectivity
from lensbox.experiments import registry

MISTAKES = {
    "unknown experiment": (
        lambda: registry.get("double-descent"),
        lensbox.ArgumentError,
        "name must be a registered experiment",
    ),
    "unknown scale": (
        lambda: registry.results("boosting", "huge"),
        lensbox.ArgumentError,
        "scale must be one of smoke, book, paper",
    ),
    "boosting unit without seed": (
        lambda: boosting.run_unit({"tables": ["diamonds"], "seeds": 1}, "diamonds"),
        lensbox.ArgumentError,
        "unit must name a table and a seed, 'diamonds-seed0' say",
    ),
    "unknown table": (
        lambda: boosting.table("diamond"),
        lensbox.ArgumentError,
        "no table 'diamond'",
    ),
    "connectivity unit": (
        lambda: connectivity.run_unit({}, "scratchy"),
        lensbox.ArgumentError,
        "no unit 'scratchy'",
    ),
    "grokking unit": (
        lambda: grokking.run_unit(grokking.CONFIGS["smoke"], "mnist_9"),
        lensbox.ArgumentError,
        "grokking has no unit 'mnist_9'",
    ),
    "schedule of no steps": (
        lambda: connectivity.scaled_schedule(0),
        lensbox.ArgumentError,
        "steps must be at least 1",
    ),
    "schedule of fractional steps": (
        lambda: connectivity.scaled_schedule(10.5),
        lensbox.ArgumentTypeError,
        "steps must be an integer",
    ),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_name_the_argument(case):
    call, error, named = MISTAKES[case]
    with pytest.raises(error, match=named):
        call()
