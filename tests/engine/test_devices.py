"""Runs sharded over devices: a no-op on one device, and the same results on two (the CPU split
into two devices with XLA_FLAGS, in a subprocess, since the flag acts only before JAX starts)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import lensbox
from lensbox.engine.devices import place_runs, run_devices


def test_run_devices_takes_the_most_devices_that_divide_the_runs():
    assert run_devices(4, ["a", "b", "c"]) == ["a", "b"]
    assert run_devices(6, ["a", "b", "c"]) == ["a", "b", "c"]
    assert run_devices(5, ["a", "b"]) == ["a"]
    assert run_devices(2) == jax.devices()[:1]  # this process has one device
    with pytest.raises(lensbox.ArgumentError, match="at least one device"):
        run_devices(2, [])
    with pytest.raises(lensbox.ArgumentError, match="count"):
        run_devices(0, ["a"])


def test_place_runs_changes_nothing_on_one_device_and_checks_the_run_axis():
    tree = {"w": np.ones((3, 2)), "b": np.zeros(3)}
    assert place_runs(tree) is tree
    placed = place_runs(tree, jax.devices()[:1])
    assert placed["w"].sharding.device_set == {jax.devices()[0]}
    with pytest.raises(lensbox.ShapeError, match="same leading"):
        place_runs({"w": np.ones((3, 2)), "b": np.zeros(4)})
    with pytest.raises(lensbox.ShapeError, match="same leading"):
        place_runs({"w": np.ones((3, 2)), "scale": np.float32(1.0)})


# Four seeds of a small MLP with a momentum smoother, trained under the stopping rule on both
# devices (the default) and on the first alone; prints what the test compares.
_TWO_DEVICES = r"""
import json
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import lensbox
from lensbox.engine import optim
from lensbox.engine.devices import place_runs
from lensbox.engine.seeds import StoppingRule, init_seeds, train_seeds
from lensbox.engine.smoother import smoother_tracker

rng = np.random.default_rng(0)
X = rng.normal(size=(24, 3))
Y = np.stack([np.sin(X[:, 0]) + 0.2 * s * X[:, 1] for s in range(4)])
model = lensbox.mlp((8,), activation="tanh")
params = init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 4), 3)
opt = optim.sgd(0.05, momentum=0.9)
trackers = {"smoother": smoother_tracker(model, X, Y[0], X[:5], opt)}
rule = StoppingRule(max_epochs=12, check_every=4, patience=8, tolerance=1e-3)
runs = {
    name: train_seeds(model, params, opt, X, Y, rule=rule, batch_size=8, trackers=trackers,
                      record_at=[5], devices=devices)
    for name, devices in [("two", None), ("one", jax.devices()[:1])]
}
placed = place_runs(params)
leaves = lambda r: [np.asarray(a, float) for a in jax.tree_util.tree_leaves((r.params, r.final, r.records))]
print(json.dumps({
    "devices": len(jax.devices()),
    "placed_on": len(jax.tree_util.tree_leaves(placed)[0].sharding.device_set),
    "stop_steps": [runs[k].stop_steps.tolist() for k in ("two", "one")],
    "max_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(runs["two"]), leaves(runs["one"]))),
    "scale": max(float(np.max(np.abs(b))) for b in leaves(runs["one"])),
}))
"""


def test_seeds_on_two_devices_equal_the_one_device_run():
    out = _on_two_devices(_TWO_DEVICES)
    assert out["devices"] == 2 and out["placed_on"] == 2  # the seeds really were split
    assert out["stop_steps"][0] == out["stop_steps"][1]
    assert out["scale"] > 0.1
    assert out["max_diff"] <= 1e-12 * out["scale"]


# Two parents, each with two spawned children (four runs), trained by the BatchNorm trainer.
_SPAWNING = r"""
import json
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from lensbox.connectivity.networks import residual_mlp
from lensbox.connectivity.spawning import index, init_state, make_trainer, spawn, train_many
from lensbox.engine.optim import sgd

rng = np.random.default_rng(0)
X = jnp.asarray(rng.normal(size=(24, 2, 2, 1)))
y = jnp.asarray(rng.integers(0, 3, size=24))
net, opt = residual_mlp(4, classes=3), sgd(0.1, momentum=0.9)
advance = make_trainer(net, opt, X, y, batch_size=6)
parents = jax.vmap(lambda k: init_state(net, opt, k, (2, 2, 1)))(jax.random.split(jax.random.PRNGKey(0), 2))
runs = jax.tree_util.tree_map(lambda a: a.reshape((4,) + a.shape[2:]), spawn(parents, 2))
seeds = [(p, c) for p in range(2) for c in range(2)]
done = {name: train_many(advance, runs, seeds, [7, 9, 8, 9], progress=False, devices=devices)[0]
        for name, devices in [("two", None), ("one", jax.devices()[:1])]}
leaves = {k: [np.asarray(a, float) for a in jax.tree_util.tree_leaves(v)] for k, v in done.items()}
print(json.dumps({
    "steps": np.asarray(done["two"].step).tolist(),
    "placed_on": len(done["two"].step.sharding.device_set),
    "max_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(leaves["two"], leaves["one"])),
    "scale": max(float(np.max(np.abs(b))) for b in leaves["one"]),
}))
"""


def _on_two_devices(script: str) -> dict:
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,  # its stderr goes into the assertion message
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_spawned_runs_on_two_devices_equal_the_one_device_run():
    out = _on_two_devices(_SPAWNING)
    assert out["steps"] == [7, 9, 8, 9] and out["placed_on"] == 2
    assert out["scale"] > 0.1
    assert out["max_diff"] <= 1e-12 * out["scale"]
