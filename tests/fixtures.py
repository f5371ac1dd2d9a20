"""Small data files in the official formats of the paper's data sets, for tests.

MNIST IDX (gzip), CIFAR-10 python batches (tar.gz), SVHN ``.mat``, OpenML descriptions with
their ARFF tables, and scikit-learn's California archive. ``tests/data/test_data_files.py`` serves
them through a fake network; :func:`write_paper_fixtures` lays them out as a cache directory for
``LENSBOX_DATA_FIXTURES``, so ``tests/book/test_paper_branch.py`` can run every chapter's ``paper``
code path offline.

:func:`fixed_rule` is the stopping rule of tests that train for a set length. :func:`built_site`
finds the website that ``scripts/test.sh`` builds before pytest, for the tests
of the built pages and of the Colab notebooks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest


def fixed_rule(epochs: int, check_every: int | None = None):
    """A :class:`lensbox.engine.seeds.StoppingRule` that stops only after ``epochs`` (no patience,
    tolerance or accuracy stop), checked every ``check_every`` epochs (default: at the end)."""
    from lensbox.engine.seeds import StoppingRule

    return StoppingRule(
        max_epochs=epochs,
        patience=epochs,
        check_every=epochs if check_every is None else check_every,
        tolerance=0.0,
        perfect_accuracy=False,
    )


def sign_task(n: int = 12, d: int = 5, seed: int = 0):
    """``n`` Gaussian inputs in ``d`` dimensions (scaled by 1/sqrt(d)) labelled 1 where the first
    coordinate is positive, else 0: the small binary task of the seed and smoother tests."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) / np.sqrt(d)
    return X, (X[:, 0] > 0).astype(float)


def assert_same_tree(a, b, ignore=("seconds",)):
    """``a`` and ``b`` hold the same structure (dicts, lists, dataclasses) and exactly equal
    arrays and values: a stored result against the one it was computed as. Dataclass fields named
    in ``ignore`` are skipped (a run's wall time is not part of its result)."""
    import dataclasses

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            if f.name not in ignore:
                assert_same_tree(getattr(a, f.name), getattr(b, f.name), ignore)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k], ignore)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y, ignore)
    else:
        assert a == b or (a != a and b != b), (a, b)  # nan equals nan here


def built_site(marker: str, what: str) -> Path:
    """The built site's HTML folder named by ``LENSBOX_SITE``, when it holds ``marker``.

    Skips the test when there is none, or fails it (saying it holds no ``what``) when
    ``LENSBOX_REQUIRE_SITE=1``, as ``scripts/test.sh`` sets after building the site."""
    site = os.environ.get("LENSBOX_SITE")
    if site and (Path(site) / marker).exists():
        return Path(site).resolve()
    if os.environ.get("LENSBOX_REQUIRE_SITE") == "1":
        pytest.fail(f"LENSBOX_SITE={site!r} holds no {what}")
    pytest.skip("no built site: scripts/test.sh builds one and sets LENSBOX_SITE")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return gzip.compress(header + np.ascontiguousarray(array, np.uint8).tobytes())


def mnist_fixture(per_class_train=30, per_class_test=15):
    """Constant images whose grey level (20 x digit) encodes the digit."""

    def split(per_class):
        labels = np.repeat(np.arange(10), per_class).astype(np.uint8)
        imgs = np.broadcast_to(
            (labels * 20)[:, None, None], (len(labels), 28, 28)
        ).astype(np.uint8)
        return imgs, labels

    (tr_x, tr_y), (te_x, te_y) = split(per_class_train), split(per_class_test)
    return {
        "train_images": idx_bytes(tr_x),
        "train_labels": idx_bytes(tr_y),
        "test_images": idx_bytes(te_x),
        "test_labels": idx_bytes(te_y),
    }


def cifar_colour(label):
    return np.array([10 * label, 5 * label, 200 - 10 * label], dtype=np.uint8)


def cifar_tar_bytes(per_batch=20) -> bytes:
    def batch(offset):
        labels = [(offset + i) % 10 for i in range(per_batch)]
        imgs = np.stack([np.broadcast_to(cifar_colour(c), (32, 32, 3)) for c in labels])
        return pickle.dumps(
            {
                b"data": imgs.transpose(0, 3, 1, 2).reshape(per_batch, 3072),
                b"labels": labels,
                b"batch_label": b"fixture",
            },
            protocol=2,
        )

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i, name in enumerate(
            [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
        ):
            data = batch(i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def svhn_mat_bytes(n, seed) -> tuple[bytes, np.ndarray, np.ndarray]:
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8)[:, None]  # SVHN codes digit 0 as 10
    buf = io.BytesIO()
    savemat(buf, {"X": X, "y": y})
    return buf.getvalue(), X, y


def arff_text(table: dict, nominal=()) -> str:
    lines = ["% fixture in OpenML's ARFF format", "@RELATION houses", ""]
    for name, values in table.items():
        kind = (
            "{" + ",".join(sorted(set(values))) + "}" if name in nominal else "NUMERIC"
        )
        lines.append(
            f"@ATTRIBUTE '{name}' {kind}"
            if " " in name
            else f"@ATTRIBUTE {name} {kind}"
        )
    lines += ["", "@DATA"]
    for row in zip(*table.values()):
        lines.append(
            ",".join(
                "?" if isinstance(v, float) and np.isnan(v) else str(v) for v in row
            )
        )
    return "\n".join(lines) + "\n"


def houses_fixture(n=60, seed=0):
    rng = np.random.default_rng(seed)
    table = {
        "id": np.arange(n),
        "longitude": rng.uniform(-124, -114, n).round(3),
        "few_values": rng.integers(0, 3, n),  # < 10 distinct values: dropped
        "ocean": rng.choice(["INLAND", "NEAR_BAY"], n),  # nominal: dropped
        "total_rooms": np.exp(rng.normal(7, 1.2, n)).round(
            1
        ),  # skewed, positive: logged
        "median_house_value": np.exp(rng.normal(12, 0.5, n)).round(0),
    }
    return table, arff_text(table, nominal=("ocean",))


def openml_fixture(table_bytes: bytes, data_id=537, name="houses", md5=None):
    table_url = f"https://api.openml.org/data/v1/download/99{data_id}/{name}.arff"
    desc = {
        "data_set_description": {
            "id": str(data_id),
            "name": name,
            "format": "ARFF",
            "url": table_url,
            "md5_checksum": md5 or hashlib.md5(table_bytes).hexdigest(),
            "default_target_attribute": "median_house_value",
        }
    }
    return {
        f"https://api.openml.org/api/v1/json/data/{data_id}": json.dumps(desc).encode(),
        table_url: table_bytes,
    }


def cal_housing_tgz(n=40, seed=0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    households = rng.uniform(100, 900, n).round()
    raw = np.column_stack(
        [
            rng.uniform(-124, -114, n),
            rng.uniform(32, 42, n),
            rng.integers(1, 52, n),
            households * rng.uniform(3, 8, n),
            households * rng.uniform(0.8, 1.5, n),
            households * rng.uniform(2, 4, n),
            households,
            rng.uniform(0.5, 15, n),
            rng.uniform(15_000, 500_001, n),
        ]
    ).round(4)
    text = "\n".join(",".join(f"{v:.4f}" for v in row) for row in raw).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("CaliforniaHousing/cal_housing.data")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return buf.getvalue(), raw


def tabular_fixture(n: int, target: str, seed: int = 0) -> tuple[dict, str]:
    """An OpenML-style table: a few numerical features (one skewed), a nominal one, a target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    table = {
        "id": np.arange(n),
        "f1": x[:, 0].round(4),
        "f2": x[:, 1].round(4),
        "f3": np.exp(x[:, 2]).round(4),  # skewed, positive: logged by the preprocessing
        "f4": (x[:, 3] + 0.5 * x[:, 0]).round(4),
        "kind": rng.choice(["A", "B"], n),  # nominal: dropped
        target: np.exp(
            10 + 0.5 * x[:, 0] - 0.3 * x[:, 1] + 0.1 * rng.normal(size=n)
        ).round(2),
    }
    return table, arff_text(table, nominal=("kind",))


def write_paper_fixtures(root: Path, *, tabular_rows: int = 600) -> Path:
    """Write every paper data set's files under ``root`` at their cache paths; return ``root``.

    Image sets hold a few hundred images, tables ``tabular_rows`` rows: enough for every
    chapter's ``paper`` branch to run at smoke-sized budgets, and nothing more.
    """
    from lensbox.data import images, tabular

    root = Path(root)

    def put(filename: str, data: bytes) -> None:
        path = root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for key, blob in mnist_fixture(per_class_train=120, per_class_test=60).items():
        put(images.MNIST_FILES[key].filename, blob)
    put(images.CIFAR10_FILE.filename, cifar_tar_bytes(per_batch=40))
    for split, (n, seed) in {"train": (120, 0), "test": (40, 1)}.items():
        put(images.SVHN_FILES[split].filename, svhn_mat_bytes(n, seed)[0])
    for name, (data_id, _, _) in tabular.OPENML_SETS.items():
        target = tabular.TARGET_HINTS[name]
        _, text = tabular_fixture(tabular_rows, target, seed=data_id)
        files = openml_fixture(text.encode(), data_id=data_id, name=name)
        desc_url, table_url = list(files)
        put(tabular.openml_description(data_id).filename, files[desc_url])
        description = json.loads(files[desc_url])
        description["data_set_description"]["default_target_attribute"] = target
        put(
            tabular.openml_description(data_id).filename,
            json.dumps(description).encode(),
        )
        put(tabular.openml_table(data_id, description).filename, files[table_url])
    put(tabular.CALIFORNIA.filename, cal_housing_tgz(n=tabular_rows)[0])
    return root
