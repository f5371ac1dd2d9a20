"""The paper's data sets, with honest offline stand-ins.

``lensbox.data.load(name)`` returns a :class:`Dataset`. At ``smoke`` and ``book`` scale it uses
only offline data (data shipped in installed packages, or generated); at ``paper`` scale it uses
the paper's real data sets, downloaded once into the cache directory (``LENSBOX_DATA``, default
``~/.cache/lensbox``) and verified by checksum. ``python -m lensbox.data list`` shows what is
available here.
"""

from lensbox.data.catalogue import (
    CATALOGUE,
    DataInfo,
    availability,
    describe,
    fetch,
    identity,
    info,
    load,
    names,
)
from lensbox.data.dataset import DataUnavailableError, Dataset
from lensbox.data.download import ChecksumError, DownloadError, cache_dir
from lensbox.data.formats import area_resize, to_grey
from lensbox.data.generated import mnist1d, polynomial_task
from lensbox.data.labels import balanced_subsample, flip_labels
from lensbox.data.tabular import preprocess_tabular

__all__ = [
    "CATALOGUE",
    "ChecksumError",
    "DataInfo",
    "DataUnavailableError",
    "Dataset",
    "DownloadError",
    "area_resize",
    "availability",
    "balanced_subsample",
    "cache_dir",
    "describe",
    "fetch",
    "identity",
    "flip_labels",
    "info",
    "load",
    "mnist1d",
    "names",
    "polynomial_task",
    "preprocess_tabular",
    "to_grey",
]
