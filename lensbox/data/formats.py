"""Readers for the official file formats, and the image operations of the paper's preprocessing.

Each reader checks the structure it expects and says what it found instead, so that a file that
is not the official one fails loudly even where no checksum could be pinned.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import pickle
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lensbox.errors import DataFileError

# ITU-R BT.601 luma weights, as in PIL's ``convert("L")``.
LUMA = np.array([0.299, 0.587, 0.114])
_IDX_TYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


# What a damaged file raises inside the standard readers: a truncated or non-gzip stream, a
# damaged archive or pickle, text that is not UTF-8, a number that does not parse.
_DAMAGE = (
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    tarfile.TarError,
    pickle.UnpicklingError,
    UnicodeDecodeError,
    ValueError,
    IndexError,
    KeyError,
)


@contextlib.contextmanager
def reading(path: Path | str, kind: str) -> Iterator[None]:
    """Turn what a damaged file raises inside a reader into a :class:`~lensbox.errors.DataFileError`
    that names the file and its format; a missing file stays a ``FileNotFoundError``."""
    try:
        yield
    except DataFileError:
        raise
    except _DAMAGE as err:
        raise DataFileError(
            f"{path} is not a readable {kind} (truncated or corrupt?): "
            f"{type(err).__name__}: {err}. Delete it and download it again."
        ) from err


def read_idx(path: Path | str) -> np.ndarray:
    """Read a gzip-compressed IDX file (the MNIST format): magic ``00 00 type ndim``, then dims."""
    with reading(path, "gzip-compressed IDX file"):
        with gzip.open(path, "rb") as f:
            raw = f.read()
        if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
            raise DataFileError(
                f"{path} is not an IDX file (magic bytes {raw[:4].hex()})."
            )
        ndim = raw[3]
        shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
        data = np.frombuffer(raw, _IDX_TYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataFileError(
            f"{path}: header says shape {shape} but holds {data.size} values."
        )
    return data.reshape(shape)


def read_cifar10(
    path: Path | str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``cifar-10-python.tar.gz``: five training batches and the test batch.

    Returns:
        ``(X_train, y_train, X_test, y_test)``, images ``uint8`` of shape ``(n, 32, 32, 3)``.
    """

    def batch(tar, member):
        try:
            f = tar.extractfile(f"cifar-10-batches-py/{member}")
        except KeyError:
            raise DataFileError(
                f"{path} has no cifar-10-batches-py/{member}."
            ) from None
        d = pickle.load(f, encoding="bytes")  # noqa: S301 (verified official archive)
        X = np.asarray(d[b"data"], dtype=np.uint8)
        if X.ndim != 2 or X.shape[1] != 3072:
            raise DataFileError(
                f"{path}:{member} holds data of shape {X.shape}, not (n, 3072)."
            )
        return X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(d[b"labels"])

    with reading(path, "CIFAR-10 python archive"), tarfile.open(path, "r:gz") as tar:
        train = [batch(tar, f"data_batch_{i}") for i in range(1, 6)]
        X_test, y_test = batch(tar, "test_batch")
    X_train = np.concatenate([b[0] for b in train])
    y_train = np.concatenate([b[1] for b in train])
    return X_train, y_train, X_test, y_test


def read_svhn(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat`` file: ``X`` is ``(32, 32, 3, n)``, ``y`` in 1..10 (10 = digit 0).

    Returns:
        ``(images, labels)`` with images ``uint8`` ``(n, 32, 32, 3)`` and labels in 0..9.
    """
    from scipy.io import loadmat

    with reading(path, "MATLAB file"):
        mat = loadmat(path)
    if "X" not in mat or "y" not in mat:
        raise DataFileError(f"{path} has no 'X' and 'y' arrays (found {sorted(mat)}).")
    X, y = np.asarray(mat["X"]), np.asarray(mat["y"]).ravel().astype(np.int64)
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.shape[3] != y.size:
        raise DataFileError(
            f"{path}: X has shape {X.shape} and y {y.shape}; expected (32, 32, 3, n), (n,)."
        )
    return X.transpose(3, 0, 1, 2), y % 10


def read_arff(path: Path | str) -> dict[str, np.ndarray]:
    """Read a dense ARFF table (OpenML's format) into ``{column: array}``.

    Numeric columns become ``float64`` (``?`` is NaN); other columns stay strings.
    """
    with reading(path, "ARFF table"):
        return _read_arff(path)


def _read_arff(path: Path | str) -> dict[str, np.ndarray]:
    names, numeric, rows = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("%"):
                continue
            low = s.lower()
            if low.startswith("@attribute"):
                rest = s[len("@attribute") :].strip()
                if rest.startswith(("'", '"')):
                    q = rest[0]
                    end = rest.index(q, 1)
                    name, kind = rest[1:end], rest[end + 1 :].strip()
                else:
                    name, kind = rest.split(None, 1)
                names.append(name)
                numeric.append(
                    kind.lower().split()[0] in ("numeric", "real", "integer")
                )
            elif low.startswith("@data"):
                break
        reader = csv.reader(f, quotechar="'", skipinitialspace=True)
        for row in reader:
            if not row or row[0].startswith("%"):
                continue
            if row[0].startswith("{"):
                raise DataFileError(f"{path}: sparse ARFF is not supported.")
            if len(row) != len(names):
                raise DataFileError(
                    f"{path}: a data row has {len(row)} values for {len(names)} attributes."
                )
            rows.append(row)
    if not names:
        raise DataFileError(f"{path} declares no @attribute: not an ARFF file.")
    cols = list(zip(*rows)) if rows else [()] * len(names)
    table = {}
    for name, is_num, col in zip(names, numeric, cols):
        if is_num:
            table[name] = np.array([np.nan if v == "?" else float(v) for v in col])
        else:
            table[name] = np.array(col, dtype=object)
    return table


def read_cal_housing(path: Path | str) -> np.ndarray:
    """Read ``cal_housing.tgz`` (scikit-learn's California housing archive) as a ``(n, 9)`` array.

    Columns: longitude, latitude, housingMedianAge, totalRooms, totalBedrooms, population,
    households, medianIncome, medianHouseValue.
    """
    with reading(path, "California housing archive"):
        with tarfile.open(path, "r:gz") as tar:
            try:
                raw = tar.extractfile("CaliforniaHousing/cal_housing.data").read()
            except KeyError:
                raise DataFileError(
                    f"{path} has no CaliforniaHousing/cal_housing.data."
                ) from None
        data = np.loadtxt(io.BytesIO(raw), delimiter=",", ndmin=2)
    if data.shape[1] != 9:
        raise DataFileError(
            f"{path}: cal_housing.data has {data.shape[1]} columns, expected 9."
        )
    return data


def to_grey(images: np.ndarray) -> np.ndarray:
    """RGB ``(..., 3)`` to grey ``(...)`` by ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B."""
    return np.asarray(images, dtype=np.float64) @ LUMA


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: the share of each input pixel inside each output cell."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    left, right = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, pix + 1) - np.maximum(left, pix), 0.0, None)
    return overlap / (n_in / n_out)


def area_resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downsample ``(n, H, W)`` images to ``size`` by exact area averaging.

    Each output pixel is the mean of the input over its cell, with fractional pixels weighted by
    the overlap (as OpenCV's ``INTER_AREA`` and PIL's ``BOX`` filter do). For 32 to 8 this is the
    mean of 4x4 blocks; for MNIST's 28 to 8 the cells are 3.5 pixels wide. Averaging preserves
    the mean brightness and never aliases, unlike subsampling.
    """
    images = np.asarray(images, dtype=np.float64)
    A = _area_matrix(images.shape[-2], size[0])
    B = _area_matrix(images.shape[-1], size[1])
    return np.einsum("ih,nhw,jw->nij", A, images, B)
