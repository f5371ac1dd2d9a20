"""The training loop: batching, tracking, recording, progress and divergence checks.

:func:`train` runs an :class:`~lensbox.optim.Optimizer` on a loss over ``(X, y)`` and lets
*trackers* observe every step. A :class:`Tracker` is three pure functions: ``init`` builds its state
from :math:`\\theta_0`, ``update`` folds in one optimisation step (it sees
:math:`\\theta_{t-1}`, :math:`\\theta_t`, :math:`\\Delta\\theta_t`, the batch and the optimiser state)
and ``record`` turns the state into the small summary stored at the recording steps. The telescoping
model (:mod:`lensbox.telescope`) and the smoother (:mod:`lensbox.smoother`) are trackers.

Steps run inside one compiled loop (``lax.while_loop``) between recording steps, so Python is
visited only to record, to update the progress bar and to check for divergence. An interrupt
(Ctrl-C) between chunks returns what was done so far, marked ``interrupted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox._validation import as_matrix, as_targets
from lensbox.models import Model
from lensbox.optim import OptState, Optimizer, apply_updates, learning_rate_at

Params = Any
Apply = Callable[[Params, jax.Array], jax.Array]


# ----------------------------------------------------------------------------------------------
# Losses: per-example losses l(f(x), y); the training objective is their batch mean.


def squared_loss(pred: jax.Array, y: jax.Array) -> jax.Array:
    """:math:`\\ell(f, y) = \\tfrac12 (y - f)^2`, the loss of the paper's smoother (section 4.1)."""
    err = pred - y
    return 0.5 * (err * err if err.ndim == 1 else jnp.sum(err * err, axis=-1))


def binary_cross_entropy(pred: jax.Array, y: jax.Array) -> jax.Array:
    """Cross-entropy of a probability ``pred`` in (0, 1) against a label ``y`` in {0, 1}."""
    p = jnp.clip(pred, 1e-12, 1 - 1e-12)
    return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "squared": squared_loss,
    "binary_cross_entropy": binary_cross_entropy,
}


def get_loss(loss: str | Callable) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable; got {loss!r}.")
    return LOSSES[loss]


# ----------------------------------------------------------------------------------------------
# Trackers


class StepInfo(NamedTuple):
    """What a tracker sees of optimisation step ``t``."""

    step: jax.Array  # t, starting at 1
    params_prev: Params  # theta_{t-1}
    params: Params  # theta_t
    delta: Params  # Delta theta_t = theta_t - theta_{t-1}, the realised step
    batch: jax.Array  # indices of the rows in B_t
    opt_state: OptState  # optimiser state after step t
    learning_rate: jax.Array  # gamma_t


class Tracker(NamedTuple):
    """Observes training: ``init(theta_0)``, ``update(state, StepInfo)``, ``record(state, theta_t)``.

    All three must be pure and jittable. ``record`` should return something small (predictions on
    an evaluation set, a few summary numbers): it is stored at every recording step.
    """

    init: Callable[[Params], Any]
    update: Callable[[Any, StepInfo], Any]
    record: Callable[[Any, Params], Any]


def predictions_tracker(apply: Apply, X) -> Tracker:
    """Records the network's own predictions :math:`f_{\\theta_t}(X)` at each recording step."""
    X = jnp.asarray(X)
    return Tracker(lambda params: (), lambda state, info: state, lambda state, params: apply(params, X))


# ----------------------------------------------------------------------------------------------
# Errors and results


class DivergenceError(RuntimeError):
    """Training diverged. ``step`` is the first bad step; ``partial`` the result up to the last
    recording before it, so nothing already computed is lost."""

    def __init__(self, message: str, step: int, partial: "TrainResult"):
        super().__init__(message)
        self.step = step
        self.partial = partial


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: :math:`\\theta_T` (the last step completed).
        opt_state: the optimiser state after it.
        losses: the mini-batch training loss of every completed step, ``losses[t-1]`` for step t
            (measured at :math:`\\theta_{t-1}`, before the step).
        record_steps: steps at which trackers were recorded; 0 is the initialisation.
        records: for each tracker name, its records stacked along a leading axis.
        tracker_states: each tracker's final state.
        steps_done: number of completed steps.
        interrupted: ``True`` if a keyboard interrupt stopped training early.
    """

    params: Params
    opt_state: OptState
    losses: np.ndarray
    record_steps: np.ndarray
    records: dict[str, Any]
    tracker_states: dict[str, Any] = field(repr=False)
    steps_done: int
    interrupted: bool = False


def recording_steps(steps: int, every: int | None = None, *, log: int | None = None) -> np.ndarray:
    """Steps to record at: every ``every`` steps, or ``log`` points spaced evenly in log-step.

    Always includes 0 and ``steps``.
    """
    if log is not None:
        pts = np.unique(np.round(np.logspace(0, math.log10(max(steps, 1)), log)).astype(int))
    elif every is not None:
        pts = np.arange(every, steps + 1, every)
    else:
        pts = np.array([steps])
    return np.unique(np.concatenate([[0], pts[(pts > 0) & (pts <= steps)], [steps]]))


class BatchOrder:
    """The seeded order of mini-batches: each epoch a fresh permutation of the rows, split into
    ``n // batch_size`` batches (a last partial batch is dropped, like ``drop_last=True``).

    ``batch_size=None`` (or ``n``) means full-batch gradient descent.
    """

    def __init__(self, n: int, batch_size: int | None, seed: int):
        if batch_size is None:
            batch_size = n
        if not (1 <= batch_size <= n):
            raise ValueError(f"batch_size must lie in [1, {n}] (the number of rows); got {batch_size}.")
        self.n, self.batch_size, self.seed = n, int(batch_size), int(seed)
        self.per_epoch = n // self.batch_size
        self._epoch, self._perm = -1, None

    def batches(self, first_step: int, count: int) -> np.ndarray:
        """Row indices of steps ``first_step .. first_step + count - 1``, shape (count, batch)."""
        out = np.empty((count, self.batch_size), dtype=np.int32)
        for i in range(count):
            epoch, j = divmod(first_step - 1 + i, self.per_epoch)
            if self.batch_size == self.n:
                out[i] = np.arange(self.n)
                continue
            if epoch != self._epoch:
                rng = np.random.default_rng([self.seed, epoch])
                self._epoch, self._perm = epoch, rng.permutation(self.n)
            out[i] = self._perm[j * self.batch_size : (j + 1) * self.batch_size]
        return out


# ----------------------------------------------------------------------------------------------
# The loop


def optimisation_step(apply: Apply, loss_fn: Callable, optimizer: Optimizer,
                      trackers: Mapping[str, Tracker], carry, X, y, idx):
    """One optimisation step on the rows ``idx`` of ``(X, y)``, observed by ``trackers``.

    ``carry`` is ``(theta_{t-1}, optimiser state, tracker states)``; returns the new carry and the
    mini-batch loss at :math:`\\theta_{t-1}`. Pure and jittable: :func:`train` and
    :func:`lensbox.sweeps.train_seeds` (which ``vmap`` it over seeds) both step through it.
    """
    params_prev, opt_state, tstates = carry
    value, grads = jax.value_and_grad(
        lambda p: jnp.mean(loss_fn(apply(p, X[idx]), y[idx])))(params_prev)
    delta, opt_state = optimizer.update(grads, opt_state, params_prev)
    new = apply_updates(params_prev, delta)
    info = StepInfo(opt_state.count, params_prev, new, delta, idx, opt_state,
                    learning_rate_at(optimizer.config, opt_state.count))
    tstates = {k: trackers[k].update(tstates[k], info) for k in trackers}
    return (new, opt_state, tstates), value


def train(
    model: Model | Apply,
    params: Params,
    optimizer: Optimizer,
    X,
    y,
    *,
    steps: int,
    batch_size: int | None = None,
    loss: str | Callable = "squared",
    seed: int = 0,
    trackers: Mapping[str, Tracker] | None = None,
    record_at: Sequence[int] | None = None,
    chunk: int = 256,
    progress: bool | None = None,
    divergence_factor: float = 1e6,
) -> TrainResult:
    """Train ``model`` from ``params`` for ``steps`` optimisation steps.

    Args:
        model: a :class:`~lensbox.models.Model` or an ``apply(params, X)`` function.
        params: :math:`\\theta_0`.
        optimizer: from :mod:`lensbox.optim`.
        X, y: training inputs (n x d) and targets (n,).
        steps: number of steps T.
        batch_size: mini-batch size; ``None`` for full batch.
        loss: ``"squared"`` (:math:`\\tfrac12(y-f)^2`), ``"binary_cross_entropy"``, or a function
            ``(pred, y) -> per-example loss``.
        seed: seeds the batch order.
        trackers: named :class:`Tracker` objects observing every step.
        record_at: steps at which trackers record (see :func:`recording_steps`); default: the end.
        chunk: most steps run in one compiled call between Python visits.
        progress: show a tqdm progress bar (default: when the run has more than 2000 steps).
        divergence_factor: a mini-batch loss above this factor times (initial loss + 1), or a
            non-finite loss or parameter, stops training with :class:`DivergenceError`.

    Returns:
        A :class:`TrainResult`.
    """
    apply = model.apply if isinstance(model, Model) else model
    if not callable(apply):
        raise TypeError(f"model must be a lensbox Model or an apply function; got {type(model)}.")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be non-negative; got {steps}.")
    X = as_matrix(X, "X")
    y = as_targets(y, "y", n_rows=X.shape[0]) if np.ndim(y) <= 1 or np.shape(y)[-1] == 1 else jnp.asarray(y)
    loss_fn = get_loss(loss)
    trackers = dict(trackers or {})
    order = BatchOrder(X.shape[0], batch_size, seed)
    record_at = recording_steps(steps) if record_at is None else np.unique(np.asarray(record_at, int))
    if record_at.size and (record_at.min() < 0 or record_at.max() > steps):
        raise ValueError(f"record_at must lie in [0, {steps}]; got {record_at.min()}..{record_at.max()}.")
    if progress is None:
        progress = steps > 2000

    def one_step(t, carry, batches, losses, X, y):
        carry, value = optimisation_step(apply, loss_fn, optimizer, trackers, carry, X, y, batches[t])
        return carry, losses.at[t].set(value)

    @jax.jit
    def run_chunk(carry, batches, count, X, y):
        # X and y are arguments, not closed-over constants, so large data sets compile quickly.
        losses = jnp.full((batches.shape[0],), jnp.nan, dtype=jnp.zeros(()).dtype)

        def body(t, state):
            carry, losses = state
            return one_step(t, carry, batches, losses, X, y)

        return jax.lax.fori_loop(0, count, body, (carry, losses))

    @jax.jit
    def record(tstates, params):
        return {k: trackers[k].record(tstates[k], params) for k in trackers}

    opt_state = optimizer.init(params)
    carry = (params, opt_state, {k: trackers[k].init(params) for k in trackers})
    recs: list[dict] = []
    rec_steps: list[int] = []
    if 0 in record_at:
        recs.append(jax.device_get(record(carry[2], params)))
        rec_steps.append(0)
    losses_all = np.empty(steps, dtype=float)
    done, interrupted = 0, False
    initial_loss = None
    chunk = max(1, int(chunk))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="training", unit="step", mininterval=1.0)

    def result(c, n_done, was_interrupted=False):
        states = dict(c[2])
        stacked = {k: jax.tree_util.tree_map(lambda *a: np.stack(a), *[r[k] for r in recs])
                   for k in trackers} if recs else {k: None for k in trackers}
        return TrainResult(c[0], c[1], losses_all[:n_done].copy(), np.asarray(rec_steps, int),
                           stacked, states, n_done, was_interrupted)

    try:
        targets = [int(s) for s in record_at if s > 0]
        target_set = set(targets)
        while done < steps:
            next_record = next((s for s in targets if s > done), steps)
            count = min(chunk, next_record - done)
            batches = jnp.asarray(order.batches(done + 1, chunk))
            new_carry, losses = run_chunk(carry, batches, count, X, y)
            losses = np.asarray(losses[:count])
            if initial_loss is None:
                initial_loss = float(losses[0]) if np.isfinite(losses[0]) else 0.0
            bad = ~np.isfinite(losses) | (losses > divergence_factor * (abs(initial_loss) + 1.0))
            params_ok = all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(new_carry[0]))
            if bad.any() or not params_ok:
                first = int(np.argmax(bad)) if bad.any() else count - 1
                bad_step = done + first + 1
                losses_all[done : done + first] = losses[:first]
                what = f"loss {losses[first]:.3g}" if bad.any() else "non-finite parameters"
                raise DivergenceError(
                    f"training diverged at step {bad_step} of {steps} ({what}; initial loss "
                    f"{initial_loss:.3g}). Lower the learning rate (now "
                    f"{optimizer.config.learning_rate:g}) or add warm-up. The result up to step "
                    f"{done} is in this error's `partial` attribute.",
                    bad_step, result(carry, done),
                )
            carry = new_carry
            losses_all[done : done + count] = losses
            done += count
            if bar is not None:
                bar.update(count)
            if done in target_set:
                recs.append(jax.device_get(record(carry[2], carry[0])))
                rec_steps.append(done)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    return result(carry, done, interrupted)
