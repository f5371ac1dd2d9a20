"""The linear-mode-connectivity case study's experiment (paper section 4.3, App. C.3) as stored units.

One unit is one *arm* of the experiment, the dict of
:func:`lensbox.connectivity.barriers.measure_spawns` for it:

``scratch``
    parents from random initialisation, children spawned at every ``spawn`` step;
``finetuned``
    parents pre-trained first on the ``svhn`` set (SVHN at ``paper`` scale; its offline stand-in,
    real MNIST digits, in the book's analogue), then fine-tuned on the full task, children spawned at every ``ft_spawn`` step;
``control``
    as ``scratch`` at the small learning rate ``lr_control``, children spawned at :math:`t' = 0`
    only.

The *Mode connectivity* chapter reads them through :func:`lensbox.experiments.results`;
``python -m lensbox.experiments run mode_connectivity --scale long`` stores every unit under
``results/mode_connectivity/<config hash>/``. Each configuration names its branch explicitly
(``paper``: ResNet-20 on CIFAR-10 with SVHN pre-training, real data; otherwise a residual MLP
on scikit-learn's digits, pre-trained on 4,500 real MNIST digits of all ten classes), so a unit computes the same thing whatever ``LENSBOX_SCALE`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.connectivity.augment import augment
from lensbox.connectivity.barriers import measure_spawns
from lensbox.connectivity.networks import BatchNormNetwork, residual_mlp, resnet
from lensbox.connectivity.spawning import (
    SpawnState,
    index,
    init_state,
    make_trainer,
    train_children,
    train_to_checkpoints,
)
from lensbox.data import Dataset, identity, load
from lensbox.engine.optim import Optimizer, Schedule, sgd
from lensbox.engine.checks import as_count
from lensbox.errors import ArgumentError
from lensbox.runtime.results import Experiment

#: The units, in the order they run (the chapter's order).
UNITS = ("scratch", "finetuned", "control")

#: The paper's step boundaries (App. C.3): training, pre-training on SVHN, fine-tuning.
PAPER_DECAY_AT = [32_000, 48_000]
PAPER_PRE_DECAY_AT = [15_000, 25_000]
PAPER_FT_DECAY_AT = [6_400, 9_600]


def scaled_schedule(steps: int) -> list[int]:
    """The paper's boundaries at 51 % and 76 % of its 63,000 steps, scaled to ``steps``."""
    steps = as_count(steps, "steps", minimum=1)
    return [int(0.51 * steps), int(0.76 * steps)]


_SMOKE = {
    "widths": [8, 8, 16],
    "blocks": 1,
    "steps": 30,
    "spawn": [0, 5, 10],
    "seeds": 2,
    "pairs": 1,
    "batch": 32,
    "alphas": 5,
    "grad_rows": 16,
    "stats_rows": 128,
    "test_rows": 64,
    "pre_steps": 20,
    "ft_steps": 30,
    "ft_spawn": [0, 10],
}
_BOOK = {
    "widths": [64],
    "blocks": 1,
    "steps": 800,
    "spawn": [0, 5, 20, 50, 100, 200, 400],
    "seeds": 3,
    "pairs": 1,
    "batch": 64,
    "alphas": 11,
    "grad_rows": 256,
    "stats_rows": 1297,
    "test_rows": 500,
    "pre_steps": 400,
    "ft_steps": 400,
    "ft_spawn": [0, 5, 20, 50, 100, 200],
}
_PAPER = {
    "widths": [16, 32, 64],
    "blocks": 3,
    "steps": 63_000,
    "spawn": [0, 4, 25, 50, 100, 224, 500, 1000, 2000, 4472, 10_000, 25_100],
    "seeds": 3,
    "pairs": 3,
    "batch": 128,
    "alphas": 30,
    "grad_rows": 256,
    "stats_rows": 10_000,
    "test_rows": 10_000,
    "pre_steps": 30_000,
    "ft_steps": 12_800,
    "ft_spawn": [0, 4, 25, 50, 100, 224, 500, 1000, 2000, 4472],
}


def _book_branch(sizes: Mapping[str, Any], lr: float) -> dict[str, Any]:
    """The book's branch: a residual MLP on the digits, pre-training on real MNIST digits, crops
    after padding by one pixel without flips, the paper's schedule shape scaled to the steps."""
    return {
        "paper": False,
        **sizes,
        "lr": lr,
        "lr_control": 0.05,  # the pilot's rate at which digits networks were connected from the start
        "divisor": 10.0,
        "pre_divisor": 5.0,  # the paper's pre-training and fine-tuning divide by 5 (App. C.3)
        "decay_at": scaled_schedule(sizes["steps"]),
        "pre_decay_at": scaled_schedule(sizes["pre_steps"]),
        "ft_decay_at": scaled_schedule(sizes["ft_steps"]),
        **{k: v for k, v in sizes.items() if k.endswith("decay_at")},  # given in epochs
    }


def _paper_branch(sizes: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's branch: ResNet-20 on CIFAR-10, SVHN pre-training, crops after padding by four
    pixels and flips, the paper's learning rates and step boundaries."""
    return {
        "paper": True,
        **sizes,
        "lr": 0.1,
        "lr_control": 0.05,
        "divisor": 10.0,
        "pre_divisor": 5.0,
        "decay_at": list(PAPER_DECAY_AT),
        "pre_decay_at": list(PAPER_PRE_DECAY_AT),
        "ft_decay_at": list(PAPER_FT_DECAY_AT),
    }


#: Steps per epoch in the paper at batch 128: CIFAR-10 (50,000 training images), SVHN (73,257).
PAPER_EPOCH, PAPER_PRE_EPOCH = 50_000 // 128, 73_257 // 128
#: Steps per epoch of the book's data at batch 64: the digits (1,297 training images) and real
#: MNIST, the pre-training set (4,500); a test checks them against the loaded data.
BOOK_EPOCH, BOOK_PRE_EPOCH = 1_297 // 64, 4_500 // 64


def in_epochs(paper_steps: int, epoch: int, paper_epoch: int = PAPER_EPOCH) -> int:
    """The step that lies as many epochs into a run of ``epoch`` steps per epoch as
    ``paper_steps`` lies into the paper's run of ``paper_epoch`` steps per epoch."""
    return round(paper_steps * epoch / paper_epoch)


def _paper_epochs(sizes: Mapping[str, Any]) -> dict[str, Any]:
    """``sizes`` with the paper's training lengths and spawn steps counted in epochs (App. C.3):
    63,000 steps with children at its 12 t', SVHN pre-training for 30,000 steps, fine-tuning for
    12,800 steps with children at the first 10 t' (the paper does not say which 10), and the
    step boundaries of all three schedules. Spawn steps that round to the same step count once."""
    spawn = sorted({in_epochs(t, BOOK_EPOCH) for t in _PAPER["spawn"]})
    return {
        **sizes,
        "steps": in_epochs(_PAPER["steps"], BOOK_EPOCH),
        "spawn": spawn,
        "pre_steps": in_epochs(_PAPER["pre_steps"], BOOK_PRE_EPOCH, PAPER_PRE_EPOCH),
        "ft_steps": in_epochs(_PAPER["ft_steps"], BOOK_EPOCH),
        "ft_spawn": sorted({in_epochs(t, BOOK_EPOCH) for t in _PAPER["ft_spawn"]}),
        "decay_at": [in_epochs(t, BOOK_EPOCH) for t in PAPER_DECAY_AT],
        "pre_decay_at": [
            in_epochs(t, BOOK_PRE_EPOCH, PAPER_PRE_EPOCH) for t in PAPER_PRE_DECAY_AT
        ],
        "ft_decay_at": [in_epochs(t, BOOK_EPOCH) for t in PAPER_FT_DECAY_AT],
    }


#: The configuration per scale (``smoke``, ``book``, ``long``, ``paper``), JSON-able.
CONFIGS = {
    "smoke": _book_branch(_SMOKE, lr=0.2),
    "book": _book_branch(_BOOK, lr=0.2),
    # The book's network and data with the paper's budget: its training lengths and spawn
    # steps in epochs (3,231 steps where the book trains 800), five seeds and the paper's
    # three pairs of children per parent. Fixed by that rule before its first run, to test
    # whether the book's 40 epochs are what keeps a barrier from vanishing.
    "long": _book_branch(_paper_epochs({**_BOOK, "seeds": 5, "pairs": 3}), lr=0.2),
    "paper": _paper_branch(_PAPER),
}
#: The paper's choices at smoke sizes, for the tests' override ``LENSBOX_PAPER_BUDGET=smoke``.
PAPER_SMOKE = _paper_branch(_SMOKE)


def alphas(config: Mapping[str, Any]) -> np.ndarray:
    """``config["alphas"]`` equally spaced interpolation weights in [0, 1], with 1/2 added (the
    midpoint reading of the barrier)."""
    return np.unique(np.append(np.linspace(0.0, 1.0, config["alphas"]), 0.5))


@dataclass(frozen=True, eq=False)
class Problem:
    """What a configuration trains and measures on.

    Attributes:
        data: the data set (CIFAR-10 in the paper's branch, the digits otherwise).
        X, y: the training images and labels (float32, int32).
        X_test, y_test: the first ``test_rows`` test images, where losses and accuracies are read.
        X_stats: the first ``stats_rows`` training images (BatchNorm statistics recomputed on them).
        X_grad: the first ``grad_rows`` test images (the gradient change).
        X_pre, y_pre: the pre-training set (SVHN; its stand-in, real MNIST, in the book's analogue).
        shape: one image's shape.
        epoch: steps per epoch at the configuration's batch size.
        net: the network (ResNet or residual MLP with BatchNorm).
        augment: ``augment(key, images)`` applied to every batch.
        alphas: the interpolation weights (:func:`alphas`).
    """

    data: Dataset
    X: jax.Array
    y: jax.Array
    X_test: jax.Array
    y_test: jax.Array
    X_stats: jax.Array
    X_grad: jax.Array
    X_pre: jax.Array
    y_pre: jax.Array
    shape: tuple[int, ...]
    epoch: int
    net: BatchNormNetwork
    augment: Callable[[jax.Array, jax.Array], jax.Array]
    alphas: np.ndarray


def problem(config: Mapping[str, Any]) -> Problem:
    """The data, network and augmentation of ``config`` (:class:`Problem`)."""
    paper = bool(config["paper"])
    scale = "paper" if paper else "book"
    data = load("cifar10", scale=scale)
    X = jnp.asarray(data.X_train, jnp.float32)
    y = jnp.asarray(data.y_train, jnp.int32)
    X_test = jnp.asarray(data.X_test[: config["test_rows"]], jnp.float32)
    y_test = jnp.asarray(data.y_test[: config["test_rows"]], jnp.int32)
    pre = load(
        "svhn", scale=scale
    )  # the book's analogue: real MNIST, every digit (issue 34)
    X_pre = jnp.asarray(pre.X_train, jnp.float32)
    y_pre = jnp.asarray(pre.y_train, jnp.int32)
    if paper:
        net = resnet(tuple(config["widths"]), config["blocks"])
        pad, flip = 4, True
    else:
        net = residual_mlp(config["widths"][0], config["blocks"])
        pad, flip = 1, False  # mirrored digits are other symbols

    def aug(key, x):
        return augment(key, x, pad=pad, flip=flip)

    return Problem(
        data=data,
        X=X,
        y=y,
        X_test=X_test,
        y_test=y_test,
        X_stats=X[: config["stats_rows"]],
        X_grad=X_test[: config["grad_rows"]],
        X_pre=X_pre,
        y_pre=y_pre,
        shape=tuple(X.shape[1:]),
        epoch=int(X.shape[0]) // config["batch"],
        net=net,
        augment=aug,
        alphas=alphas(config),
    )


def optimiser(lr: float, boundaries, divisor: float) -> Optimizer:
    """SGD with momentum 0.9 and the step schedule: the rate divided by ``divisor`` after each
    of ``boundaries``."""
    return sgd(
        Schedule(lr, decay_at=tuple(boundaries), decay_factor=1 / divisor), momentum=0.9
    )


def fresh(prob: Problem, seeds: int, opt: Optimizer, seed: int = 0) -> SpawnState:
    """``seeds`` parents at initialisation (leading axis: seeds), drawn from ``PRNGKey(seed)``."""
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    return jax.vmap(lambda k: init_state(prob.net, opt, k, prob.shape))(keys)


def run_arm(
    prob: Problem,
    initial: SpawnState,
    steps: int,
    spawn,
    opt: Optimizer,
    *,
    pairs: int,
    batch: int,
    seed: int = 0,
) -> dict:
    """Spawn children at each t' of ``spawn`` from the parents ``initial`` (leading axis: seeds),
    train them to ``steps`` and measure them (:func:`~lensbox.connectivity.barriers.measure_spawns`).

    The parents keep checkpoints at every t' and one epoch later; parent ``i`` draws its batches
    and augmentation from the data seed ``(1000 + seed, i)``, child ``j`` from ``(2000 + seed, j)``
    (:class:`lensbox.BatchOrder`).

    Raises:
        KeyboardInterrupt: training was interrupted; nothing half-trained is measured.
    """
    advance = make_trainer(
        prob.net, opt, prob.X, prob.y, batch_size=batch, augment=prob.augment
    )
    seeds = initial.step.shape[0]
    marks = sorted(set(spawn) | {t + prob.epoch for t in spawn})
    parents = train_to_checkpoints(
        advance, initial, [(1000 + seed, i) for i in range(seeds)], marks
    )

    def at(steps_):
        return index(parents, jnp.array([marks.index(t) for t in steps_]))

    spawned, later = at(spawn), at([t + prob.epoch for t in spawn])
    children, interrupted = train_children(
        advance, spawned, 2 * pairs, 2000 + seed, steps
    )
    if interrupted:
        raise KeyboardInterrupt("children interrupted; run again")
    return measure_spawns(
        prob.net,
        spawned,
        later,
        children,
        prob.X_test,
        prob.y_test,
        prob.X_stats,
        prob.X_grad,
        prob.alphas,
    )


def _from_scratch(config, prob: Problem, lr: float, spawn, seed: int) -> dict:
    """Parents from random initialisation (seed 0) at learning rate ``lr``, children at each
    ``spawn`` step: the random-initialisation arm and its small-rate control."""
    opt = optimiser(lr, config["decay_at"], config["divisor"])
    return run_arm(
        prob,
        fresh(prob, config["seeds"], opt),
        config["steps"],
        spawn,
        opt,
        pairs=config["pairs"],
        batch=config["batch"],
        seed=seed,
    )


def scratch_arm(config: Mapping[str, Any], prob: Problem) -> dict:
    """From random initialisation (seed 0), children at every ``spawn`` step."""
    return _from_scratch(config, prob, config["lr"], config["spawn"], seed=0)


def finetuned_arm(config: Mapping[str, Any], prob: Problem) -> dict:
    """Each seed's network pre-trained on the pre-training set (initialisation seed 7, data seeds
    ``(3000, i)``), then its parameters and BatchNorm statistics start a fine-tuning parent on the full
    task with a fresh optimiser state; children at every ``ft_spawn`` step."""
    seeds = config["seeds"]
    pre_opt = optimiser(config["lr"], config["pre_decay_at"], config["pre_divisor"])
    pre_advance = make_trainer(
        prob.net,
        pre_opt,
        prob.X_pre,
        prob.y_pre,
        batch_size=config["batch"],
        augment=prob.augment,
    )
    pretrained = index(
        train_to_checkpoints(
            pre_advance,
            fresh(prob, seeds, pre_opt, seed=7),
            [(3000, i) for i in range(seeds)],
            [config["pre_steps"]],
            desc="pre-training",
        ),
        0,
    )
    ft_opt = optimiser(config["lr"], config["ft_decay_at"], config["pre_divisor"])
    start = init_state(prob.net, ft_opt, jax.random.PRNGKey(0), prob.shape)._replace(
        params=pretrained.params,
        bn_state=pretrained.bn_state,
        opt_state=jax.vmap(ft_opt.init)(pretrained.params),
        step=jnp.zeros(seeds, jnp.int32),
    )
    return run_arm(
        prob,
        start,
        config["ft_steps"],
        config["ft_spawn"],
        ft_opt,
        pairs=config["pairs"],
        batch=config["batch"],
        seed=1,
    )


def control_arm(config: Mapping[str, Any], prob: Problem) -> dict:
    """The small-rate control: as :func:`scratch_arm` at ``lr_control``, children at t' = 0 only."""
    return _from_scratch(config, prob, config["lr_control"], [0], seed=2)


ARMS = {"scratch": scratch_arm, "finetuned": finetuned_arm, "control": control_arm}

#: The random seeds each unit draws from, for its provenance: initialisation ``PRNGKey`` values
#: and the first word of its data seeds (:class:`lensbox.BatchOrder`).
SEEDS = {
    "scratch": [0, 1000, 2000],
    "finetuned": [7, 3000, 0, 1001, 2001],
    "control": [0, 1002, 2002],
}


def run_unit(config: Mapping[str, Any], unit: str) -> dict:
    """One arm (``scratch``, ``finetuned`` or ``control``) of ``config``: the dict of
    :func:`~lensbox.connectivity.barriers.measure_spawns`."""
    if unit not in ARMS:
        raise ArgumentError(f"no unit {unit!r}; the units are {list(UNITS)}.")
    return ARMS[unit](config, problem(config))


EXPERIMENT = Experiment(
    name="mode_connectivity",
    description="barriers and per-layer gradient change against the spawn step (section 4.3, Fig. 6)",
    configs=CONFIGS,
    units=lambda config: list(UNITS),
    run_unit=run_unit,
    seeds=lambda config, unit: SEEDS[unit],
    paper_smoke=PAPER_SMOKE,
    data=lambda config, scale: {
        name: identity(name, "paper" if config["paper"] else "book")
        for name in ("cifar10", "svhn")
    },
    x64=False,  # float32, as the chapter computes (lensbox.setup(x64=False))
)
