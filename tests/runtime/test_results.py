"""Tests of lensbox.runtime.results: units stored one by one, atomically, with provenance, resumed
after a kill, read back only when the configuration's hash matches."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures import assert_same_tree

import lensbox
from lensbox.runtime import results as R

ROOT = Path(__file__).resolve().parents[2]


def _unit(config, unit):
    """A deterministic unit: numbers drawn from the unit's seed, in a nested structure."""
    seed = int(unit.removeprefix("seed"))
    rng = np.random.default_rng(seed)
    return {
        "values": rng.normal(size=(config["n"], 2)),
        "mean": float(rng.normal()),
        "label": unit,
        "nested": [np.arange(3) * seed, None, {0.5: True}],
    }


def _toy(name="toy", n=3, calls=None, fail_at=None):
    def run_unit(config, unit):
        if calls is not None:
            calls.append(unit)
        if unit == fail_at:
            raise KeyboardInterrupt("interrupted")
        return _unit(config, unit)

    configs = {s: {"n": n, "seeds": 3, "scale_tag": s} for s in R.EXPERIMENT_SCALES}
    return R.Experiment(
        name=name,
        description="a toy",
        configs=configs,
        units=lambda c: [f"seed{s}" for s in range(c["seeds"])],
        run_unit=run_unit,
        seeds=lambda c, u: [int(u.removeprefix("seed"))],
        paper_smoke={"n": 1, "seeds": 1, "scale_tag": "paper-smoke"},
    )


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    return tmp_path


def test_a_unit_round_trips_with_its_provenance(store):
    value = _unit({"n": 2}, "seed4")
    path = store / "x" / "u.npz"
    R.write_unit(path, value, {"note": "hand-made"})
    back, prov = R.read_unit(path)
    assert_same_tree(value["values"], back["values"])
    assert back["nested"][2] == {0.5: True} and back["label"] == "seed4"
    assert prov == {"note": "hand-made"}
    with pytest.raises(lensbox.ArgumentError, match="got object"):
        R.write_unit(store / "y.npz", {"bad": object()}, {})
    assert not (store / "y.npz").exists()


def test_run_stores_each_unit_with_provenance_and_a_rerun_computes_nothing(store):
    calls = []
    toy = _toy(calls=calls)
    out = R.run(toy, "book", progress=False)
    assert calls == ["seed0", "seed1", "seed2"]
    folder = store / "toy" / toy.hash("book")
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "seed0.npz",
        "seed1.npz",
        "seed2.npz",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"] == toy.config("book") and manifest["units"] == list(out)
    _, prov = R.read_unit(folder / "seed1.npz")
    assert prov["config_hash"] == toy.hash("book") and prov["seeds"] == [1]
    assert prov["config"] == toy.config("book") and prov["wall_seconds"] >= 0
    assert prov["machine"]["cpu_count"] == os.cpu_count() and prov["x64"] is True
    assert prov["git_commit"] and prov["lensbox_version"]
    again = R.run(toy, "book", progress=False)
    assert calls == ["seed0", "seed1", "seed2"]  # nothing computed twice
    for unit in out:
        assert_same_tree(out[unit], again[unit])


def test_an_interrupted_unit_leaves_no_file_and_the_run_resumes_where_it_stopped(store):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        R.run(_toy(calls=calls, fail_at="seed1"), "long", progress=False)
    folder = store / "toy" / _toy().hash("long")
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "seed0.npz"]
    calls.clear()
    resumed = R.run(_toy(calls=calls), "long", progress=False)
    assert calls == ["seed1", "seed2"]
    for unit, value in resumed.items():
        assert_same_tree(value, _unit(_toy().config("long"), unit))


def test_a_changed_configuration_writes_under_a_new_hash_and_the_old_one_is_stale(
    store,
):
    R.run(_toy(n=3), "book", progress=False)
    changed = _toy(n=4)
    assert changed.hash("book") != _toy(n=3).hash("book")
    assert R.load(changed, "book") is None  # the stored n=3 run is not read as n=4
    assert R.stale_runs(changed) == [store / "toy" / _toy(n=3).hash("book")]
    assert R.stale_runs(_toy(n=3)) == []
    R.run(changed, "book", progress=False)
    assert len(list((store / "toy").iterdir())) == 2  # both kept, nothing overwritten


def test_load_or_run_reads_a_complete_stored_run_else_computes_live(store, capsys):
    calls = []
    live = R.load_or_run(_toy(calls=calls), "book")
    assert live.source == "live" and live.scale == "book" and len(calls) == 3
    assert "computed live" in live.describe()
    assert not (store / "toy").exists()  # a live run stores nothing
    R.run(_toy(), "long", progress=False)
    calls.clear()
    stored = R.load_or_run(_toy(calls=calls), "book")
    assert calls == [] and stored.source == "stored" and stored.scale == "long"
    assert stored.config["scale_tag"] == "long"
    assert f"results/toy/{_toy().hash('long')}/" in stored.describe()
    # smoke never reads a stored run
    assert R.load_or_run(_toy(), "smoke").source == "live"


def test_the_tests_paper_override_computes_the_paper_smoke_configuration(
    store, monkeypatch
):
    monkeypatch.setenv("LENSBOX_SCALE", "paper")
    monkeypatch.setenv("LENSBOX_PAPER_BUDGET", "smoke")
    found = R.load_or_run(_toy())
    assert found.config["scale_tag"] == "paper-smoke" and list(found.units) == ["seed0"]


def test_an_experiment_needs_every_scale():
    with pytest.raises(lensbox.ArgumentError, match="no configuration for"):
        R.Experiment("x", "x", {"smoke": {}}, lambda c: [], lambda c, u: None)


_KILLED_RUN = textwrap.dedent(
    """
    import dataclasses, sys, time
    sys.path.insert(0, {tests!r})
    from runtime.test_results import _toy
    from lensbox.runtime import results as R

    toy = _toy()
    def slow_unit(config, unit, run=toy.run_unit):
        if unit == "seed1":
            time.sleep(120)  # killed while computing its second unit
        return run(config, unit)

    R.run(dataclasses.replace(toy, run_unit=slow_unit), "long", progress=False)
    """
)


def test_a_killed_run_resumes_to_the_same_units_as_an_uninterrupted_one(
    tmp_path, monkeypatch
):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, R.RESULTS_ENV: str(killed)}
    script = _KILLED_RUN.format(tests=str(ROOT / "tests"))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    folder = killed / "toy" / _toy().hash("long")
    deadline = time.monotonic() + 120
    while not (folder / "seed0.npz").exists():
        assert proc.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = sorted(p.name for p in folder.iterdir())
    assert left == ["manifest.json", "seed0.npz"], left  # no partial file of seed1
    monkeypatch.setenv(R.RESULTS_ENV, str(killed))
    calls = []
    resumed = R.run(_toy(calls=calls), "long", progress=False)
    assert calls == ["seed1", "seed2"]
    monkeypatch.setenv(R.RESULTS_ENV, str(whole))
    uninterrupted = R.run(_toy(), "long", progress=False)
    for unit in uninterrupted:
        assert_same_tree(resumed[unit], uninterrupted[unit])


def test_a_write_that_fails_half_way_leaves_neither_the_unit_nor_a_temporary_file(
    store, monkeypatch
):
    def half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(R.np, "savez_compressed", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        R.write_unit(store / "exp" / "u.npz", {"x": np.ones(3)}, {})
    assert list((store / "exp").iterdir()) == []


def test_the_precision_is_part_of_the_hash_and_is_used(store):
    import jax

    toy = _toy()
    single = R.Experiment(**{**toy.__dict__, "x64": False})
    assert single.hash("book") != toy.hash("book")
    seen = {}

    def record_precision(config, unit):
        seen[unit] = jax.numpy.ones(1).dtype.name
        return 0

    for kind, expected in ((single, "float32"), (toy, "float64")):
        R.run(
            R.Experiment(**{**kind.__dict__, "run_unit": record_precision}),
            "smoke",
            progress=False,
        )
        assert set(seen.values()) == {expected}
        seen.clear()


def test_results_live_in_the_checkout_or_where_an_installed_lensbox_runs(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(R.RESULTS_ENV, raising=False)
    assert R.results_dir() == ROOT / "results"  # this checkout
    installed = tmp_path / "site-packages" / "lensbox" / "runtime" / "results.py"
    monkeypatch.setattr(R, "__file__", str(installed))
    monkeypatch.chdir(tmp_path)
    assert R.results_dir() == tmp_path / "results"
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path / "mine"))
    assert R.results_dir() == tmp_path / "mine"


def test_the_runner_loads_each_configurations_own_data_scale_and_times_each_unit(
    store, monkeypatch
):
    """``run NAME --scale paper`` from a shell at the default scale must read the paper's data
    sets (lensbox.data.load follows LENSBOX_SCALE); ``long`` reads the book's offline data."""
    seen = []
    toy = R.Experiment(
        name="scales",
        description="records the scale its units see",
        configs={s: {"tag": s} for s in R.EXPERIMENT_SCALES},
        units=lambda c: ["a", "b"],
        run_unit=lambda c, u: (
            seen.append(lensbox.scale()) or {"scale": lensbox.scale()}
        ),
    )
    monkeypatch.setenv("LENSBOX_SCALE", "smoke")
    for scale, data_scale in (("paper", "paper"), ("long", "book"), ("book", "book")):
        seen.clear()
        stored = R.run(toy, scale, progress=False)
        assert seen == [data_scale] * 2
        assert {u: r["scale"] for u, r in stored.items()} == {
            "a": data_scale,
            "b": data_scale,
        }
        assert lensbox.scale() == "smoke"  # the shell's scale again
    read = R.load(toy, "long")
    assert set(read.seconds) == {"a", "b"} and read.total_seconds() >= 0
    assert read.seconds["a"] == read.provenance["a"]["wall_seconds"]
    live = R.load_or_run(toy, "smoke")
    assert live.source == "live" and set(live.seconds) == {"a", "b"}
    assert live.total_seconds("a") == live.seconds["a"]


def test_the_runners_progress_shows_units_and_each_units_steps(store, capsys):
    import jax

    from fixtures import sign_task

    def run_unit(config, unit):
        X, y = sign_task(n=8, d=2)
        model = lensbox.mlp((4,))
        params = model.init(jax.random.PRNGKey(0), 2)
        result = lensbox.train(
            model, params, lensbox.sgd(0.1), X, y, steps=config["steps"]
        )
        return {"loss": np.asarray(result.losses)}

    toy = R.Experiment(
        name="steps",
        description="one short training run per unit",
        configs={s: {"steps": 40} for s in R.EXPERIMENT_SCALES},
        units=lambda c: ["first", "second"],
        run_unit=run_unit,
    )
    R.run(toy, "smoke", progress=True)
    err = capsys.readouterr().err
    assert "steps (smoke) units" in err and "2/2" in err
    assert "second: steps" in err and "40/40" in err


def test_the_data_a_configuration_reads_is_part_of_its_hash(store):
    """A changed stand-in (the same configuration on other data) is a changed result: its runs
    are stored under another hash and the old ones become stale, never read as current."""
    described = {"digits": "offline: scikit-learn digits"}
    toy = R.Experiment(
        name="on_data",
        description="reads one data set",
        configs={s: {"n": 1} for s in R.EXPERIMENT_SCALES},
        units=lambda c: ["only"],
        run_unit=lambda c, u: {"x": 1.0},
        data=lambda config, scale: {"digits": f"{described['digits']} ({scale})"},
    )
    plain = R.Experiment(**{**toy.__dict__, "data": None})
    assert plain.hash("book") == R.config_hash(
        "on_data", {"n": 1}
    )  # no data: as before
    assert toy.hash("book") != plain.hash("book")
    assert toy.data_sets("long") == {"digits": "offline: scikit-learn digits (book)"}
    R.run(toy, "long", progress=False)
    assert json.loads((R.run_dir(toy, "long") / "manifest.json").read_text())[
        "data"
    ] == (toy.data_sets("long"))
    before = toy.hash("long")
    described["digits"] = "offline: real MNIST"
    assert toy.hash("long") != before
    assert R.load(toy, "long") is None and [p.name for p in R.stale_runs(toy)] == [
        before
    ]


def test_describe_names_every_commit_and_keeps_the_modified_flag():
    commits = R._commits(
        [
            {"git_commit": "a" * 40 + " (lensbox modified)"},
            {"git_commit": "b" * 40},
            {"git_commit": "b" * 40},
        ]
    )
    assert commits == f"commits {'a' * 12} (lensbox modified), {'b' * 12}"
    assert R._commits([{"git_commit": "c" * 40}]) == f"commit {'c' * 12}"


def test_run_computes_the_units_named_first_then_the_rest(store):
    calls = []
    R.run(_toy(calls=calls), "long", progress=False, first=["seed2", "seed0", "seed2"])
    assert calls == ["seed2", "seed0", "seed1"]
    calls.clear()
    R.run(_toy(calls=calls), "long", progress=False, first=["seed1"])
    assert calls == []  # every unit stored: nothing named first is computed again
    with pytest.raises(lensbox.ArgumentError, match="toy has no unit 'seed9'"):
        R.run(_toy(), "book", progress=False, first=["seed9"])
    assert not (store / "toy" / _toy().hash("book")).exists()
