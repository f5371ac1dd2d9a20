"""The double-descent protocol (paper section 4.1, Fig. 3; App. C.1), and its main sweep as stored
units, one width each.

The *Double descent* chapter trains one-hidden-layer networks of growing width on MNIST 3 vs 5 with
a share of training labels flipped, under the paper's stopping rule, and reads each trained network
through both readings of the telescoping smoother (:func:`~lensbox.complexity.faithfulness.smoother_fit`).
:func:`fit_width` is one width of that protocol, the function both the chapter's sweeps and the
runner call; :data:`EXPERIMENT` is the chapter's main sweep (label noise ``noise``, every width of
``widths``), stored by ``python -m lensbox.experiments run double_descent``.
:data:`EXPERIMENT_MNIST1D` is the same sweep on MNIST-1D (Fig. 10) with the protocol of the
experiment the paper adapts it from (below), stored as ``double_descent_mnist1d``.

The protocol is the paper's at every scale (App. C.1): one hidden layer of ReLU units, squared
loss, SGD with heavy-ball momentum 0.95, batch 100 and learning rate 0.0025 (a long-run step of
0.05), the stopping rule (capped at 30,000 epochs except at smoke). The scales differ in data (the offline stand-in
below ``paper``), widths, seeds and how ``p`` is computed (``probes``: random probes, or ``None`` for
the exact smoother). With heavy-ball momentum :math:`\\beta` the rate is :math:`(1-\\beta)` times
the long-run step, so ``momentum=0`` keeps the long-run step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from lensbox.complexity.faithfulness import SmootherFit, smoother_fit
from lensbox.data import balanced_subsample, flip_labels, identity, load
from lensbox.engine.models import Model, Params, mlp
from lensbox.engine.optim import Optimizer, sgd
from lensbox.engine.seeds import StoppingRule, init_seeds
from lensbox.engine.checks import as_count
from lensbox.errors import ArgumentError, ShapeError
from lensbox.runtime.results import Experiment

#: The paper's 22 widths (App. C.1).
PAPER_WIDTHS = [1, 2, 5, 7, *range(10, 60, 5), 70, 85, 100, 200, 500, 1000, 2000, 5000]
#: The paper's long-run SGD step: learning rate 0.0025 at momentum 0.95, i.e. 0.0025 / (1 - 0.95).
PAPER_STEP = 0.05

_SMOKE = dict(
    widths=[1, 2, 10],
    clean_widths=[2, 10],
    seeds=2,
    cap=300,
    check_every=50,
    patience=100,
    n_train=40,
    probes=8,
)
# The paper's protocol on all 600 training images of the stand-in, at 11 of its 22 widths and 3
# seeds (the fewest the book's rule judges), p from 16 random probes; stored by the runner (about
# 45 minutes on 2 cores), so the chapter reads it instead of computing it.
_BOOK = dict(
    widths=[1, 2, 5, 10, 20, 30, 40, 70, 100, 200, 1000],
    clean_widths=[2, 20, 200],
    seeds=3,
    cap=30_000,
    check_every=10,
    patience=500,
    n_train=None,
    probes=16,
)
_PAPER_STEP = dict(
    activation="relu", momentum=0.95, optimiser="paper", lr_fraction=None, batch=100
)
# probes: None for the exact smoother (paper scale, on a GPU); k for the probe route
# (lensbox.smoother_tracker), whose p comes with a standard error.
_COMMON = dict(data="mnist_3v5", noise=0.2, probes=None)
# The paper's grid (App. C.1): its 22 widths, 4 seeds, the 30,000-epoch cap, all training images.
_PAPER_GRID = dict(
    widths=PAPER_WIDTHS, seeds=4, cap=30_000, check_every=10, patience=500, n_train=None
)
CONFIGS = {
    "smoke": {**_COMMON, **_PAPER_STEP, **_SMOKE},
    "book": {**_COMMON, **_PAPER_STEP, **_BOOK},
    # The paper's grid on the offline stand-in, p from 32 random probes (the exact momentum
    # smoother costs 0.64 s a step at width 1,000 here, calibration.md); run in the background,
    # unit by unit, over several sessions.
    "long": {
        **_COMMON,
        **_PAPER_STEP,
        **_PAPER_GRID,
        "probes": 32,
        "clean_widths": [1, 2, 5, 10, 20, 50, 100, 200, 1000, 2000],
    },
    "paper": {**_COMMON, **_PAPER_STEP, **_PAPER_GRID},
}
#: The paper's choices at smoke sizes, for the tests' override ``LENSBOX_PAPER_BUDGET=smoke``.
PAPER_SMOKE = {**_COMMON, **_PAPER_STEP, **_SMOKE}

#: The widths of the paper's MNIST-1D sweep (App. C.1, Fig. 10).
MNIST1D_WIDTHS = [1, 2, 3, 5, 10, 20, 30, 40, 50, 70, 100, 200, 300, 400]
# MNIST-1D (App. C.1): classes 0 and 1 of the published data set, 15 % of training labels flipped,
# one hidden layer of ReLU units, batch 100, learning rate 0.01, 500 epochs, no stopping rule. The
# paper does not state the optimiser; the experiment it adapts (Greydanus & Kobak 2024, MNIST-1D's
# double-descent notebook) uses SGD with heavy-ball momentum 0.9 (PyTorch's convention), so do we.
_MNIST1D_COMMON = dict(
    data="mnist1d_0v1",
    noise=0.15,
    activation="relu",
    optimiser="sgd",
    learning_rate=0.01,
    momentum=0.9,
    batch=100,
    cap=500,
    check_every=500,
    patience=500,
    stop_at_fit=False,
    n_train=None,
)
MNIST1D_CONFIGS = {
    "smoke": {
        **_MNIST1D_COMMON,
        "widths": [2, 20],
        "seeds": 2,
        "cap": 5,
        "check_every": 5,
        "patience": 5,
        "probes": 8,
    },
    # Five of the paper's widths, 3 seeds (the fewest the book's rule judges), 16 probes.
    "book": {
        **_MNIST1D_COMMON,
        "widths": [1, 5, 20, 100, 400],
        "seeds": 3,
        "probes": 16,
    },
    # The paper's grid, p from 32 random probes; and a width beyond it (twice its widest), which
    # only diagnoses where the test error goes past the paper's range. (Width 1,600 diverges at
    # this step: seed 0's training loss was non-finite by step 3,500, measured 2026-12-07.)
    "long": {
        **_MNIST1D_COMMON,
        "widths": MNIST1D_WIDTHS,
        "beyond_widths": [800],
        "seeds": 4,
        "probes": 32,
    },
    # The paper's grid with the exact smoother.
    "paper": {
        **_MNIST1D_COMMON,
        "widths": MNIST1D_WIDTHS,
        "seeds": 4,
        "probes": None,
    },
}


def training_data(config: Mapping[str, Any]):
    """``(X_train, y_train, X_test, y_test)``: ``n_train`` training images drawn balanced by class
    (seed 0; ``None``: all of them) and every test image of ``config["data"]``."""
    ds = load(config["data"])
    if config["n_train"] is None:
        X_train, y_train = ds.X_train, ds.y_train
    else:
        X_train, y_train = balanced_subsample(
            ds.X_train, ds.y_train, config["n_train"], seed=0
        )
    return X_train, y_train, ds.X_test, ds.y_test


def labels(y, noise: float, seeds: int) -> np.ndarray:
    """Each seed's training labels, with its own ``noise`` fraction flipped (seed ``1000 + s``)."""
    seeds = as_count(seeds, "seeds", minimum=1)
    if not 0.0 <= float(noise) <= 1.0:
        raise ArgumentError(f"noise must be a fraction in [0, 1]; got {noise!r}.")
    return np.stack([flip_labels(y, noise, seed=1000 + s)[0] for s in range(seeds)])


def stopping_rule(config: Mapping[str, Any]) -> StoppingRule:
    """The paper's rule with the configuration's cap, check interval and patience (in epochs); with
    ``stop_at_fit=False`` (MNIST-1D) training runs its ``cap`` epochs whatever the fit."""
    if config.get("stop_at_fit", True):
        return StoppingRule(
            max_epochs=config["cap"],
            check_every=config["check_every"],
            patience=config["patience"],
        )
    return StoppingRule(
        max_epochs=config["cap"],
        check_every=config["check_every"],
        patience=config["patience"],
        tolerance=0.0,
        perfect_accuracy=False,
    )


def optimizer_for(
    model: Model, params: Params, X, config: Mapping[str, Any], momentum: float
) -> tuple[Optimizer, int | None]:
    """``(optimiser, batch size)`` of the configuration at heavy-ball ``momentum``: ``"paper"``
    keeps the paper's long-run step (see the module docstring), ``"sgd"`` uses the configuration's
    ``learning_rate`` as it is (MNIST-1D); the batch becomes full batch on a smaller training set."""
    batch = config["batch"] if len(X) > config["batch"] else None
    if config["optimiser"] == "paper":
        return sgd((1 - momentum) * PAPER_STEP, momentum=momentum), batch
    if config["optimiser"] == "sgd":
        return sgd(config["learning_rate"], momentum=momentum), batch
    raise ArgumentError(
        "config['optimiser'] must be 'paper' (the paper's SGD, long-run step 0.05) or 'sgd' "
        f"(SGD at config['learning_rate']); got {config['optimiser']!r}."
    )


def fit_width(
    width: int,
    X,
    Y,
    X_test,
    y_test,
    config: Mapping[str, Any],
    *,
    rule: StoppingRule,
    smoother: bool = True,
    momentum: float | None = None,
    activation: str | None = None,
) -> SmootherFit:
    """One width of the protocol: ``Y.shape[0]`` seeds of a one-hidden-layer network (initialised
    from ``PRNGKey(width)``) trained under ``rule``; with ``smoother`` both readings of the
    smoother are tracked (:func:`~lensbox.complexity.faithfulness.smoother_fit` with
    ``realised=True``), without it the
    network only. ``momentum`` and ``activation`` default to the configuration's."""
    momentum = config["momentum"] if momentum is None else momentum
    activation = config["activation"] if activation is None else activation
    model = mlp((int(width),), activation=activation)
    params = init_seeds(
        model, jax.random.split(jax.random.PRNGKey(int(width)), len(Y)), X.shape[1]
    )
    opt, batch = optimizer_for(model, params, X, config, momentum)
    return smoother_fit(
        model,
        params,
        opt,
        X,
        Y,
        X_test,
        y_test,
        rule=rule,
        smoother=smoother,
        realised=smoother,
        batch_size=batch,
        probes=config.get("probes"),
    )


class Landmarks(NamedTuple):
    """Where a width sweep's double descent sits (indices into its widths)."""

    #: The interpolation threshold: the first width at which every seed fits every training label
    #: (the last width when none does; see ``interpolates``).
    threshold: int
    #: The first descent's minimum: the lowest mean test MSE below the threshold (the first width
    #: when none lies below it).
    minimum: int
    #: The peak: the largest mean test MSE from the minimum on.
    peak: int
    #: Whether some width fits every training label on every seed.
    interpolates: bool


def landmarks(test_mse, train_error) -> Landmarks:
    """The :class:`Landmarks` of a sweep from its per-seed results, arrays of shape
    ``(seeds, widths)`` with the widths in increasing order: the test MSE and the training
    misclassification rate (against the labels trained on, noisy ones included)."""
    test_mse, train_error = np.asarray(test_mse, float), np.asarray(train_error, float)
    if test_mse.ndim != 2 or test_mse.shape != train_error.shape or test_mse.size == 0:
        raise ShapeError(
            "test_mse and train_error must be non-empty arrays of the same shape (seeds, widths); "
            f"got {test_mse.shape} and {train_error.shape}."
        )
    fits_all = np.all(train_error == 0, axis=0)
    threshold = int(np.argmax(fits_all)) if fits_all.any() else test_mse.shape[1] - 1
    mean = test_mse.mean(axis=0)
    minimum = int(np.argmin(mean[:threshold])) if threshold > 0 else 0
    peak = minimum + int(np.argmax(mean[minimum:]))
    return Landmarks(threshold, minimum, peak, bool(fits_all.any()))


def unit_name(width: int, *, clean: bool = False) -> str:
    """``width20`` for the main sweep (label noise ``config["noise"]``), ``clean-width20`` for the
    sweep without label noise (Fig. 9, right)."""
    return f"{'clean-' if clean else ''}width{int(width)}"


def units(config: Mapping[str, Any]) -> list[str]:
    """The main sweep's widths (``widths``, then any ``beyond_widths`` past the paper's range),
    then the widths of ``clean_widths`` without label noise."""
    noisy = [*config["widths"], *config.get("beyond_widths", ())]
    return [unit_name(w) for w in noisy] + [
        unit_name(w, clean=True) for w in config.get("clean_widths", ())
    ]


def run_unit(config: Mapping[str, Any], unit: str) -> SmootherFit:
    """One width of the main sweep (label noise ``config["noise"]``) or of the sweep without
    noise (``clean-width...``), both readings of the smoother tracked."""
    clean = unit.startswith("clean-")
    digits = unit.removeprefix("clean-").removeprefix("width")
    if not (unit.removeprefix("clean-").startswith("width") and digits.isdigit()):
        raise ArgumentError(
            f"unit must name a width, {unit_name(20)!r} or {unit_name(20, clean=True)!r} say; "
            f"got {unit!r}."
        )
    X, y, X_test, y_test = training_data(config)
    Y = labels(y, 0.0 if clean else config["noise"], config["seeds"])
    return fit_width(
        int(digits), X, Y, X_test, y_test, config, rule=stopping_rule(config)
    )


def _unit_seeds(config: Mapping[str, Any], unit: str) -> list[int]:
    # every unit's seeds draw its flipped labels (labels: seed 1000 + s)
    return [1000 + s for s in range(config["seeds"])]


def _data_sets(config: Mapping[str, Any], scale: str) -> dict[str, str]:
    return {config["data"]: identity(config["data"], scale)}


EXPERIMENT = Experiment(
    name="double_descent",
    description="test error and effective parameters against width (section 4.1, Fig. 3)",
    configs=CONFIGS,
    units=units,
    run_unit=run_unit,
    seeds=_unit_seeds,
    paper_smoke=PAPER_SMOKE,
    data=_data_sets,
    x64=False,  # float32, as the chapter computes (lensbox.setup(x64=False))
)

EXPERIMENT_MNIST1D = Experiment(
    name="double_descent_mnist1d",
    description="test error and effective parameters against width on MNIST-1D (Fig. 10)",
    configs=MNIST1D_CONFIGS,
    units=units,
    run_unit=run_unit,
    seeds=_unit_seeds,
    paper_smoke=MNIST1D_CONFIGS["smoke"],
    data=_data_sets,
    x64=False,
)
