"""The training loop: batching, tracking, recording, progress and divergence checks.

:func:`train` runs an optimiser on a loss over ``(X, y)`` and lets *trackers* observe every step. A
:class:`Tracker` is three pure functions: ``init`` builds its state from the starting parameters,
``update`` folds in one optimisation step (it sees :math:`\\theta_{t-1}`, :math:`\\theta_t`,
:math:`\\Delta\\theta_t`, the batch and the optimiser state) and ``record`` turns the state into the
small summary stored at the recording steps. The telescoping model (:mod:`lensbox.engine.telescoping`)
and the smoother (:mod:`lensbox.engine.smoother`) are trackers.

Steps run inside one compiled loop between recording steps, so Python is visited only to record,
to update the progress bar and to check for divergence. The compiled loop is built once per
(model, optimiser, loss, trackers) and reused by later calls. A run can start from a
:class:`TrainState` (parameters, optimiser state, steps done) such as ``result.state`` of an earlier
run, so runs branch from a checkpoint: children of one parent share its optimiser state and, with
the same ``seed``, its order of mini-batches. An interrupt (Ctrl-C) between compiled calls returns
what was done so far, marked ``interrupted``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine.checkpoints import checkpoint, restore
from lensbox.engine.checks import (
    as_count,
    as_counts,
    as_inputs,
    check_finite,
    check_finite_tree,
    n_rows,
)
from lensbox.errors import ArgumentError, DivergenceError, ShapeError
from lensbox.engine.models import Apply, Model, apply_of, as_model, check_features
from lensbox.engine.progress import step_bar
from lensbox.engine.optim import (
    Optimizer,
    OptState,
    apply_updates,
    check_optimizer,
    learning_rate_at,
)

Params = Any
tree_map = jax.tree_util.tree_map


# ----------------------------------------------------------------------------------------------
# Losses: per-example losses l(f(x), y); the training objective is their batch mean.


def squared_loss(pred: jax.Array, y: jax.Array) -> jax.Array:
    """:math:`\\ell(f, y) = \\tfrac12 \\|y - f\\|^2`, the loss of the paper's smoother (section 4.1)."""
    err = pred - y
    return 0.5 * (err * err if err.ndim == 1 else jnp.sum(err * err, axis=-1))


def binary_cross_entropy(pred: jax.Array, y: jax.Array) -> jax.Array:
    """Cross-entropy of a probability ``pred`` in (0, 1) against a label ``y`` in {0, 1}."""
    p = jnp.clip(pred, 1e-12, 1 - 1e-12)
    return -(y * jnp.log(p) + (1 - y) * jnp.log1p(-p))


def softmax_cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """:math:`-\\log\\mathrm{softmax}(f(x))_{y}` for k-output logits (n, k) and integer labels
    ``y`` in ``{0, ..., k-1}`` (n,) or one-hot (or soft) labels (n, k)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    if y.ndim == logits.ndim:
        return -jnp.sum(y * log_p, axis=-1)
    return -jnp.take_along_axis(log_p, y.astype(jnp.int32)[..., None], axis=-1)[..., 0]


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "squared": squared_loss,
    "binary_cross_entropy": binary_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def get_loss(loss: str | Callable) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The per-example loss named ``loss`` (a key of :data:`LOSSES`), or ``loss`` itself."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ArgumentError(
            f"loss must be one of {sorted(LOSSES)} or a callable; got {loss!r}."
        )
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


def _no_state(params):
    return ()


def _keep_state(state, info):
    return state


def predictions_tracker(model: Model | Apply, X) -> Tracker:
    """Records the network's own predictions :math:`f_{\\theta_t}(X)` at each recording step."""
    apply, X = apply_of(model), as_inputs(X, "X")
    return Tracker(_no_state, _keep_state, lambda state, params: apply(params, X))


def _record_params(state, params):
    return params


#: Records the parameters :math:`\theta_t` themselves at each recording step (for a parameter path:
#: the *Optimisers* chapter compares each step's kernel form with the realised step).
parameters_tracker = Tracker(_no_state, _keep_state, _record_params)


# ----------------------------------------------------------------------------------------------
# State and results


class TrainState(NamedTuple):
    """Where a run stands: :math:`\\theta_t`, the optimiser state after step ``t``, and ``t``."""

    params: Params
    opt_state: OptState
    step: int


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: :math:`\\theta_T` (the last step completed).
        opt_state: the optimiser state after it.
        losses: the mini-batch training loss of every step this call completed, ``losses[i]`` for
            step ``start_step + 1 + i`` (measured at the parameters before the step).
        record_steps: steps at which trackers were recorded (``start_step`` is the start: 0 for
            the initialisation).
        records: for each tracker name, its records stacked along a leading axis.
        tracker_states: each tracker's final state.
        steps_done: number of steps this call completed.
        interrupted: ``True`` if a keyboard interrupt stopped training early.
        start_step: the step count of the starting state (0 from scratch).
    """

    params: Params
    opt_state: OptState
    losses: np.ndarray
    record_steps: np.ndarray
    records: dict[str, Any]
    tracker_states: dict[str, Any] = field(repr=False)
    steps_done: int
    interrupted: bool = False
    start_step: int = 0

    @property
    def state(self) -> TrainState:
        """The :class:`TrainState` to resume or branch from."""
        return TrainState(
            self.params, self.opt_state, self.start_step + self.steps_done
        )


def recording_steps(
    steps: int, every: int | None = None, *, log: int | None = None
) -> np.ndarray:
    """Steps to record at: every ``every`` steps, or ``log`` points spaced evenly in log-step.

    Always includes 0 and ``steps``.

    Examples:
        >>> import lensbox
        >>> lensbox.recording_steps(100, every=25).tolist()
        [0, 25, 50, 75, 100]
        >>> lensbox.recording_steps(1000, log=4).tolist()
        [0, 1, 10, 100, 1000]
        >>> lensbox.recording_steps(90, every=25).tolist()  # the last step is always kept
        [0, 25, 50, 75, 90]
        >>> lensbox.recording_steps(10).tolist()
        [0, 10]
    """
    steps = as_count(steps, "steps")
    if log is not None:
        log = as_count(log, "log", minimum=1)
        pts = np.unique(
            np.round(np.logspace(0, math.log10(max(steps, 1)), log)).astype(int)
        )
    elif every is not None:
        pts = np.arange(as_count(every, "every", minimum=1), steps + 1, every)
    else:
        pts = np.array([steps])
    return np.unique(np.concatenate([[0], pts[(pts > 0) & (pts <= steps)], [steps]]))


class BatchOrder:
    """The order of mini-batches: each epoch a permutation of the rows, split into
    ``n // batch_size`` batches (a last partial batch is dropped, like ``drop_last=True``).

    The permutation of epoch ``e`` is ``permutation(e)`` when given (an explicit source: a fixed
    list, another library's sampler), else a fresh one drawn by NumPy from ``seed`` and ``e``
    (``default_rng([*seed, e])``). ``seed`` is an integer or a tuple of integers, so related runs
    can name their streams without arithmetic on seeds: the children of
    :mod:`lensbox.connectivity.spawning` use ``(arm, child)``. Step ``t`` (from 1) always gets the
    same batch, so a run resumed at step ``t`` sees what the uninterrupted run would have.
    ``batch_size=None`` (or ``n``) means full-batch gradient descent. This is the one batch order
    of lensbox: :func:`train` and the BatchNorm trainer of
    :mod:`lensbox.connectivity.spawning` both draw from it.

    Example:
        >>> order = BatchOrder(10, 4, seed=(2, 1))
        >>> order.batches(1, 3).shape  # steps 1..3; two batches per epoch, the rest dropped
        (3, 4)
        >>> bool((order.batches(3, 1) == BatchOrder(10, 4, seed=(2, 1)).batches(3, 1)).all())
        True
    """

    def __init__(
        self,
        n: int,
        batch_size: int | None,
        seed: int | Sequence[int] = 0,
        permutation: Callable[[int], Sequence[int]] | None = None,
    ):
        n = as_count(n, "n")
        if n == 0:
            raise ArgumentError(
                "the training set is empty (0 rows); training needs at least one example."
            )
        batch_size = (
            n if batch_size is None else as_count(batch_size, "batch_size", minimum=1)
        )
        if batch_size > n:
            raise ArgumentError(
                f"batch_size must lie in [1, {n}] (the number of rows); got {batch_size}."
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed_words(seed)
        self.permutation = permutation
        self.per_epoch = n // self.batch_size
        self._epoch, self._perm = -1, None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self.permutation is None:
            return np.random.default_rng([*self.seed, epoch]).permutation(self.n)
        perm = np.asarray(self.permutation(epoch))
        if perm.shape != (self.n,) or not np.array_equal(
            np.sort(perm), np.arange(self.n)
        ):
            raise ArgumentError(
                f"permutation({epoch}) must return a permutation of range({self.n}); "
                f"got an array of shape {perm.shape}."
            )
        return perm

    def batches(self, first_step: int, count: int) -> np.ndarray:
        """Row indices of steps ``first_step .. first_step + count - 1``, shape (count, batch)."""
        out = np.empty((count, self.batch_size), dtype=np.int32)
        if self.batch_size == self.n and self.permutation is None:
            out[:] = np.arange(self.n)
            return out
        i, used = 0, self.per_epoch * self.batch_size
        while i < count:  # one slice per epoch spanned, not one per step
            epoch, j = divmod(first_step - 1 + i, self.per_epoch)
            if epoch != self._epoch:
                self._epoch, self._perm = epoch, self._epoch_order(epoch)
            take = min(count - i, self.per_epoch - j)
            block = self._perm[j * self.batch_size : used]
            out[i : i + take] = block[: take * self.batch_size].reshape(take, -1)
            i += take
        return out


def seed_words(seed) -> tuple[int, ...]:
    """A data seed as a tuple of non-negative integers: one integer is a 1-tuple; a tuple, list or
    1-D array of integers (``(arm, child)``) keeps its words. :class:`BatchOrder` and
    :func:`lensbox.connectivity.spawning.data_key` read seeds through it."""
    if np.ndim(seed) > 0:
        if len(seed) == 0:
            raise ArgumentError("seed must be an integer or a non-empty tuple of them.")
        return tuple(as_count(w, "seed") for w in seed)
    return (as_count(seed, "seed"),)


# ----------------------------------------------------------------------------------------------
# One step, and the compiled loop built once per (model, optimiser, loss, trackers)


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees of one structure stacked along a new leading axis (seeds, children, records)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def take_rows(X, idx):
    """Rows ``idx`` of an input array or of every leaf of an input pytree."""
    return tree_map(lambda a: a[idx], X)


def optimisation_step(
    apply: Apply,
    loss_fn: Callable,
    optimizer: Optimizer,
    trackers: Mapping[str, Tracker],
    carry,
    X,
    y,
    idx,
):
    """One optimisation step on the rows ``idx`` of ``(X, y)``, observed by ``trackers``.

    ``carry`` is ``(theta_{t-1}, optimiser state, tracker states)``; returns the new carry and the
    mini-batch loss at :math:`\\theta_{t-1}`. Pure and jittable: :func:`train` and
    :func:`lensbox.engine.seeds.train_seeds` (which ``vmap`` it over seeds) both step through it.
    """
    params_prev, opt_state, tstates = carry
    value, grads = jax.value_and_grad(
        lambda p: jnp.mean(loss_fn(apply(p, take_rows(X, idx)), y[idx]))
    )(params_prev)
    delta, opt_state = optimizer.update(grads, opt_state, params_prev)
    new = apply_updates(params_prev, delta)
    info = StepInfo(
        opt_state.count,
        params_prev,
        new,
        delta,
        idx,
        opt_state,
        learning_rate_at(optimizer.config, opt_state.count),
    )
    tstates = {k: trackers[k].update(tstates[k], info) for k in trackers}
    return (new, opt_state, tstates), value


class CompiledLoop(NamedTuple):
    """The jitted training loop and its recorder, as :func:`compiled_loop` returns them."""

    run: Callable  # (carry, batches, count, X, y) -> (carry, losses)
    record: Callable  # (tracker states, params) -> records


_COMPILED: "OrderedDict[tuple, Any]" = OrderedDict()
_COMPILED_MAX = 32


def cached_program(key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``, made once per ``key`` and kept: lensbox's one cache of compiled programs.

    Every jitted program that lensbox builds from objects a caller passes again (a model, an
    optimiser, trackers, a network) goes through it, so calling again with the same objects
    reuses the compilation. It keeps the 32 most recently used; a ``key`` with an unhashable
    piece is built each time, without caching.
    """
    try:
        hit = _COMPILED.get(key)
    except TypeError:  # an unhashable piece: build without caching
        return build()
    if hit is None:
        hit = _COMPILED[key] = build()
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return hit


def compiled_loop(
    apply: Apply,
    loss_fn: Callable,
    optimizer: Optimizer,
    trackers: Mapping[str, Tracker],
) -> CompiledLoop:
    """The jitted training loop and recorder for this (model, optimiser, loss, trackers).

    Built once and kept (:func:`cached_program`), so calling :func:`train` again with the same
    objects reuses the compiled program; ``X`` and ``y`` are arguments, not constants, so new data
    of the same shapes reuses it too.
    """
    key = (
        "training loop",
        apply,
        loss_fn,
        optimizer,
        tuple(sorted(trackers.items(), key=lambda kv: kv[0])),
    )
    return cached_program(key, lambda: _build_loop(apply, loss_fn, optimizer, trackers))


def _build_loop(apply, loss_fn, optimizer, trackers) -> CompiledLoop:
    names = sorted(trackers)

    @jax.jit
    def run(carry, batches, count, X, y):
        losses = jnp.full((batches.shape[0],), jnp.nan, dtype=jnp.zeros(()).dtype)

        def body(t, state):
            carry, losses = state
            carry, value = optimisation_step(
                apply, loss_fn, optimizer, trackers, carry, X, y, batches[t]
            )
            return carry, losses.at[t].set(value)

        return jax.lax.fori_loop(0, count, body, (carry, losses))

    @jax.jit
    def record(tstates, params):
        return {k: trackers[k].record(tstates[k], params) for k in names}

    return CompiledLoop(run, record)


# ----------------------------------------------------------------------------------------------
# Checks at the boundary


def check_targets(y, n: int, out_shape: tuple[int, ...], loss) -> jax.Array:
    """``y`` as a finite array that fits the model's outputs under ``loss``.

    One output takes ``y`` of shape (n,) (or (n, 1)); k outputs take (n, k), or integer labels (n,)
    with ``softmax_cross_entropy``.
    """
    arr = np.asarray(y)
    if arr.ndim == 0:
        raise ShapeError(
            f"y must have one entry per row of X ({n} rows); got a scalar."
        )
    if arr.shape[0] != n:
        raise ShapeError(f"y has {arr.shape[0]} entries but the inputs have {n} rows.")
    check_finite(arr, "y")
    if out_shape == () and arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    labels_ok = loss is softmax_cross_entropy and arr.ndim == 1 and len(out_shape) == 1
    if labels_ok:
        k = out_shape[0]
        if not np.all((arr == np.round(arr)) & (arr >= 0) & (arr < k)):
            raise ArgumentError(
                f"y must hold class labels in 0..{k - 1} for softmax_cross_entropy "
                f"on a {k}-output model; got values in [{arr.min()}, {arr.max()}]."
            )
        return jnp.asarray(arr.astype(np.int32))
    if arr.shape[1:] != out_shape:
        what = (
            "one output, so y must be a vector (n,)"
            if out_shape == ()
            else f"{out_shape[0]} outputs, so y must have shape (n, {out_shape[0]})"
        )
        raise ShapeError(f"y has shape {arr.shape} but the model has {what}.")
    return jnp.asarray(arr)


def _starting_state(start: Params | TrainState, optimizer: Optimizer) -> TrainState:
    check_optimizer(optimizer)
    if isinstance(start, TrainState):
        state = TrainState(
            start.params, start.opt_state, as_count(start.step, "start.step")
        )
    else:
        state = TrainState(start, None, 0)
    if not jax.tree_util.tree_leaves(state.params):
        raise ArgumentError("params is empty: the model has no parameters to train.")
    check_finite_tree(state.params, "the initial params")
    opt_state = (
        optimizer.init(state.params) if state.opt_state is None else state.opt_state
    )
    return state._replace(opt_state=opt_state)


def _params_finite(params) -> bool:
    return all(
        bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(params)
    )


def _divergence_message(
    bad_step: int, last_step: int, what: str, initial_loss: float, optimizer
) -> str:
    rate = getattr(getattr(optimizer, "config", None), "learning_rate", None)
    advice = (
        f"Lower the learning rate (now {rate:g}) or add warm-up."
        if rate is not None
        else "Lower the learning rate or add warm-up."
    )
    return (
        f"training diverged at step {bad_step} of {last_step} ({what}; initial loss "
        f"{initial_loss:.3g}) from finite initial parameters. {advice} The result up to the "
        f"last completed call is in this error's `partial` attribute."
    )


class _Records:
    """Tracker records collected at the recording steps, stacked on demand."""

    def __init__(self, names, record):
        self.names, self.record, self.steps, self.values = list(names), record, [], []

    def add(self, step: int, carry) -> None:
        """Record the trackers of ``carry = (params, optimiser state, tracker states)``."""
        self.steps.append(int(step))
        self.values.append(jax.device_get(self.record(carry[2], carry[0])))

    def stacked(self) -> dict[str, Any]:
        if not self.values:
            return {k: None for k in self.names}
        return {
            k: tree_map(lambda *a: np.stack(a), *[v[k] for v in self.values])
            for k in self.names
        }


# ----------------------------------------------------------------------------------------------
# The loop


def train(
    model: Model | Apply,
    params: Params | TrainState,
    optimizer: Optimizer,
    X,
    y,
    *,
    steps: int,
    batch_size: int | None = None,
    loss: str | Callable = "squared",
    seed: int = 0,
    order: BatchOrder | None = None,
    trackers: Mapping[str, Tracker] | None = None,
    record_at: Sequence[int] | None = None,
    steps_per_call: int = 256,
    progress: bool | None = None,
    divergence_factor: float = 1e6,
) -> TrainResult:
    r"""Train ``model`` for ``steps`` optimisation steps, from scratch or from a :class:`TrainState`.

    Args:
        model: a :class:`~lensbox.engine.models.Model` or an ``apply(params, X)`` function.
        params: :math:`\theta_0`, or a :class:`TrainState` (such as ``result.state`` of an earlier
            run) to continue from: its parameters, optimiser state and step count ``t_0``.
        optimizer: from :mod:`lensbox.engine.optim`, or any optax ``GradientTransformation``
            (such as ``optax.adamw(1e-3)``; see :func:`lensbox.engine.optim.from_optax`).
        X, y: training inputs (an array with a leading row axis, or a pytree of them) and targets
            ((n,) for one output; (n, k), or labels (n,) with ``softmax_cross_entropy``, for k).
        steps: number of steps T this call takes (steps :math:`t_0+1 .. t_0+T`).
        batch_size: mini-batch size; ``None`` for full batch.
        loss: ``"squared"`` (:math:`\tfrac12\|y-f\|^2`), ``"binary_cross_entropy"``,
            ``"softmax_cross_entropy"``, or a function ``(pred, y) -> per-example loss``.
        seed: seeds the order of mini-batches (ignored when ``order`` is given).
        order: an explicit :class:`BatchOrder` over the rows of ``X``.
        trackers: named :class:`Tracker` objects observing every step; they start at ``params``.
        record_at: steps (in :math:`[t_0, t_0+T]`) at which trackers record; default: the end.
        steps_per_call: most steps run in one compiled call between Python visits.
        progress: show a tqdm progress bar (default: when the run has more than 2000 steps);
            inside :func:`lensbox.engine.progress.shared_steps` the steps go to the shared bar.
        divergence_factor: a mini-batch loss above this factor times (initial loss + 1), or a
            non-finite loss or parameter, stops training with :class:`~lensbox.DivergenceError`.

    Returns:
        A :class:`TrainResult`; its ``state`` continues the run.

    Examples:
        Full-batch gradient descent on 16 points of a sine, recording the network's predictions
        every 100 steps:

        >>> import jax, jax.numpy as jnp
        >>> import lensbox
        >>> X = jnp.linspace(-1, 1, 16)[:, None]
        >>> y = jnp.sin(3 * X[:, 0])
        >>> net = lensbox.mlp((32,))
        >>> params = net.init(jax.random.PRNGKey(0), 1)
        >>> opt = lensbox.sgd(0.1)
        >>> result = lensbox.train(
        ...     net, params, opt, X, y, steps=200, progress=False,
        ...     trackers={"f": lensbox.predictions_tracker(net, X)},
        ...     record_at=lensbox.recording_steps(200, every=100),
        ... )
        >>> result.losses.shape, result.record_steps.tolist()
        ((200,), [0, 100, 200])
        >>> result.records["f"].shape  # (records, rows)
        (3, 16)
        >>> bool(result.losses[-1] < result.losses[0])
        True

        ``result.state`` continues the run (same optimiser state, step count going on):

        >>> more = lensbox.train(net, result.state, opt, X, y, steps=50, progress=False)
        >>> more.state.step
        250
    """
    optimizer = check_optimizer(optimizer)
    model, start, steps = (
        as_model(model),
        _starting_state(params, optimizer),
        as_count(steps, "steps"),
    )
    X = as_inputs(X, "X")
    y = check_targets(
        y, n_rows(X), check_features(model, start.params, X, "X"), get_loss(loss)
    )
    order = BatchOrder(n_rows(X), batch_size, seed) if order is None else order
    trackers, first, last = dict(trackers or {}), start.step, start.step + steps
    record_at = (
        np.array([first, last])
        if record_at is None
        else as_counts(record_at, "record_at", minimum=first, maximum=last)
    )
    compiled = compiled_loop(model.apply, get_loss(loss), optimizer, trackers)
    carry = (
        start.params,
        start.opt_state,
        {k: trackers[k].init(start.params) for k in trackers},
    )
    records = _Records(sorted(trackers), compiled.record)
    if first in record_at:
        records.add(first, carry)
    loop = _Loop(compiled, order, X, y, steps_per_call, divergence_factor, optimizer)
    targets = [int(s) for s in record_at if s > first]
    point = checkpoint(
        "train",
        lambda: (
            carry,
            X,
            y,
            [first, last, targets, loop.per_call, divergence_factor, order.n],
            order.batches(1, order.per_epoch),
        ),
    )
    bar = _progress_bar(steps, progress)
    try:
        carry = loop.run(carry, first, last, targets, records, bar, point)
    except KeyboardInterrupt:
        carry = loop.carry
    finally:
        if bar is not None:
            bar.close()
    return loop.result(carry, records, first, interrupted=loop.done < steps)


def _progress_bar(steps: int, progress: bool | None):
    return step_bar(steps, steps > 2000 if progress is None else progress)


class _Loop:
    """The Python side of :func:`train`: compiled calls between recording steps, divergence checks."""

    def __init__(
        self, compiled, order, X, y, steps_per_call, divergence_factor, optimizer
    ):
        self.compiled, self.order, self.X, self.y = compiled, order, X, y
        self.per_call = as_count(steps_per_call, "steps_per_call", minimum=1)
        self.factor, self.optimizer = divergence_factor, optimizer
        self.losses, self.done, self.carry, self.initial_loss = [], 0, None, None

    def run(self, carry, first, last, targets, records, bar, point=None):
        """Steps ``first + 1 .. last`` from ``carry``; with a checkpoint ``point``
        (:mod:`lensbox.engine.checkpoints`), resumed from its saved state and saved when one is
        due and at the end."""
        self.carry = carry
        saved = None if point is None else point.load()
        if saved is not None:
            self.carry = restore(carry, saved["carry"])
            self.done, self.losses = saved["done"], saved["losses"]
            self.initial_loss = saved["initial_loss"]
            records.steps, records.values = saved["record_steps"], saved["records"]
            if bar is not None and self.done:
                bar.update(self.done)

        def state():
            return dict(
                carry=self.carry,
                done=self.done,
                losses=self.losses,
                initial_loss=self.initial_loss,
                record_steps=records.steps,
                records=records.values,
            )

        while first + self.done < last:
            now = first + self.done
            count = min(
                self.per_call, next((s for s in targets if s > now), last) - now
            )
            batches = jnp.asarray(self.order.batches(now + 1, self.per_call))
            new, losses = self.compiled.run(self.carry, batches, count, self.X, self.y)
            self._check(new, np.asarray(losses[:count]), now, last, records)
            self.carry, self.done = new, self.done + count
            self.losses.append(np.asarray(losses[:count]))
            if bar is not None:
                bar.update(count)
            if now + count in targets:
                records.add(now + count, new)
            if point is not None and point.due():
                point.save(state())
        if point is not None:
            point.save(state())
        return self.carry

    def _check(self, new, losses, now, last, records):
        if self.initial_loss is None:
            self.initial_loss = float(losses[0]) if np.isfinite(losses[0]) else 0.0
        bad = ~np.isfinite(losses) | (
            losses > self.factor * (abs(self.initial_loss) + 1.0)
        )
        params_ok = _params_finite(new[0])
        if not bad.any() and params_ok:
            return
        found = int(np.argmax(bad)) if bad.any() else len(losses) - 1
        what = f"loss {losses[found]:.3g}" if bad.any() else "non-finite parameters"
        partial = self.result(self.carry, records, now - self.done)
        raise DivergenceError(
            _divergence_message(
                now + found + 1, last, what, self.initial_loss, self.optimizer
            ),
            now + found + 1,
            partial,
        )

    def result(self, carry, records, first, interrupted=False) -> TrainResult:
        losses = np.concatenate(self.losses) if self.losses else np.empty(0)
        return TrainResult(
            carry[0],
            carry[1],
            losses,
            np.asarray(records.steps, int),
            records.stacked(),
            dict(carry[2]),
            self.done,
            interrupted,
            first,
        )
