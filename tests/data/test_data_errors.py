"""Bad data files and bad server replies get a lensbox error that names the file, and leave
nothing behind in the cache (issue 26): truncated or corrupt files in every official format, an
OpenML error page instead of a data description, a failed download's folders."""

from __future__ import annotations

import gzip
import io
import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import lensbox
import lensbox.data as D
from lensbox.data import download, formats, tabular

from fixtures import houses_fixture, idx_bytes, openml_fixture  # noqa: E402

DESCRIPTION_URL = "https://api.openml.org/api/v1/json/data/537"


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LENSBOX_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def serve(monkeypatch):
    """Serve fixed bytes per URL (anything else unreachable); returns the list of requests."""

    def install(files):
        requests = []

        def urlopen(url, timeout):
            requests.append(url)
            if url not in files:
                raise urllib.error.URLError(f"unreachable: {url}")
            return io.BytesIO(files[url])

        monkeypatch.setattr(download, "_urlopen", urlopen)
        return requests

    return install


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as f:
        f.write(data)
    return out.getvalue()


IDX = _gzip(idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)))
BAD_FILES = {
    "truncated IDX": (formats.read_idx, "images.gz", IDX[: len(IDX) // 2]),
    "IDX that is not gzip": (formats.read_idx, "images.gz", b"<html>not found</html>"),
    "IDX with a short header": (
        formats.read_idx,
        "images.gz",
        _gzip(b"\x00\x00\x08\x03\x00"),
    ),
    "ARFF with a bad number": (
        formats.read_arff,
        "t.arff",
        b"@relation r\n@attribute a numeric\n@data\nhello\n",
    ),
    "ARFF that is binary": (formats.read_arff, "t.arff", bytes(range(256))),
    "ARFF with an open quote": (
        formats.read_arff,
        "t.arff",
        b"@relation r\n@attribute 'a numeric\n@data\n1\n",
    ),
    "CIFAR archive truncated": (
        formats.read_cifar10,
        "c.tar.gz",
        _gzip(b"x" * 600)[:40],
    ),
    "California archive not a tar": (formats.read_cal_housing, "cal.tgz", b"not a tar"),
    "SVHN file not MATLAB": (formats.read_svhn, "s.mat", b"not a mat file at all"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_damaged_file_is_a_data_file_error_naming_it(case, tmp_path):
    reader, name, data = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(lensbox.DataFileError, match=str(path)):
        reader(path)


def test_the_damaged_file_errors_keep_their_format_and_cause(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(IDX[:-8])
    with pytest.raises(
        lensbox.DataFileError, match="not a readable gzip-compressed IDX"
    ) as err:
        formats.read_idx(path)
    assert isinstance(err.value.__cause__, EOFError)
    assert isinstance(
        err.value, ValueError
    )  # still what a reader catching ValueError expects


@pytest.mark.parametrize(
    "reply",
    [
        b"<html>503 Service Unavailable</html>",
        json.dumps({"error": {"code": "111", "message": "rate limited"}}).encode(),
        json.dumps({"data_set_description": {"name": "houses"}}).encode(),
    ],
    ids=["error page", "JSON error", "description without url"],
)
def test_a_bad_openml_reply_is_refused_and_not_cached(serve, cache, reply):
    serve({DESCRIPTION_URL: reply})
    with pytest.raises(D.ChecksumError, match="description.json") as err:
        tabular.openml_files("houses")
    assert "nothing was cached" in str(err.value)
    assert not (cache / "openml").exists()  # no file and no empty folder


def test_after_a_bad_reply_the_next_load_downloads_again_and_works(
    serve, cache, monkeypatch
):
    serve({DESCRIPTION_URL: b"<html>rate limited</html>"})
    with pytest.raises(D.ChecksumError):
        tabular.openml_files("houses")
    _, text = houses_fixture(n=60)
    monkeypatch.setitem(tabular.OPENML_SETS, "houses", (537, 60, True))
    requests = serve(openml_fixture(text.encode()))
    desc, table = tabular.openml_files("houses")
    assert json.loads(desc.read_text())["data_set_description"]["name"] == "houses"
    assert table.is_file() and len(requests) == 2


def test_a_bad_description_cached_by_an_older_version_is_replaced(
    serve, cache, monkeypatch
):
    # What an earlier lensbox stored without checking: an error page with its SHA-256 sidecar.
    remote = tabular.openml_description(537)
    path = download.cached_path(remote)
    path.parent.mkdir(parents=True)
    path.write_text("<html>rate limited</html>")
    download._sidecar(path).write_text(json.dumps({"sha256": "0" * 64, "url": "x"}))
    _, text = houses_fixture(n=60)
    monkeypatch.setitem(tabular.OPENML_SETS, "houses", (537, 60, True))
    serve(openml_fixture(text.encode()))
    desc, _ = tabular.openml_files("houses")
    assert desc == path and "data_set_description" in json.loads(path.read_text())


def test_a_bad_description_put_there_by_hand_is_named_not_deleted(cache):
    remote = tabular.openml_description(537)
    path = download.cached_path(remote)
    path.parent.mkdir(parents=True)
    path.write_text("{}")
    with pytest.raises(
        D.ChecksumError, match="not a valid openml/537/description.json"
    ):
        download.ensure(remote, download=False)
    assert path.exists()  # the user's own file: reported, left for them to replace


def test_a_failed_download_leaves_no_empty_folders(serve, cache):
    serve({})  # every URL unreachable
    with pytest.raises(D.DownloadError, match="nothing was cached"):
        tabular.openml_files("houses")
    assert not cache.exists()


def test_a_failed_download_keeps_folders_that_were_there_before(serve, cache):
    (cache / "openml").mkdir(parents=True)
    serve({})
    with pytest.raises(D.DownloadError):
        tabular.openml_files("houses")
    assert [p.name for p in cache.rglob("*")] == ["openml"]


@pytest.mark.parametrize(
    "call, error, named",
    [
        (lambda: D.load("mnist3v5"), lensbox.ArgumentError, "name must be a data set"),
        (
            lambda: D.load("mnist_3v5", scale="huge"),
            lensbox.ArgumentError,
            "scale must be",
        ),
        (lambda: D.load("mnist_3v5", seed=0.5), lensbox.ArgumentError, "seed must be"),
        (lambda: D.flip_labels([0, 1, 2], 0.1), lensbox.ArgumentError, "binary labels"),
        (lambda: D.flip_labels([0, 1], 1.5), lensbox.ArgumentError, "fraction must"),
        (
            lambda: D.flip_labels([[0, 1]], 0.1),
            lensbox.ShapeError,
            "y must be a vector",
        ),
        (
            lambda: D.balanced_subsample(np.zeros((3, 2)), [0, 1], 2),
            lensbox.ShapeError,
            "X has 3 rows but y has 2",
        ),
        (
            lambda: D.balanced_subsample(np.zeros((2, 2)), [0, 1], 2.5),
            lensbox.ArgumentError,
            "n must be a positive integer",
        ),
        (
            lambda: tabular.preprocess_tabular(
                np.ones((3, 1)),
                np.array([1.0, 0.0, 2.0]),
                np.ones(3, bool),
                log_target=True,
            ),
            lensbox.ArgumentError,
            "log_target needs positive targets; y holds 1",
        ),
    ],
    ids=[
        "unknown set",
        "unknown scale",
        "fractional seed",
        "labels not binary",
        "fraction above one",
        "labels 2-D",
        "lengths differ",
        "fractional n",
        "log of a non-positive target",
    ],
)
def test_bad_arguments_to_the_loaders_name_the_argument(call, error, named):
    with pytest.raises(error, match=named):
        call()


def test_every_data_error_is_a_lensbox_error():
    for error in (D.DownloadError, D.ChecksumError, D.DataUnavailableError):
        assert issubclass(error, lensbox.LensboxError)
    assert issubclass(D.DownloadError, OSError) and issubclass(D.ChecksumError, OSError)


def test_a_missing_file_stays_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nofile.gz"):
        formats.read_idx(Path(tmp_path) / "nofile.gz")
