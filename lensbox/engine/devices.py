r"""Runs side by side, spread over the machine's devices.

Several runs trained as one compiled program carry a leading *run* axis: the seeds of
:func:`lensbox.engine.seeds.train_seeds` (every width of the double-descent sweeps, the MNIST-1D
sweep) and the spawned children of :func:`lensbox.connectivity.spawning.train_many`.
:func:`place_runs` shards that axis over JAX's devices with a
:class:`jax.sharding.NamedSharding`; the compiled programs follow their inputs (JAX's
computation-follows-data), so each device steps its own runs and no code of ours decides where
work goes. With one device (a laptop, Colab's CPU, one GPU) it returns its input unchanged.

Each run's arithmetic is the same on any device, so results do not depend on how many devices
share the runs (tested with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` on the CPU).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lensbox.engine.checks import as_count
from lensbox.errors import ArgumentError, ShapeError

#: The name of the mesh axis the runs are sharded over.
RUNS = "runs"


def run_devices(count: int, devices: Sequence[Any] | None = None) -> list[Any]:
    """The devices ``count`` runs are spread over: the first ``k`` of ``devices`` (default
    ``jax.devices()``) for the largest ``k`` that divides ``count``, so that every device holds
    as many runs as the others.

    Examples:
        >>> from lensbox.engine.devices import run_devices
        >>> run_devices(4, ["gpu0", "gpu1", "gpu2"])  # 3 does not divide 4
        ['gpu0', 'gpu1']
        >>> run_devices(3, ["gpu0", "gpu1"])
        ['gpu0']
    """
    count = as_count(count, "count", minimum=1)
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ArgumentError("devices must name at least one device; got none.")
    k = max(k for k in range(1, len(devices) + 1) if count % k == 0)
    return devices[:k]


def place_runs(tree, devices: Sequence[Any] | None = None):
    """``tree`` with every leaf's leading (run) axis sharded over :func:`run_devices`.

    Every leaf must have the same leading length, the number of runs. With the default
    ``devices=None`` and a single device it returns ``tree`` itself; naming ``devices``
    (for instance ``jax.devices()[:1]``) always places the leaves there.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return tree
    lengths = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(lengths) != 1 or None in lengths:
        raise ShapeError(
            "place_runs needs every leaf to have the same leading (run) axis; got leading "
            f"lengths {sorted(lengths, key=str)}."
        )
    count = lengths.pop()
    used = run_devices(count, devices)
    if devices is None and len(used) == 1:
        return tree
    mesh = Mesh(np.array(used), (RUNS,))
    sharding = NamedSharding(mesh, PartitionSpec(RUNS))
    return jax.device_put(tree, sharding)


__all__ = ["RUNS", "place_runs", "run_devices"]
