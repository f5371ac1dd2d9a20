"""The :class:`Dataset` record every loader returns, and the errors loaders raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lensbox.errors import LensboxError, ShapeError


class DataUnavailableError(LensboxError, RuntimeError):
    """A data set cannot be provided here: no honest offline stand-in, or no file and no network."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split, with where it came from and what (if anything) stands in for it.

    Attributes:
        X_train, X_test: inputs, ``float64``; rows are examples. Images for multilayer
            perceptrons are flattened (``mnist_3v5``: 64 pixels); full image sets for
            convolutional networks (``cifar10``, ``svhn``) keep ``(n, height, width, channels)``.
        y_train, y_test: targets, ``float64``. Binary tasks use labels in ``{0., 1.}``;
            multi-class sets hold class indices ``0., 1., ...``; regression sets hold the
            (transformed, rescaled) target.
        name: the catalogue name passed to :func:`lensbox.data.load`.
        source: where the numbers come from (URL, package, or generator).
        licence: the licence of that source.
        standin: ``True`` when this is an offline substitute for the paper's data set.
        notes: what the stand-in changes relative to the paper's set, or how the data were made.
        meta: extras a chapter may want (class names, feature names, the polynomial's
            ``beta``, the target's scaling), never needed to use the arrays.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    licence: str
    standin: bool
    notes: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if len(X) != len(y):
                raise ShapeError(
                    f"{self.name}: X_{split} has {len(X)} rows but y_{split} has {len(y)} entries."
                )

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    @property
    def dim(self) -> int:
        """Input dimension: the number of numbers in one example."""
        return int(np.prod(self.X_train.shape[1:]))

    def __repr__(self) -> str:
        kind = "stand-in" if self.standin else "real"
        return (
            f"Dataset({self.name!r}, {kind}, train {self.X_train.shape}, test {self.X_test.shape}, "
            f"source={self.source!r})"
        )


def as_float(x) -> np.ndarray:
    """A C-contiguous ``float64`` copy-or-view of ``x``."""
    return np.ascontiguousarray(x, dtype=np.float64)


def standardise_channels(X_train, X_test) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images ``(n, height, width, channels)`` with each channel standardised by the training
    set's mean and standard deviation: ``(X_train, X_test, meta)``, ``meta`` holding
    ``channel_mean`` and ``channel_std``. The real CIFAR-10 and SVHN and their stand-ins all go
    through it."""
    mean, std = X_train.mean(axis=(0, 1, 2)), X_train.std(axis=(0, 1, 2))
    return (
        as_float((X_train - mean) / std),
        as_float((X_test - mean) / std),
        {"channel_mean": mean, "channel_std": std},
    )
