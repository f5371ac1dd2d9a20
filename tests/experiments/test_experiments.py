"""Tests of lensbox.experiments: every registered experiment runs at smoke through the runner and
resumes after an interruption to the same units; committed results match the code's configuration."""

import dataclasses

import pytest
from fixtures import assert_same_tree

import lensbox
import lensbox.experiments as E
from lensbox.experiments.__main__ import main
from lensbox.runtime import results as R


@pytest.mark.parametrize("name", sorted(E.REGISTRY))
def test_each_experiment_runs_at_smoke_and_resumes_to_the_same_units(
    name, tmp_path, monkeypatch
):
    experiment = E.get(name)
    units = experiment.units(experiment.config("smoke"))
    assert len(units) >= 2 and len(set(units)) == len(units)
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path / "whole"))
    whole = R.run(experiment, "smoke", progress=False)
    assert list(whole) == units

    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path / "resumed"))

    def interrupted(config, unit, run=experiment.run_unit):
        if unit == units[1]:
            raise KeyboardInterrupt
        return run(config, unit)

    with pytest.raises(KeyboardInterrupt):
        R.run(
            dataclasses.replace(experiment, run_unit=interrupted),
            "smoke",
            progress=False,
        )
    assert R.missing_units(experiment, "smoke") == units[1:]
    calls = []

    def counted(config, unit, run=experiment.run_unit):
        calls.append(unit)
        return run(config, unit)

    resumed = R.run(
        dataclasses.replace(experiment, run_unit=counted), "smoke", progress=False
    )
    assert calls == units[1:]
    for unit in units:
        assert_same_tree(resumed[unit], whole[unit])


def test_the_boosting_chapter_reads_what_the_runner_stored(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    experiment = E.get("boosting")
    R.run(experiment, "smoke", progress=False)
    stored = R.load(experiment, "smoke")
    assert stored.source == "stored"
    assert set(stored.units) == set(experiment.units(experiment.config("smoke")))
    run = next(iter(stored.units.values()))
    assert run.R_nn.shape == run.proportions.shape  # a SeedResult, decoded
    live = E.results("boosting")  # smoke: always live
    assert live.source == "live" and "computed live" in capsys.readouterr().out


def test_the_command_line_lists_and_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(R.RESULTS_ENV, str(tmp_path))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "boosting:" in out and "0/4 units stored" in out
    experiment = E.get("boosting")
    units = experiment.units(experiment.config("smoke"))
    stopped = R.partial_dir(experiment, "smoke", units[1])
    stopped.mkdir(parents=True)
    (stopped / "elapsed.json").write_text('{"seconds": 1234.5}')
    assert main(["run", "boosting", "--scale", "smoke", "--first", units[2]]) == 0
    assert main(["list"]) == 0
    assert "4/4 units stored" in capsys.readouterr().out
    assert not stopped.exists()  # its checkpoint went when the unit was stored
    stopped.mkdir(parents=True)
    (stopped / "elapsed.json").write_text('{"seconds": 1234.5}')
    R.unit_path(experiment, "smoke", units[1]).unlink()
    assert main(["list"]) == 0
    assert f"missing: {units[1]} (checkpoint after 1,234 s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "no-such-experiment"])
    with pytest.raises(
        lensbox.ArgumentError, match=r"name must be a registered experiment \(boosting"
    ):
        E.get("no-such-experiment")


@pytest.mark.parametrize("name", sorted(E.REGISTRY))
def test_committed_results_match_the_codes_configuration(name, monkeypatch):
    """A stored result whose configuration the code no longer has is stale: it must be rerun or
    removed, never read as current. Checks the repository's own results/ folder."""
    monkeypatch.delenv(R.RESULTS_ENV, raising=False)
    experiment = E.get(name)
    assert R.stale_runs(experiment) == []
    for scale in R.EXPERIMENT_SCALES:
        manifest = R.run_dir(experiment, scale) / "manifest.json"
        if manifest.exists():
            import json

            assert json.loads(manifest.read_text())["config"] == experiment.config(
                scale
            )
