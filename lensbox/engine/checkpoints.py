"""Resumable training loops: a long computation stopped part-way goes on from its last checkpoint.

A unit of a stored experiment (:mod:`lensbox.runtime.results`) can take longer than a machine is
available: the double-descent sweep's widest networks train for hours with their smoother. Inside
:func:`resumable`, every training loop (:func:`lensbox.engine.training.train` and the
stopping-rule loop of :func:`lensbox.engine.seeds.train_seeds`) saves its whole state to the block's
folder every ``every`` seconds and when it ends. When the same computation is started again in a
block over the same folder, each loop, in the same order, loads its state and goes on from there.
Because every loop is deterministic given its state (the mini-batches come from
:class:`lensbox.engine.training.BatchOrder`, indexed by step), the resumed run ends with the same
numbers as an uninterrupted one, bit for bit.

Each loop's state is checked against a fingerprint of the loop's inputs (its starting parameters,
optimiser and tracker states, data and step counts); a saved state whose fingerprint differs
belongs to another computation and is discarded with a warning. The files are pickles written by
this process for this process: load only checkpoints you made. Outside :func:`resumable` nothing is
saved and the loops run as before.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lensbox._files import atomic_write
from lensbox.errors import ArgumentError

_SCOPE: ContextVar[Scope | None] = ContextVar("lensbox_checkpoint_scope", default=None)
_ELAPSED = "elapsed.json"


def fingerprint(*trees: Any) -> str:
    """A SHA-256 over the leaves of ``trees`` (arrays by dtype, shape and bytes; other leaves by
    ``repr``): equal for equal inputs, different for almost any change."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(trees):
        if isinstance(leaf, (np.ndarray, jax.Array, np.generic)):
            a = np.ascontiguousarray(jax.device_get(leaf))
            digest.update(f"{a.dtype}{a.shape}".encode())
            digest.update(a.tobytes())
        else:
            digest.update(repr(leaf).encode())
    return digest.hexdigest()


def saved_seconds(folder: Path | str) -> float | None:
    """The computing time saved with the checkpoints in ``folder`` (earlier attempts, up to their
    last save), ``None`` when it holds none."""
    elapsed = Path(folder) / _ELAPSED
    if not elapsed.exists():
        return None
    return float(json.loads(elapsed.read_text())["seconds"])


class Scope:
    """The folder one :func:`resumable` block saves into, and how many loops have asked for their
    checkpoint so far (the n-th loop of a computation reads and writes ``loop{n}.pkl``).

    Attributes:
        folder: where the checkpoints live.
        every: seconds between two saves of one loop.
        prior_seconds: the computation's time in earlier attempts, up to their last save.
    """

    def __init__(self, folder: Path, every: float):
        self.folder, self.every, self.loops = Path(folder), float(every), 0
        self.started = time.perf_counter()
        self.prior_seconds = saved_seconds(self.folder) or 0.0
        self.resumed = self.prior_seconds > 0

    def seconds(self) -> float:
        """The computation's time so far: earlier attempts' saved time plus this attempt's."""
        return self.prior_seconds + time.perf_counter() - self.started

    def point(self, kind: str, *inputs: Any) -> Checkpoint:
        """The next loop's :class:`Checkpoint`, for a loop of ``kind`` started from ``inputs``."""
        path = self.folder / f"loop{self.loops}.pkl"
        self.loops += 1
        return Checkpoint(self, path, f"{kind}:{fingerprint(*inputs)}")

    def clear(self) -> None:
        """Remove the folder's checkpoints (the computation's result is stored)."""
        if self.folder.exists():
            for f in self.folder.iterdir():
                f.unlink()
            self.folder.rmdir()


class Checkpoint:
    """One loop's saved state: :meth:`load` it when the loop starts, :meth:`save` it when
    :meth:`due` says so and when the loop ends."""

    def __init__(self, scope: Scope, path: Path, key: str):
        self.scope, self.path, self.key = scope, path, key
        self.last = time.perf_counter()

    def load(self) -> dict[str, Any] | None:
        """The loop's saved state, or ``None`` when there is none (or it belongs to other inputs)."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            saved = pickle.load(f)
        if saved.get("key") != self.key:
            warnings.warn(
                f"{self.path} holds the state of another computation (its inputs differ); "
                "starting this loop afresh.",
                stacklevel=3,
            )
            return None
        return saved["state"]

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the last save (or the loop's start)."""
        return time.perf_counter() - self.last >= self.scope.every

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (a pytree of arrays and plain values, moved to the host) atomically,
        with the computation's time so far."""
        blob = {"key": self.key, "state": jax.device_get(state)}
        atomic_write(self.path, lambda f: pickle.dump(blob, f, protocol=5))
        seconds = json.dumps({"seconds": self.scope.seconds()}).encode()
        atomic_write(self.scope.folder / _ELAPSED, lambda f: f.write(seconds))
        self.last = time.perf_counter()


def restore(like: Any, saved: Any) -> Any:
    """``saved`` (host arrays) placed like the leaves of ``like`` (same devices and sharding)."""
    return jax.tree_util.tree_map(
        lambda old, new: jax.device_put(new, getattr(old, "sharding", None)),
        like,
        saved,
    )


@contextmanager
def resumable(folder: Path | str, *, every: float = 300.0) -> Iterator[Scope]:
    """Within the block, training loops save their state under ``folder`` every ``every`` seconds
    and resume from it when the same computation runs again; see the module's docstring. The
    caller removes the folder with :meth:`Scope.clear` once the result is safe."""
    if not every > 0:
        raise ArgumentError(
            f"every must be a positive number of seconds, got {every!r}."
        )
    scope = Scope(Path(folder), every)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def checkpoint(kind: str, inputs: Callable[[], Any]) -> Checkpoint | None:
    """The calling loop's :class:`Checkpoint` inside :func:`resumable`, keyed by ``kind`` and the
    fingerprint of ``inputs()`` (called only there); else ``None``."""
    scope = _SCOPE.get()
    return None if scope is None else scope.point(kind, inputs())


__all__ = [
    "Checkpoint",
    "Scope",
    "checkpoint",
    "fingerprint",
    "restore",
    "resumable",
    "saved_seconds",
]
