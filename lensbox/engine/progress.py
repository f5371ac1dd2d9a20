"""Progress of the training loops: a tqdm bar per run, or one bar shared by every run in a block.

Each training loop (:func:`lensbox.engine.training.train`, the stopping-rule loop of
:func:`lensbox.engine.seeds.train_seeds`, the spawning loop of
:func:`lensbox.connectivity.spawning.train_to_checkpoints`) asks :func:`step_bar` for its bar.
Normally that is the loop's own bar, shown when the caller asks for one. Inside
:func:`shared_steps` every loop instead adds its steps to the one bar given, whatever its own
``progress`` argument says: this is how the experiment runner shows the steps of a unit made of
several training runs on one line, with the time left.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_SHARED: ContextVar[Any] = ContextVar("lensbox_shared_step_bar", default=None)


@contextmanager
def shared_steps(bar: Any) -> Iterator[Any]:
    """Within the block, every training loop counts its steps on ``bar`` (a tqdm bar, or anything
    with a ``total`` attribute and ``update(n)``/``refresh()`` methods): each loop adds its step
    count to ``bar.total`` when it starts, advances the bar as it runs, and takes back the steps it
    did not run (a run stopped early by its rule) when it ends."""
    token = _SHARED.set(bar)
    try:
        yield bar
    finally:
        _SHARED.reset(token)


class _Share:
    """One loop's part of the shared bar."""

    def __init__(self, bar: Any, total: int):
        self.bar, self.total, self.done = bar, int(total), 0
        bar.total = (bar.total or 0) + self.total
        bar.refresh()

    def update(self, count: int) -> None:
        self.done += int(count)
        self.bar.update(int(count))

    def close(self) -> None:
        unused = self.total - self.done
        if unused > 0:
            self.bar.total -= unused
            self.bar.refresh()


def step_bar(total: int, show: bool, desc: str = "training"):
    """The bar a training loop of ``total`` steps advances (``update(n)``, ``close()``): its share
    of the shared bar inside :func:`shared_steps`; else its own tqdm bar when ``show``; else
    ``None``."""
    shared = _SHARED.get()
    if shared is not None:
        return _Share(shared, total)
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=int(total), desc=desc, unit="step", mininterval=1.0)
