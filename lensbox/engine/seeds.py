r"""Seeds side by side: train one network per seed until a stopping rule fires, watching it through trackers.

The paper's double-descent runs (section 4.1, after Belkin et al. 2019) train every width "until
the training loss stalls": up to :math:`e_{\max}` epochs, stopping early when training accuracy
reaches 100 % or when the training squared loss improves by at most :math:`10^{-4}` over 500
consecutive epochs. :class:`StoppingRule` states such a rule; :func:`train_seeds` trains several
seeds of one model side by side under it, in one compiled program (the seeds are a ``vmap`` axis,
so a width costs one compilation however many seeds it has), and lets any
:class:`~lensbox.engine.training.Tracker`, such as :func:`lensbox.engine.smoother.smoother_tracker`, watch every
step. Each seed stops on its own; its trackers are recorded at the step where it stopped.
:func:`lensbox.complexity.faithfulness.smoother_fit` adds the trackers the effective-parameter
case study reads (the network's predictions, the smoother, the telescoping model).

The seeds share the inputs, the learning rate and the order of mini-batches; they differ in the
initialisation and in the training labels (for instance in which labels are flipped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine import kernels
from lensbox.engine.checkpoints import checkpoint, restore
from lensbox.engine.checks import as_counts, as_matrix, check_finite
from lensbox.engine.devices import place_runs
from lensbox.engine.models import Model, apply_of
from lensbox.engine.optim import Optimizer, check_optimizer
from lensbox.engine.progress import step_bar
from lensbox.errors import (
    ArgumentError,
    ArgumentTypeError,
    DivergenceError,
    ShapeError,
)
from lensbox.engine.training import (
    BatchOrder,
    Tracker,
    get_loss,
    optimisation_step,
    stack,
)

Params = Any


@dataclass(frozen=True)
class StoppingRule:
    """When to stop training, in epochs (passes over the training set).

    Every ``check_every`` epochs the full training set is evaluated; training stops at the first
    check where

    * the training accuracy (prediction above ``threshold`` read as class 1) is 100 %, when
      ``perfect_accuracy`` is set (reason ``"accuracy"``);
    * the training loss :math:`\\mathcal L = \\frac1n\\sum_i \\tfrac12 (y_i - f(x_i))^2` is at most
      ``tolerance`` below its value ``patience`` epochs earlier (reason ``"stalled"``);
    * ``max_epochs`` epochs are done (reason ``"max_epochs"``).

    The paper's rule (section 4.1, App. C.1) is
    ``StoppingRule(max_epochs=30_000, patience=500, tolerance=1e-4)``; with full-batch gradient
    descent an epoch is one step. The stopping epoch is a multiple of ``check_every``.
    """

    max_epochs: int
    patience: int = 500
    tolerance: float = 1e-4
    perfect_accuracy: bool = True
    check_every: int = 50
    threshold: float = 0.5

    def __post_init__(self):
        for name in ("max_epochs", "patience", "check_every"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ArgumentError(
                    f"StoppingRule.{name} must be a positive integer; got {value!r}."
                )
        if self.patience % self.check_every or self.max_epochs % self.check_every:
            raise ArgumentError(
                f"patience ({self.patience}) and max_epochs ({self.max_epochs}) must be multiples "
                f"of check_every ({self.check_every}), so that every comparison falls on a check."
            )
        if not (self.tolerance >= 0):
            raise ArgumentError(
                f"StoppingRule.tolerance must be non-negative; got {self.tolerance!r}."
            )


@dataclass
class SeedRuns:
    """What :func:`train_seeds` returns; arrays carry a seed axis of length ``n_seeds``.

    Attributes:
        params: each seed's final :math:`\\theta` (leading seed axis).
        stop_steps: (n_seeds,) the step at which each seed stopped.
        reasons: each seed's stop reason, one of ``accuracy``, ``stalled``, ``max_epochs``.
        check_steps: (C,) steps at which the rule was checked.
        train_loss, train_accuracy: (C, n_seeds) full-training-set loss and accuracy at each check
            (frozen after a seed stops).
        final: for each tracker, its record at each seed's stopping step (leading seed axis).
        record_steps: (K,) the extra recording steps asked for (``record_at``) that were reached.
        records: for each tracker, its records at ``record_steps`` (K, n_seeds, ...); a seed that
            has stopped keeps its final state.
        learning_rate: :math:`\\gamma` of the run (``nan`` when the optimiser does not state one).
        seconds: wall-clock time of the run, compilation included.
    """

    params: Params
    stop_steps: np.ndarray
    reasons: list[str]
    check_steps: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    final: dict[str, Any]
    record_steps: np.ndarray
    records: dict[str, Any]
    learning_rate: float
    seconds: float = field(default=0.0, repr=False)


def init_seeds(
    model: Model, keys: Sequence[jax.Array] | jax.Array, in_dim: int
) -> Params:
    """``model.init`` for each key, stacked along a leading seed axis (the input of
    :func:`train_seeds`)."""
    keys = jnp.asarray(keys)
    if keys.ndim < 2:
        raise ShapeError(
            f"keys must be a stack of PRNG keys (seeds x 2); got shape {keys.shape}."
        )
    return jax.vmap(lambda k: model.init(k, int(in_dim)))(keys)


def kernel_learning_rate(
    model: Model | Callable,
    params: Params,
    X,
    *,
    fraction: float = 1.0,
    stacked: bool = False,
) -> float:
    r"""The learning rate :math:`\gamma = \text{fraction}\cdot n / \lambda_{\max}(K_0)` for
    full-batch gradient descent on :math:`\frac1n\sum_i\tfrac12(y_i - f(x_i))^2`.

    One such step moves the training predictions by
    :math:`-\frac{\gamma}{n}K_0(\mathbf f - \mathbf y)` (Eq. 3), which is stable while
    :math:`\gamma\lambda_{\max}(K_0)/n < 2`; ``fraction = 1`` sits at half that edge, so the
    stiffest direction of the tangent kernel :math:`K_0` is fitted in about one step whatever the
    width. With ``stacked=True`` ``params`` carries a leading seed axis (as from
    :func:`init_seeds`) and the rate is set by the largest :math:`\lambda_{\max}` over the seeds,
    so that it is safe for all of them.

    Args:
        model: the network (see :func:`lensbox.engine.kernels.tangent_kernel`).
        params: :math:`\theta_0`, one seed or (``stacked``) a stack of seeds.
        X: the n training inputs.
        fraction: multiplies :math:`n/\lambda_{\max}`; must lie in (0, 2).
        stacked: whether ``params`` has a leading seed axis.
    """
    if not (0.0 < fraction < 2.0):
        raise ArgumentError(
            f"fraction must lie in (0, 2), where full-batch descent is stable; got {fraction!r}."
        )
    X = as_matrix(X, "X")
    seeds = [params]
    if stacked:
        count = jax.tree_util.tree_leaves(params)[0].shape[0]
        seeds = [jax.tree_util.tree_map(lambda a: a[i], params) for i in range(count)]
    lam = max(
        float(jnp.linalg.eigvalsh(kernels.tangent_kernel(model, p, X, X))[-1])
        for p in seeds
    )
    return fraction * X.shape[0] / lam


def seed_count(params: Params) -> int:
    """The length of the leading seed axis every parameter array carries."""
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ArgumentError("params is empty: the model has no parameters to train.")
    n_seeds = int(leaves[0].shape[0])
    if any(leaf.shape[0] != n_seeds for leaf in leaves):
        raise ShapeError("every parameter array must carry the same leading seed axis.")
    return n_seeds


def seed_labels(Y, n_seeds: int, n: int, *, name: str = "Y") -> np.ndarray:
    """Each seed's labels ``(n_seeds, n)`` from labels per seed or one shared vector ``(n,)``.

    Raises:
        ShapeError: ``Y`` has another shape; NonFiniteError: it holds NaN or infinite labels.
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = np.broadcast_to(Y, (n_seeds, Y.shape[0]))
    if Y.shape != (n_seeds, n):
        raise ShapeError(
            f"{name} must have shape (seeds, n) = ({n_seeds}, {n}) or ({n},); got {Y.shape}."
        )
    check_finite(Y, name)
    return Y


def check_rule(rule) -> StoppingRule:
    """``rule`` itself when it is a :class:`StoppingRule`, else an ``ArgumentTypeError``."""
    if not isinstance(rule, StoppingRule):
        raise ArgumentTypeError(
            f"rule must be a StoppingRule, e.g. StoppingRule(max_epochs=1000); got {rule!r}."
        )
    return rule


class _SeedPrograms(NamedTuple):
    run: Callable  # (carry, active, batches, count) -> carry
    evaluate: Callable  # params -> (loss, accuracy) per seed
    record: Callable  # (tracker states, params) -> records per seed


def _seed_programs(
    apply, loss_fn, optimizer, trackers, X, Y, threshold
) -> _SeedPrograms:
    """The jitted pieces of :func:`train_seeds`: steps of every seed (``vmap`` over the seed axis,
    a stopped seed frozen), the full-training-set evaluation of the rule, and the records."""

    def one_seed_step(carry, y, idx):
        return optimisation_step(apply, loss_fn, optimizer, trackers, carry, X, y, idx)[
            0
        ]

    def keep(active, new, old):
        return jax.tree_util.tree_map(
            lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
            new,
            old,
        )

    @jax.jit
    def run(carry, active, batches, count):
        def body(t, carry):
            new = jax.vmap(one_seed_step, in_axes=(0, 0, None))(carry, Y, batches[t])
            return keep(active, new, carry)

        return jax.lax.fori_loop(0, count, body, carry)

    @jax.jit
    def evaluate(params):
        f = jax.vmap(apply, in_axes=(0, None))(params, X)
        return (
            jnp.mean(0.5 * (f - Y) ** 2, axis=1),
            jnp.mean((f > threshold) == (Y > threshold), axis=1),
        )

    @jax.jit
    def record(tstates, params):
        return {k: jax.vmap(trackers[k].record)(tstates[k], params) for k in trackers}

    return _SeedPrograms(run, evaluate, record)


class _StopBook:
    """Which seeds still train, and the rule's history: losses and accuracies at each check."""

    def __init__(self, rule: StoppingRule, n_seeds: int, max_steps: int, loss0, acc0):
        self.rule, self.lag = rule, rule.patience // rule.check_every
        self.active = np.ones(n_seeds, bool)
        self.stop_steps = np.full(n_seeds, max_steps)
        self.reasons = ["max_epochs"] * n_seeds
        self.final: list[Any] = [None] * n_seeds
        self.loss0, self.acc0, self.max_steps = loss0, acc0, max_steps
        self.losses, self.accs, self.checks = [], [], []

    def check(self, done: int, loss, acc, learning_rate) -> np.ndarray:
        """Log one check at step ``done``; return the seeds the rule stops now."""
        if not np.all(np.isfinite(loss[self.active])):
            bad = int(np.flatnonzero(self.active & ~np.isfinite(loss))[0])
            raise DivergenceError(
                f"seed {bad} diverged by step {done} (non-finite training "
                f"loss); lower the learning rate (now {learning_rate:g}).",
                step=done,
                partial=None,  # the seeds run as one program: no seed's result is complete
            )
        self.checks.append(done)
        self.losses.append(
            np.where(self.active, loss, self.losses[-1] if self.losses else self.loss0)
        )
        self.accs.append(
            np.where(self.active, acc, self.accs[-1] if self.accs else self.acc0)
        )
        ref = self.losses[-1 - self.lag] if len(self.losses) > self.lag else self.loss0
        newly = np.zeros_like(self.active)
        for s in np.flatnonzero(self.active):
            if self.rule.perfect_accuracy and acc[s] >= 1.0:
                self.reasons[s] = "accuracy"
            elif (
                len(self.losses) >= self.lag and ref[s] - loss[s] <= self.rule.tolerance
            ):
                self.reasons[s] = "stalled"
            elif done >= self.max_steps:
                self.reasons[s] = "max_epochs"
            else:
                continue
            newly[s] = True
        return newly

    def stop(self, newly, done: int, records) -> None:
        for s in np.flatnonzero(newly):
            self.final[s] = jax.tree_util.tree_map(lambda a: a[s], records)
            self.stop_steps[s] = done
        self.active &= ~newly


def _run_seeds(
    programs, book, order, carry, check_steps, max_steps, extra, rate, point
):
    """Compiled calls from check to check (and to the extra recording steps) until every seed
    has stopped; returns the final carry and the extra records. The steps count on a shared bar
    (:func:`lensbox.engine.progress.shared_steps`) when there is one. With a checkpoint ``point``
    (:mod:`lensbox.engine.checkpoints`) the loop resumes from its saved state and saves it after a
    check when one is due, and at the end."""
    rec_steps, recs, done = [], [], 0
    saved = None if point is None else point.load()
    if saved is not None:
        carry = restore(carry, saved["carry"])
        book.__dict__.update(saved["book"])
        rec_steps, recs, done = saved["rec_steps"], saved["recs"], saved["done"]

    def state():
        return dict(
            carry=carry, book=vars(book), rec_steps=rec_steps, recs=recs, done=done
        )

    bar = step_bar(max_steps, False)
    if bar is not None and done:
        bar.update(done)
    try:
        while done < max_steps and book.active.any():
            next_check = done + check_steps - done % check_steps
            boundary = min([next_check, *[s for s in extra if s > done]])
            batches = jnp.asarray(order.batches(done + 1, check_steps))
            carry = programs.run(
                carry, jnp.asarray(book.active), batches, boundary - done
            )
            if bar is not None:
                bar.update(boundary - done)
            done = boundary
            if done in extra:
                rec_steps.append(done)
                recs.append(jax.device_get(programs.record(carry[2], carry[0])))
            if done != next_check:
                continue
            newly = book.check(
                done, *(np.asarray(a) for a in programs.evaluate(carry[0])), rate
            )
            if (
                newly.any()
            ):  # max_epochs is a multiple of check_every: every seed ends on a check
                book.stop(
                    newly, done, jax.device_get(programs.record(carry[2], carry[0]))
                )
            if point is not None and point.due():
                point.save(state())
    finally:
        if bar is not None:
            bar.close()
    if point is not None:
        point.save(state())
    return carry, rec_steps, recs


def train_seeds(
    model: Model | Callable,
    params: Params,
    optimizer: Optimizer,
    X,
    Y,
    *,
    rule: StoppingRule,
    batch_size: int | None = None,
    loss: str | Callable = "squared",
    trackers: Mapping[str, Tracker] | None = None,
    record_at: Sequence[int] | None = None,
    seed: int = 0,
    devices: Sequence[Any] | None = None,
) -> SeedRuns:
    r"""Train several seeds of ``model`` side by side until ``rule`` stops each of them.

    Each seed follows :math:`\theta_t = \theta_{t-1} + \Delta\theta_t` with the optimiser's step on
    the mini-batch loss :math:`\frac1{|B_t|}\sum_{i\in B_t}\ell(f_{\theta_{t-1}}(x_i), y^{(s)}_i)`,
    exactly as :func:`lensbox.train` does for one seed; the trackers see every step of every
    seed (they are mapped over the seed axis) and are recorded when the seed stops. A stopped seed
    is frozen while the others continue.

    Args:
        model: a :class:`~lensbox.engine.models.Model` or ``apply(params, X)``.
        params: :math:`\theta_0` with a leading seed axis (see :func:`init_seeds`).
        optimizer: from :mod:`lensbox.engine.optim`; every seed uses the same one.
        X: (n, d) training inputs shared by the seeds.
        Y: (seeds, n) training labels of each seed, or (n,) shared by all.
        rule: the :class:`StoppingRule`.
        batch_size: mini-batch size, ``None`` for full batch; the order of batches is shared.
        loss: as in :func:`lensbox.train`; the rule's loss is always the squared loss.
        trackers: named trackers written for one seed (e.g. a smoother tracker built on ``X``).
            They are built once, with one seed's labels, and mapped over seeds: whatever a tracker
            computes from its own labels is right for that seed only (the smoother's ``S`` and
            closed-loop ``c_closed_loop`` never read them; the realised offset ``c_realised`` does).
        record_at: extra steps at which to record the trackers (for curves over training).
        seed: seeds the order of mini-batches.
        devices: the devices the seeds are spread over (:func:`lensbox.engine.devices.place_runs`);
            default: all of ``jax.devices()`` (nothing moves on one device).

    Returns:
        A :class:`SeedRuns`.
    """
    started = time.perf_counter()
    optimizer, rule = check_optimizer(optimizer), check_rule(rule)
    apply, X = apply_of(model), as_matrix(X, "X")
    n_seeds, n = seed_count(params), X.shape[0]
    Y = jnp.asarray(seed_labels(Y, n_seeds, n), dtype=X.dtype)
    trackers = dict(trackers or {})
    order = BatchOrder(n, batch_size, seed)
    check_steps, max_steps = (
        order.per_epoch * rule.check_every,
        order.per_epoch * rule.max_epochs,
    )
    extra = sorted(
        {int(s) for s in as_counts(record_at or (), "record_at") if 0 < s <= max_steps}
    )
    programs = _seed_programs(
        apply, get_loss(loss), optimizer, trackers, X, Y, rule.threshold
    )
    params = place_runs(jax.tree_util.tree_map(jnp.asarray, params), devices)
    carry = (
        params,
        jax.vmap(optimizer.init)(params),
        jax.vmap(lambda p: {k: trackers[k].init(p) for k in trackers})(params),
    )
    book = _StopBook(
        rule, n_seeds, max_steps, *(np.asarray(a) for a in programs.evaluate(params))
    )
    rate = float(getattr(getattr(optimizer, "config", None), "learning_rate", np.nan))
    point = checkpoint(
        "train_seeds",
        lambda: (
            carry,
            X,
            Y,
            [order.batch_size, order.seed, check_steps, max_steps, extra, rule],
        ),
    )
    carry, rec_steps, recs = _run_seeds(
        programs, book, order, carry, check_steps, max_steps, extra, rate, point
    )
    return SeedRuns(
        params=jax.device_get(carry[0]),
        stop_steps=book.stop_steps,
        reasons=book.reasons,
        check_steps=np.asarray(book.checks, int),
        train_loss=np.asarray(book.losses).reshape(-1, n_seeds),
        train_accuracy=np.asarray(book.accs).reshape(-1, n_seeds),
        final=jax.device_get(stack(book.final)) if trackers else {},
        record_steps=np.asarray(rec_steps, int),
        records={k: jax.device_get(stack([r[k] for r in recs])) for k in trackers}
        if recs
        else {k: None for k in trackers},
        learning_rate=rate,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "SeedRuns",
    "StoppingRule",
    "check_rule",
    "init_seeds",
    "kernel_learning_rate",
    "seed_count",
    "seed_labels",
    "train_seeds",
]
