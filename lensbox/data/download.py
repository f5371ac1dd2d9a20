"""Download, verify and cache files: the only module of lensbox that opens a network connection.

Every download streams into a temporary file *in the cache directory itself*, is checked
against its checksum, and only then is renamed into place (``os.replace`` is atomic on one
file system). An interrupted or corrupt download therefore leaves no file behind, and a file in
the cache is always a verified one.

The cache directory is ``$LENSBOX_DATA`` if set, else ``$XDG_CACHE_HOME/lensbox``, else
``~/.cache/lensbox``.

Test-only: when ``$LENSBOX_DATA_FIXTURES`` names a directory, every file is read from there
instead (same relative paths as the cache), without checksums or size checks and without ever
opening a connection. The tests write small fixture files in the official formats there, so
every chapter's ``paper`` branch can run end to end offline; :func:`lensbox.data.load` labels
such data sets as fixtures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lensbox.errors import ArgumentError, DataFileError, LensboxError

ENV_VAR = "LENSBOX_DATA"
FIXTURES_ENV_VAR = "LENSBOX_DATA_FIXTURES"
TIMEOUT_S = 30.0
_CHUNK = 1 << 20


class DownloadError(LensboxError, OSError):
    """A file is not in the cache and could not be downloaded (no network, server error)."""


class ChecksumError(LensboxError, OSError):
    """A file's contents do not match its pinned checksum."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: where it lives in the cache, where to get it, how to check it.

    Attributes:
        filename: path inside the cache directory, e.g. ``"mnist/t10k-images-idx3-ubyte.gz"``.
        urls: mirrors, tried in order.
        sha256: the pinned SHA-256 of the official file, or ``None`` where it cannot be known
            in advance (then ``md5`` or ``unpinned`` says what is checked instead).
        md5: a checksum published by the server alongside the file (OpenML's descriptions).
        size: the size in bytes, when known.
        unpinned: why no checksum is pinned, for files with neither ``sha256`` nor ``md5``;
            such files are checked by structure when read.
        check: for an unpinned file, a function that reads the file and raises
            :class:`~lensbox.errors.DataFileError` when it is not what it should be (a server's
            error page instead of a data description). A download that fails it is not stored,
            and a cached copy that fails it is removed and downloaded again.
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    unpinned: str = ""
    check: Callable[[Path], None] | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.urls:
            raise ArgumentError(f"{self.filename}: at least one URL is needed.")
        if self.sha256 is None and self.md5 is None and not self.unpinned:
            raise ArgumentError(
                f"{self.filename}: pin a checksum or say why none can be pinned."
            )


def cache_dir() -> Path:
    """The directory data sets are cached in (created on first download, not here)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lensbox"


def fixtures_dir() -> Path | None:
    """The test-only fixture directory (``$LENSBOX_DATA_FIXTURES``), or ``None`` when unset."""
    env = os.environ.get(FIXTURES_ENV_VAR, "").strip()
    return Path(env).expanduser() if env else None


def cached_path(remote: RemoteFile) -> Path:
    return cache_dir() / remote.filename


def _urlopen(url: str, timeout: float):
    """Open ``url``; the one place a connection is made (tests replace this function)."""
    request = urllib.request.Request(url, headers={"User-Agent": "lensbox-data"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (fixed https URLs)


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(remote: RemoteFile, path: Path) -> None:
    """Check ``path`` against the size and checksums pinned for ``remote``.

    Raises:
        ChecksumError: naming the file, what was expected and what was found.
    """
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise ChecksumError(
            f"{path} has {size:,} bytes but {remote.filename} should have {remote.size:,}: "
            "the file is truncated or is not the official one."
        )
    for algorithm in ("sha256", "md5"):
        expected = getattr(remote, algorithm)
        if expected is not None:
            found = _digest(path, algorithm)
            if found != expected.lower():
                raise ChecksumError(
                    f"{path} does not match the {algorithm.upper()} pinned for {remote.filename}: "
                    f"expected {expected}, found {found}."
                )
    if remote.check is not None:
        try:
            remote.check(path)
        except DataFileError as err:
            raise ChecksumError(
                f"{path} is not a valid {remote.filename}: {err}"
            ) from err


def manual_instructions(remote: RemoteFile) -> str:
    urls = "\n".join(f"    {u}" for u in remote.urls)
    check = (
        f"SHA-256 {remote.sha256}"
        if remote.sha256
        else f"MD5 {remote.md5}"
        if remote.md5
        else "no pinned checksum"
    )
    return (
        f"Download {remote.filename!r} by hand from\n{urls}\n"
        f"and save it as\n    {cached_path(remote)}\n"
        f"(expected: {check}{f', {remote.size:,} bytes' if remote.size else ''}). "
        f"Set {ENV_VAR} to use another cache directory."
    )


def ensure(
    remote: RemoteFile, *, download: bool = True, timeout: float = TIMEOUT_S
) -> Path:
    """Return the cached, verified path of ``remote``, downloading it first if needed.

    A file already in the cache (downloaded earlier, or put there by hand) is verified before
    use. ``download=False`` never opens a connection.

    Raises:
        DownloadError: the file is missing and cannot be downloaded; the message names the file,
            its URLs and where to put it by hand.
        ChecksumError: the file (cached or freshly downloaded) fails verification. A failed
            download leaves nothing in the cache; a failed file put there by hand is left for
            the user to replace.
    """
    fixtures = fixtures_dir()
    if fixtures is not None:
        path = fixtures / remote.filename
        if not path.is_file():
            raise DownloadError(
                f"{FIXTURES_ENV_VAR}={fixtures} is set (test fixtures instead of real data), "
                f"but it holds no {remote.filename}."
            )
        return path
    path = cached_path(remote)
    if path.exists() and _downloaded_but_invalid(remote, path):
        # A reply stored by an earlier version that did not check it: remove it and fetch again.
        path.unlink()
        _sidecar(path).unlink(missing_ok=True)
    if path.exists():
        verify(remote, path)
        recorded = recorded_sha256(remote) if remote.sha256 is None else None
        if recorded is not None and _digest(path, "sha256") != recorded:
            raise ChecksumError(
                f"{path} changed since it was downloaded (SHA-256 recorded then: {recorded}); "
                "delete it to download it again."
            )
        return path
    if not download:
        raise DownloadError(
            f"{remote.filename} is not in the cache.\n" + manual_instructions(remote)
        )
    created = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in remote.urls:
        try:
            _download_to(url, remote, path, timeout)
            return path
        except ChecksumError as err:
            failures.append(err)
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append(DownloadError(f"{url}: {err}"))
    for folder in created:  # deepest first; leave no trace of a failed download
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty
    if any(isinstance(f, ChecksumError) for f in failures):
        raise ChecksumError(
            f"every download of {remote.filename} failed verification; nothing was cached.\n"
            + "\n".join(f"  - {f}" for f in failures)
        )
    raise DownloadError(
        f"could not download {remote.filename} (no network?); nothing was cached.\n"
        + "\n".join(f"  - {f}" for f in failures)
        + "\n"
        + manual_instructions(remote)
    )


def _download_to(url: str, remote: RemoteFile, path: Path, timeout: float) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
        verify(remote, tmp_path)
        sha256 = _digest(tmp_path, "sha256")
        os.replace(tmp_path, path)
        if remote.sha256 is None:
            # Trust on first use: record what arrived, so later reads detect silent changes.
            _sidecar(path).write_text(json.dumps({"sha256": sha256, "url": url}))
    finally:
        tmp_path.unlink(missing_ok=True)


def _downloaded_but_invalid(remote: RemoteFile, path: Path) -> bool:
    """Whether ``path`` was downloaded by lensbox (it has a sidecar) and fails ``remote.check``."""
    if remote.check is None or not _sidecar(path).exists():
        return False
    try:
        remote.check(path)
    except DataFileError:
        return True
    return False


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def recorded_sha256(remote: RemoteFile) -> str | None:
    """The SHA-256 recorded when an unpinned file was first downloaded, if any."""
    side = _sidecar(cached_path(remote))
    return json.loads(side.read_text())["sha256"] if side.exists() else None
