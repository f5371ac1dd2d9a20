"""lensbox.data's real loaders on small fixture files written here in the official formats.

MNIST IDX (gzip), CIFAR-10 python batches (tar.gz), SVHN ``.mat``, an OpenML description with
its ARFF table, and scikit-learn's California archive. A fake server stands in for the network
(``download._urlopen`` is replaced), so the whole download path runs: streaming to a temporary
file, verification, atomic rename, reading, preprocessing. No test opens a connection.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import lensbox.data as D
from lensbox.data import __main__ as cli
from lensbox.data import download, formats, images, tabular
from lensbox.data.download import RemoteFile

from fixtures import (  # noqa: E402  (tests/ is on sys.path under pytest)
    cal_housing_tgz,
    cifar_colour,
    cifar_tar_bytes,
    houses_fixture,
    idx_bytes,
    mnist_fixture,
    openml_fixture,
    svhn_mat_bytes,
)


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    # Sockets are refused for every test by the root conftest.py.
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


class FakeServer:
    """Serves fixed bytes per URL; anything else is 'unreachable'."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = dict(files), []

    def __call__(self, url, timeout):
        self.requests.append(url)
        if url not in self.files:
            raise urllib.error.URLError(f"unreachable: {url}")
        return io.BytesIO(self.files[url])


@pytest.fixture
def serve(monkeypatch):
    def install(files):
        server = FakeServer(files)
        monkeypatch.setattr(download, "_urlopen", server)
        return server

    return install


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


# ---------------------------------------------------------------- the download machinery


def test_download_verifies_and_renames_atomically(serve, cache):
    data = b"official bytes"
    remote = RemoteFile(
        "set/file.bin",
        ("https://a.invalid/f", "https://b.invalid/f"),
        sha256=sha256(data),
        size=len(data),
    )
    server = serve({"https://b.invalid/f": data})  # first mirror down, second up
    path = download.ensure(remote)
    assert path == cache / "set" / "file.bin" and path.read_bytes() == data
    assert server.requests == ["https://a.invalid/f", "https://b.invalid/f"]
    assert leftovers(cache) == [path]  # no temporary file left behind
    download.ensure(remote)  # cached: verified again, not downloaded again
    assert len(server.requests) == 2


def test_corrupt_download_raises_checksum_error_and_caches_nothing(serve, cache):
    remote = images.MNIST_FILES["test_labels"]  # the real pinned SHA-256
    serve({url: b"not the MNIST labels" for url in remote.urls})
    with pytest.raises(D.ChecksumError, match="failed verification") as err:
        download.ensure(remote)
    assert "nothing was cached" in str(err.value)
    assert leftovers(cache) == []


def test_interrupted_download_leaves_nothing(monkeypatch, cache):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset mid-file")
            return super().read(4)

    monkeypatch.setattr(
        download, "_urlopen", lambda url, timeout: Broken(b"0123456789")
    )
    remote = RemoteFile("x/y.bin", ("https://a.invalid/y",), sha256="0" * 64)
    with pytest.raises(D.DownloadError, match="connection reset"):
        download.ensure(remote)
    assert leftovers(cache) == []


def test_a_corrupt_file_put_by_hand_is_reported(cache):
    remote = images.MNIST_FILES["test_labels"]
    path = cache / remote.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * remote.size)
    with pytest.raises(D.ChecksumError, match="SHA256") as err:
        download.ensure(remote, download=False)
    assert remote.sha256 in str(err.value)


def test_truncated_file_is_caught_by_its_size(cache):
    remote = images.MNIST_FILES["test_labels"]
    (cache / "mnist").mkdir(parents=True)
    (cache / remote.filename).write_bytes(b"short")
    with pytest.raises(D.ChecksumError, match="bytes"):
        download.ensure(remote)


def test_blocked_network_is_fast_and_names_file_url_and_destination(monkeypatch, cache):
    def unreachable(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "_urlopen", unreachable)
    remote = images.CIFAR10_FILE
    start = time.perf_counter()
    with pytest.raises(D.DownloadError) as err:
        download.ensure(remote)
    assert time.perf_counter() - start < 1.0
    msg = str(err.value)
    for needle in (
        remote.filename,
        remote.urls[0],
        str(cache / remote.filename),
        remote.sha256,
    ):
        assert needle in msg
    assert leftovers(cache) == []


def test_unpinned_file_is_recorded_at_first_download_and_checked_after(serve, cache):
    remote = RemoteFile(
        "meta/desc.json", ("https://a.invalid/d",), unpinned="server metadata"
    )
    serve({"https://a.invalid/d": b'{"a": 1}'})
    path = download.ensure(remote)
    assert download.recorded_sha256(remote) == sha256(b'{"a": 1}')
    path.write_bytes(b'{"a": 2}')
    with pytest.raises(D.ChecksumError, match="changed since it was downloaded"):
        download.ensure(remote)


def test_remote_file_must_pin_a_checksum_or_say_why_not():
    with pytest.raises(ValueError, match="checksum"):
        RemoteFile("a", ("https://a.invalid",))


# ---------------------------------------------------------------- real loaders on fixtures


@pytest.fixture
def mnist_server(monkeypatch, serve):
    blobs = mnist_fixture()
    files = {
        k: RemoteFile(
            f"mnist/{k}.gz",
            (f"https://fixture.invalid/{k}.gz",),
            sha256=sha256(b),
            size=len(b),
        )
        for k, b in blobs.items()
    }
    monkeypatch.setattr(images, "MNIST_FILES", files)
    monkeypatch.setattr(images, "N_PAIR", 10)
    monkeypatch.setattr(images, "MNIST_SIZES", {"train": 300, "test": 150})
    return serve({f.urls[0]: blobs[k] for k, f in files.items()})


def test_mnist_3v5_paper_loader_on_idx_fixtures(mnist_server):
    ds = D.load("mnist_3v5", scale="paper", seed=0)
    assert (
        not ds.standin and ds.X_train.shape == (10, 64) and ds.X_test.shape == (10, 64)
    )
    assert ds.y_train.sum() == 5 and ds.y_test.sum() == 5
    # constant images of grey level 20 * digit: label 0 is digit 3, label 1 is digit 5
    expected = np.where(ds.y_train == 1, 100, 60)[:, None] / 255.0
    np.testing.assert_allclose(ds.X_train, np.broadcast_to(expected, (10, 64)))
    assert "CC BY-SA 3.0" == ds.licence
    other = D.load("mnist_3v5", scale="paper", seed=1)
    assert other.X_train.shape == (10, 64) and other.y_train.sum() == 5
    assert len(mnist_server.requests) == 4  # downloaded once, cached after


def test_cifar_loaders_on_python_batch_fixture(monkeypatch, serve):
    blob = cifar_tar_bytes()
    remote = RemoteFile(
        "cifar10/cifar-10-python.tar.gz",
        ("https://fixture.invalid/c.tgz",),
        sha256=sha256(blob),
        size=len(blob),
    )
    monkeypatch.setattr(images, "CIFAR10_FILE", remote)
    monkeypatch.setattr(images, "N_PAIR", 4)
    serve({remote.urls[0]: blob})
    pair = D.load("cifar_catdog", scale="paper")
    assert pair.X_train.shape == (4, 64) and pair.y_train.sum() == 2
    grey = {c: float(formats.LUMA @ cifar_colour(c)) / 255.0 for c in (3, 5)}
    expected = np.where(pair.y_train == 1, grey[5], grey[3])
    np.testing.assert_allclose(
        pair.X_train, np.broadcast_to(expected[:, None], (4, 64))
    )
    full = D.load("cifar10", scale="paper")
    assert full.X_train.shape == (100, 32, 32, 3) and full.X_test.shape == (
        20,
        32,
        32,
        3,
    )
    np.testing.assert_allclose(full.X_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-9)
    np.testing.assert_array_equal(full.y_train[:10], np.arange(10))
    # channel order survives the (n, 3, 32, 32) -> (n, 32, 32, 3) transpose
    raw = (
        full.X_train[:, 0, 0, :] * full.meta["channel_std"] + full.meta["channel_mean"]
    )
    np.testing.assert_allclose(
        raw * 255, [cifar_colour(c) for c in full.y_train.astype(int)], atol=1e-9
    )


def test_svhn_loader_on_mat_fixture(monkeypatch, serve):
    train, X_raw, _ = svhn_mat_bytes(30, seed=0)
    test, _, _ = svhn_mat_bytes(12, seed=1)
    files = {
        k: RemoteFile(
            f"svhn/{k}.mat",
            (f"https://fixture.invalid/{k}.mat",),
            sha256=sha256(b),
            size=len(b),
        )
        for k, b in (("train", train), ("test", test))
    }
    monkeypatch.setattr(images, "SVHN_FILES", files)
    serve({files["train"].urls[0]: train, files["test"].urls[0]: test})
    ds = D.load("svhn", scale="paper")
    assert ds.X_train.shape == (30, 32, 32, 3) and ds.X_test.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(ds.y_train, (np.arange(30) + 1) % 10)  # 10 -> digit 0
    restored = (ds.X_train * ds.meta["channel_std"] + ds.meta["channel_mean"]) * 255
    np.testing.assert_allclose(restored, X_raw.transpose(3, 0, 1, 2), atol=1e-8)


def test_openml_loader_on_arff_fixture(monkeypatch, serve, cache):
    table, text = houses_fixture(n=60)
    monkeypatch.setitem(tabular.OPENML_SETS, "houses", (537, 60, True))
    server = serve(openml_fixture(text.encode()))
    ds = D.load("houses", scale="paper", seed=0)
    assert not ds.standin and ds.n_train + ds.n_test == 60 and ds.n_test == 12
    assert ds.meta["feature_names"] == ["longitude", "total_rooms"]
    assert ds.meta["log_features"] == ["total_rooms"] and ds.meta["log_target"]
    np.testing.assert_allclose(ds.X_train.mean(0), 0.0, atol=1e-9)
    y_all = np.concatenate([ds.y_train, ds.y_test])
    back = np.exp(y_all * ds.meta["target_std"] + ds.meta["target_mean"])
    np.testing.assert_allclose(
        np.sort(back), np.sort(table["median_house_value"]), rtol=1e-9
    )
    assert D.availability("houses") == "cached" and len(server.requests) == 2
    monkeypatch.setitem(tabular.OPENML_SETS, "houses", (537, 61, True))
    with pytest.raises(ValueError, match="60 rows"):
        D.load("houses", scale="paper")


def test_openml_table_failing_its_md5_is_not_cached(monkeypatch, serve, cache):
    _, text = houses_fixture(n=60)
    monkeypatch.setitem(tabular.OPENML_SETS, "houses", (537, 60, True))
    serve(openml_fixture(text.encode(), md5="0" * 32))
    with pytest.raises(D.ChecksumError, match="MD5"):
        D.load("houses", scale="paper")
    assert [p.name for p in leftovers(cache)] == [
        "description.json",
        "description.json.sha256.json",
    ]


def test_california_loader_on_archive_fixture(monkeypatch, serve):
    blob, raw = cal_housing_tgz(n=40)
    remote = RemoteFile(
        tabular.CALIFORNIA.filename, tabular.CALIFORNIA.urls, sha256=sha256(blob)
    )
    monkeypatch.setattr(tabular, "CALIFORNIA", remote)
    monkeypatch.setattr(tabular, "CALIFORNIA_ROWS", 40)
    serve({remote.urls[0]: blob})
    ds = D.load("california", scale="paper")
    lon, lat, age, rooms, bedrooms, pop, hh, income, value = raw.T
    X = np.column_stack(
        [income, age, rooms / hh, bedrooms / hh, pop, pop / hh, lat, lon]
    )
    train = tabular._split(40, 0)
    X_exp, y_exp, meta = tabular.preprocess_tabular(
        X, value / 1e5, train, log_target=True
    )
    np.testing.assert_allclose(ds.X_train, X_exp[train])
    np.testing.assert_allclose(ds.y_test, y_exp[~train])
    assert ds.meta["feature_names"][:3] == ["MedInc", "HouseAge", "AveRooms"]


def test_cli_list_shows_cached_sets_and_fetch_verifies(mnist_server, capsys, cache):
    assert cli.main(["fetch", "mnist_3v5"]) == 0
    assert capsys.readouterr().out.count("verified ") == 4
    assert cli.main(["list"]) == 0
    assert "mnist_3v5  (paper data here: cached)" in capsys.readouterr().out


# ---------------------------------------------------------------- formats and image operations


def test_read_idx_checks_magic_and_size(tmp_path):
    good = tmp_path / "a.gz"
    good.write_bytes(idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)))
    np.testing.assert_array_equal(
        formats.read_idx(good), np.arange(24).reshape(2, 3, 4)
    )
    bad = tmp_path / "b.gz"
    bad.write_bytes(gzip.compress(b"\x1f\x8bnot idx"))
    with pytest.raises(ValueError, match="not an IDX"):
        formats.read_idx(bad)
    short = tmp_path / "c.gz"
    short.write_bytes(gzip.compress(gzip.decompress(good.read_bytes())[:-1]))
    with pytest.raises(ValueError, match="header says"):
        formats.read_idx(short)


def test_area_resize_is_exact_area_averaging():
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(3, 32, 32))
    blocks = img.reshape(3, 8, 4, 8, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(formats.area_resize(img, (8, 8)), blocks)
    mnist = rng.uniform(size=(2, 28, 28))
    small = formats.area_resize(mnist, (8, 8))
    np.testing.assert_allclose(small.mean(axis=(1, 2)), mnist.mean(axis=(1, 2)))
    np.testing.assert_allclose(
        formats.area_resize(np.full((1, 28, 28), 0.3), (8, 8)), 0.3
    )
    # the first output cell covers pixels 0-2 fully and half of pixel 3
    step = np.zeros((1, 28, 28))
    step[:, :, 3] = 1.0
    assert np.isclose(formats.area_resize(step, (8, 8))[0, 0, 0], 0.5 / 3.5)


def test_to_grey_uses_bt601_luma():
    rgb = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(formats.to_grey(rgb), [0.299, 0.587, 0.114, 1.0])


def test_read_arff_handles_quotes_missing_values_and_nominals(tmp_path):
    path = tmp_path / "t.arff"
    path.write_text(
        "% comment\n@relation t\n@attribute 'a b' numeric\n@attribute c {x,y}\n"
        "@attribute d REAL\n@data\n1.5,x,?\n% skipped\n2,'y',3e2\n"
    )
    table = formats.read_arff(path)
    np.testing.assert_allclose(table["a b"], [1.5, 2.0])
    assert list(table["c"]) == ["x", "y"]
    assert np.isnan(table["d"][0]) and table["d"][1] == 300.0
    (tmp_path / "bad.arff").write_text(
        "@relation t\n@attribute a numeric\n@data\n1,2\n"
    )
    with pytest.raises(ValueError, match="values for 1 attributes"):
        formats.read_arff(tmp_path / "bad.arff")


# ---------------------------------------------------------------- test-only fixture mode


def test_fixture_mode_loads_every_paper_set_offline_and_labels_it(
    monkeypatch, tmp_path, cache
):
    from fixtures import write_paper_fixtures

    monkeypatch.setenv(
        "LENSBOX_DATA_FIXTURES", str(write_paper_fixtures(tmp_path / "fx"))
    )
    for name in (
        "mnist_3v5",
        "cifar_catdog",
        "cifar10",
        "svhn",
        "houses",
        "superconduct",
        "house_sales",
        "california",
    ):
        ds = D.load(name, scale="paper")
        assert (
            not ds.standin and ds.source.startswith("test fixture") and ds.n_train > 0
        ), name
        assert np.isfinite(ds.X_train).all() and np.isfinite(ds.y_test).all(), name
    assert (
        D.load("mnist_3v5", scale="paper").y_train.mean() == 0.5
    )  # still class-balanced
    assert not cache.exists(), "fixture mode must never write to the cache"


def test_fixture_mode_names_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSBOX_DATA_FIXTURES", str(tmp_path))
    with pytest.raises(D.DownloadError, match="holds no mnist/"):
        D.load("mnist_3v5", scale="paper")
