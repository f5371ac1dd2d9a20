"""Tests of lensbox.complexity.double_descent: the two sweeps' protocols (Fig. 3 and Fig. 10)."""

import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.complexity import double_descent as dd
from lensbox.engine.models import mlp


def _first_two_steps(opt):
    params, grads = {"w": jnp.array([1.0])}, {"w": jnp.array([1.0])}
    state = opt.init(params)
    first, state = opt.update(grads, state, params)
    second, _ = opt.update(grads, state, params)
    return float(first["w"][0]), float(second["w"][0])


def test_the_mnist1d_sweep_uses_its_own_step_and_the_papers_sweep_keeps_the_long_run_step():
    model = mlp((3,))
    X = np.zeros((794, 40))
    opt, batch = dd.optimizer_for(model, None, X, dd.MNIST1D_CONFIGS["long"], 0.9)
    assert batch == 100
    # heavy ball: -lr g, then -lr (0.9 g + g)
    assert np.allclose(_first_two_steps(opt), (-0.01, -0.019))
    opt, batch = dd.optimizer_for(model, None, X[:600], dd.CONFIGS["long"], 0.95)
    assert batch == 100
    assert np.allclose(_first_two_steps(opt)[0], -(1 - 0.95) * dd.PAPER_STEP)
    # a training set no larger than the batch is trained full batch
    assert dd.optimizer_for(model, None, X[:50], dd.CONFIGS["long"], 0.95)[1] is None


def test_the_mnist1d_rule_trains_every_epoch_and_the_papers_rule_stops_at_a_fit():
    rule = dd.stopping_rule(dd.MNIST1D_CONFIGS["long"])
    assert (rule.max_epochs, rule.perfect_accuracy, rule.tolerance) == (500, False, 0.0)
    paper = dd.stopping_rule(dd.CONFIGS["long"])
    assert (paper.max_epochs, paper.perfect_accuracy, paper.patience) == (
        30_000,
        True,
        500,
    )


def test_an_mnist1d_unit_trains_its_whole_budget_on_every_seed():
    config = dd.MNIST1D_CONFIGS["smoke"]
    fit = dd.run_unit(config, "width2")
    steps_per_epoch = -(-794 // config["batch"])  # the last, smaller batch counts
    assert fit.stop_steps.shape == (config["seeds"],)
    assert np.all(fit.stop_steps == fit.stop_steps[0])
    assert fit.stop_steps[0] in (
        config["cap"] * steps_per_epoch,
        config["cap"] * (794 // config["batch"]),
    )
    assert fit.p_train_se is not None  # the probe route at every scale below paper


def test_an_unknown_optimiser_is_refused_by_name():
    config = {**dd.MNIST1D_CONFIGS["smoke"], "optimiser": "adam"}
    with pytest.raises(lensbox.ArgumentError, match=r"config\['optimiser'\] must be"):
        dd.optimizer_for(mlp((2,)), None, np.zeros((10, 40)), config, 0.9)


def test_landmarks_find_the_threshold_the_first_minimum_and_the_peak():
    # two seeds, five widths: width 3 is the first that every seed fits
    train_error = np.array([[0.3, 0.1, 0.0, 0.0, 0.0], [0.3, 0.2, 0.05, 0.0, 0.0]])
    test_mse = np.array([[0.3, 0.2, 0.4, 0.5, 0.3], [0.3, 0.2, 0.5, 0.4, 0.3]])
    got = dd.landmarks(test_mse, train_error)
    assert got == dd.Landmarks(threshold=3, minimum=1, peak=2, interpolates=True)
    # no width fits: the threshold is the last width; nothing below the first: minimum 0
    none = dd.landmarks(test_mse, train_error + 0.01)
    assert (none.threshold, none.interpolates) == (4, False)
    first = dd.landmarks(test_mse, np.zeros_like(train_error))
    assert (first.threshold, first.minimum, first.peak) == (0, 0, 2)


def test_landmarks_refuse_arrays_of_different_shapes():
    with pytest.raises(lensbox.ShapeError, match="same shape"):
        dd.landmarks(np.zeros((2, 3)), np.zeros((3, 2)))
