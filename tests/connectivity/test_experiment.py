"""Tests of lensbox.connectivity.experiment: the configurations, and each arm's result shaped by its
configuration (spawn steps x seeds x pairs) surviving the results store unchanged."""

import json

import numpy as np
import pytest
from fixtures import assert_same_tree

import lensbox
from lensbox.connectivity import experiment as mc
from lensbox.runtime import results as R


def test_configurations_are_json_and_say_their_branch():
    for config in [*mc.CONFIGS.values(), mc.PAPER_SMOKE]:
        assert json.loads(json.dumps(config)) == config  # what the manifest stores
        assert set(config) == set(mc.CONFIGS["book"])
    assert not mc.CONFIGS["smoke"]["paper"] and not mc.CONFIGS["long"]["paper"]
    # The paper's choices (App. C.3) at smoke sizes, for the tests' paper override.
    paper, smoke = mc.PAPER_SMOKE, mc.CONFIGS["smoke"]
    assert paper["paper"] and paper["lr"] == 0.1 and paper["pre_divisor"] == 5.0
    assert paper["decay_at"] == [32_000, 48_000] and paper["ft_decay_at"] == [
        6_400,
        9_600,
    ]
    assert all(paper[k] == smoke[k] for k in ("steps", "spawn", "seeds", "widths"))
    # The book's schedule: the paper's boundaries at 51 % and 76 % of the steps.
    book = mc.CONFIGS["book"]
    assert book["decay_at"] == [408, 608] and book["pre_decay_at"] == [204, 304]
    assert mc.EXPERIMENT.units(book) == ["scratch", "finetuned", "control"]


def test_long_is_the_papers_budget_counted_in_the_books_epochs():
    long, book = mc.CONFIGS["long"], mc.CONFIGS["book"]
    sizes = ("steps", "spawn", "pre_steps", "ft_steps", "ft_spawn")
    budget = sizes + ("decay_at", "pre_decay_at", "ft_decay_at")
    assert {k: v for k, v in long.items() if k not in budget} == {
        **{k: v for k, v in book.items() if k not in budget},
        "seeds": 5,
        "pairs": 3,
    }
    prob = mc.problem(long)  # the epochs the configuration assumes are the data's
    assert prob.epoch == mc.BOOK_EPOCH == 20
    assert int(prob.X_pre.shape[0]) // long["batch"] == mc.BOOK_PRE_EPOCH == 70
    # 63,000 steps at 390 per epoch is 161.5 epochs; at 20 steps per epoch, 3,231 steps
    assert long["steps"] == 3231 and abs(long["steps"] / 20 - 63_000 / 390) < 0.05
    assert long["decay_at"] == [1641, 2462] and long["ft_steps"] == 656
    assert (
        long["spawn"][-1] == 1287 and len(long["spawn"]) == 11
    )  # 0 and 4 both round to 0
    assert long["ft_spawn"] == long["spawn"][:9]
    assert long["pre_steps"] == 3671 and long["pre_decay_at"] == [1836, 3059]


def test_each_arm_is_shaped_by_its_configuration_and_stores_unchanged(tmp_path):
    config = {
        **mc.CONFIGS["smoke"],
        "steps": 12,
        "spawn": [0, 4],
        "pairs": 2,
        "alphas": 3,
        "pre_steps": 6,
        "ft_steps": 12,
        "ft_spawn": [0],
        "decay_at": mc.scaled_schedule(12),
    }
    seeds, pairs = config["seeds"], config["pairs"]
    alphas = len(mc.alphas(config))
    for unit, spawn in (("scratch", 2), ("finetuned", 1), ("control", 1)):
        result = mc.EXPERIMENT.compute(config, unit)
        layers = len(result["layers"])
        for bn in ("interpolate", "recompute"):
            assert result["curves"][bn]["accuracy"].shape == (
                spawn,
                seeds,
                pairs,
                alphas,
            )
            assert result["barriers"][bn]["error_max"].shape == (spawn, seeds, pairs)
        assert result["gradient_change"].shape == (spawn, seeds, layers)
        assert result["eq10"]["gap_wa_ens"].shape == (spawn, seeds)
        assert result["child_accuracy"].shape == (spawn, seeds, pairs, 2)
        assert np.all(np.isfinite(result["gradient_change"]))
        path = tmp_path / f"{unit}.npz"
        R.write_unit(path, result, {})
        stored, _ = R.read_unit(path)
        assert stored["layers"] == [list(pair) for pair in result["layers"]]
        assert_same_tree(stored, {**result, "layers": stored["layers"]})
    with pytest.raises(lensbox.ArgumentError, match="no unit"):
        mc.run_unit(config, "warm-start")
