"""Tests of lensbox.engine.checkpoints: training loops stopped part-way resume from their saved
state to the same numbers, bit for bit, as an uninterrupted run; the runner resumes a unit."""

import pickle
import warnings

import jax
import numpy as np
import pytest
from fixtures import assert_same_tree, sign_task

import lensbox
from lensbox.engine import checkpoints, seeds
from lensbox.engine.smoother import smoother_tracker
from lensbox.engine.training import predictions_tracker, train
from lensbox.runtime import results as R


class Stopped(Exception):
    """Stands for the machine going away after a save."""


@pytest.fixture
def stop_after(monkeypatch):
    """``stop_after(k)``: the k-th save of a checkpoint (counting from 1) writes, then stops the
    computation; ``loads`` lists the ``done`` of every state a loop resumed from."""
    saves, loads = [0], []
    real_save, real_load = checkpoints.Checkpoint.save, checkpoints.Checkpoint.load
    limit = [None]

    def save(self, state):
        real_save(self, state)
        saves[0] += 1
        if limit[0] is not None and saves[0] >= limit[0]:
            raise Stopped(f"stopped after save {saves[0]}")

    def load(self):
        state = real_load(self)
        if state is not None:
            loads.append(state["done"])
        return state

    monkeypatch.setattr(checkpoints.Checkpoint, "save", save)
    monkeypatch.setattr(checkpoints.Checkpoint, "load", load)

    def arm(k):
        saves[0], limit[0] = 0, k

    arm.loads = loads
    arm.saves = saves
    return arm


def _train_run(X, y, model, params):
    return train(
        model,
        params,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=60,
        batch_size=4,
        seed=3,
        steps_per_call=7,
        trackers={
            "f": predictions_tracker(model, X),
            "smoother": smoother_tracker(
                model, X, y, X[:3], lensbox.sgd(0.05, momentum=0.9)
            ),
        },
        record_at=[0, 10, 25, 60],
        progress=False,
    )


def test_a_stopped_train_resumes_to_the_uninterrupted_result(tmp_path, stop_after):
    X, y = sign_task(n=12, d=5)
    model = lensbox.mlp((6,))
    params = model.init(jax.random.PRNGKey(0), 5)
    whole = _train_run(X, y, model, params)
    stop_after(3)  # three chunks of 7 steps are saved, then the machine goes away
    with pytest.raises(Stopped), checkpoints.resumable(tmp_path, every=1e-9):
        _train_run(X, y, model, params)
    with open(tmp_path / "loop0.pkl", "rb") as f:
        saved_at = pickle.load(f)["state"]["done"]
    assert saved_at == 17  # chunks end at steps 7, 10 (a recording step) and 17
    stop_after(None)
    with checkpoints.resumable(tmp_path, every=1e-9) as scope:
        resumed = _train_run(X, y, model, params)
    assert stop_after.loads == [17] and scope.resumed and scope.prior_seconds > 0
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    assert (
        resumed.record_steps.tolist() == whole.record_steps.tolist() == [0, 10, 25, 60]
    )
    assert_same_tree(jax.device_get(resumed.records), jax.device_get(whole.records))
    assert_same_tree(jax.device_get(resumed.params), jax.device_get(whole.params))
    assert resumed.state.step == whole.state.step == 60


def _seed_run(X, y, model):
    params = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(1), 3), 5)
    rule = seeds.StoppingRule(
        max_epochs=400, patience=40, check_every=5, tolerance=1e-4
    )
    return seeds.train_seeds(
        model,
        params,
        lensbox.sgd(0.5),
        X,
        y,
        rule=rule,
        batch_size=4,
        seed=2,
        trackers={"f": predictions_tracker(model, X)},
        record_at=[7, 30],
    )


def test_stopped_seeds_resume_to_the_same_stops_and_records(tmp_path, stop_after):
    X, y = sign_task(n=12, d=5)
    model = lensbox.mlp((4,))
    whole = _seed_run(X, y, model)
    assert len(set(whole.stop_steps.tolist())) > 1  # the seeds stop at different steps
    assert whole.stop_steps.min() <= 30 < whole.stop_steps.max()
    stop_after(
        2
    )  # saved at the second check (5 epochs of 3 batches each), then stopped
    with pytest.raises(Stopped), checkpoints.resumable(tmp_path, every=1e-9):
        _seed_run(X, y, model)
    stop_after(None)
    with checkpoints.resumable(tmp_path, every=1e-9):
        resumed = _seed_run(X, y, model)
    assert stop_after.loads == [30]  # a seed had stopped, another had not
    assert_same_tree(jax.device_get(resumed), jax.device_get(whole))


def test_a_checkpoint_of_other_inputs_is_discarded_with_a_warning(tmp_path, stop_after):
    X, y = sign_task(n=12, d=5)
    model = lensbox.mlp((6,))
    params = model.init(jax.random.PRNGKey(0), 5)
    stop_after(2)
    with pytest.raises(Stopped), checkpoints.resumable(tmp_path, every=1e-9):
        _train_run(X, y, model, params)
    stop_after(None)
    other = model.init(jax.random.PRNGKey(1), 5)
    with pytest.warns(UserWarning, match="another computation"):
        with checkpoints.resumable(tmp_path, every=1e-9):
            resumed = _train_run(X, y, model, other)
    assert stop_after.loads == []
    np.testing.assert_array_equal(resumed.losses, _train_run(X, y, model, other).losses)


def test_outside_a_block_nothing_is_saved_and_the_interval_is_checked(tmp_path):
    assert (
        checkpoints.checkpoint("train", lambda: 1 / 0) is None
    )  # inputs not even read
    with pytest.raises(lensbox.ArgumentError, match="positive"):
        with checkpoints.resumable(tmp_path, every=0):
            pass
    with checkpoints.resumable(tmp_path, every=60) as scope:
        a, b = scope.point("x", np.ones(2)), scope.point("x", np.ones(2))
    assert (a.path.name, b.path.name) == ("loop0.pkl", "loop1.pkl")
    assert checkpoints.fingerprint(np.ones(2)) != checkpoints.fingerprint(
        np.ones(2, np.float32)
    )
    assert checkpoints.fingerprint([1, np.zeros(3)]) == checkpoints.fingerprint(
        [1, np.zeros(3)]
    )


def _trained_unit(config, unit):
    X, y = sign_task(n=12, d=5, seed=int(unit[-1]))
    model = lensbox.mlp((6,))
    params = model.init(jax.random.PRNGKey(0), 5)
    first = _train_run(X, y, model, params)
    second = train(
        model,
        first.state,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=20,
        steps_per_call=7,
        progress=False,
    )
    return {"losses": np.concatenate([first.losses, second.losses])}


def _trained_toy():
    configs = {s: {"seeds": 2} for s in R.EXPERIMENT_SCALES}
    return R.Experiment(
        name="trained",
        description="two training loops a unit",
        configs=configs,
        units=lambda c: [f"seed{s}" for s in range(c["seeds"])],
        run_unit=_trained_unit,
        seeds=lambda c, u: [int(u[-1])],
        paper_smoke={"seeds": 1},
    )


def test_the_runner_resumes_a_unit_inside_its_second_loop(
    tmp_path, monkeypatch, stop_after
):
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    real = checkpoints.resumable
    monkeypatch.setattr(
        R, "resumable", lambda folder: real(folder, every=1e-9)
    )  # save after every chunk
    toy = _trained_toy()
    # The first loop's 10 chunks (ending at steps 7, 10, 17, 24, 25, 32, ..., 60) and its final
    # save, then one chunk of the second loop.
    stop_after(12)
    with pytest.raises(Stopped):
        R.run(toy, "long", progress=False)
    partial = R.partial_dir(toy, "long", "seed0")
    assert sorted(p.name for p in partial.iterdir()) == [
        "elapsed.json",
        "loop0.pkl",
        "loop1.pkl",
    ]
    stop_after(None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = R.run(toy, "long", progress=False)
    assert stop_after.loads == [60, 7]  # the first loop done, the second resumed
    assert not partial.exists()
    _, prov = R.read_unit(R.unit_path(toy, "long", "seed0"))
    assert prov["wall_seconds"] > 0
    for unit in ("seed0", "seed1"):
        np.testing.assert_array_equal(
            out[unit]["losses"], _trained_unit({}, unit)["losses"]
        )
