r"""Training networks with BatchNorm that can stop at step :math:`t'` and spawn children.

The linear-mode-connectivity protocol (paper section 4.3, App. C.3): a parent
network trains from :math:`\theta_0` to a checkpoint :math:`t'`; two *children* then continue from
the same parameters, optimiser state (the momentum buffer), BatchNorm running statistics and step
count, each with its own batch order and augmentation, to the end :math:`T`.

A run is a :class:`SpawnState` ``(params, bn_state, opt_state, step)`` and a *data seed* (an
integer or a tuple of integers, e.g. ``(arm, child)``). :func:`make_trainer` returns
``advance(state, seed, stop) -> state``: plain mini-batch SGD with softmax cross-entropy from
``state.step`` to ``stop``. The batch of step ``s`` (0-based) is step ``s + 1`` of
:class:`lensbox.BatchOrder` ``(n, batch_size, seed)``, lensbox's one batch order (each epoch a
fresh permutation of the training rows, the remainder dropped as PyTorch's ``drop_last``); the
augmentation of step ``s`` draws from ``fold_in(key(seed), s)``. Hence stopping at :math:`t'`
and resuming with the same seed reproduces the uninterrupted run, and a child given a new seed sees
a new data order from :math:`t'` on. The batches are drawn on the host, a chunk of steps at a time,
and the steps themselves are one compiled, vmapped program: :func:`train_many` runs many parents or
children (seeds, checkpoints, children) side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine.checks import as_count
from lensbox.engine.devices import place_runs
from lensbox.errors import ArgumentError, DivergenceError
from lensbox.connectivity.networks import BatchNormNetwork, check_images, check_labels
from lensbox.engine.optim import Optimizer, OptState, apply_updates
from lensbox.engine.progress import step_bar
from lensbox.engine.training import (
    BatchOrder,
    cached_program,
    seed_words,
    softmax_cross_entropy,
    stack,
)

Params = Any


class SpawnState(NamedTuple):
    """Everything a run needs to resume: parameters, BatchNorm state, optimiser state, step.

    :class:`lensbox.TrainState` is the same idea for :func:`lensbox.train`, which has no
    BatchNorm state."""

    params: Params
    bn_state: Params
    opt_state: OptState
    step: jax.Array  # steps taken so far (0 at initialisation)


def data_key(seed: int | Sequence[int]) -> jax.Array:
    """The augmentation key of a data seed: ``PRNGKey(seed[0])`` folded with each further word."""
    words = seed_words(seed)
    key = jax.random.PRNGKey(words[0])
    for word in words[1:]:
        key = jax.random.fold_in(key, word)
    return key


def init_state(
    net: BatchNormNetwork,
    optimizer: Optimizer,
    key: jax.Array,
    input_shape: Sequence[int],
) -> SpawnState:
    """:math:`\\theta_0`, fresh BatchNorm statistics, the optimiser's initial state, step 0."""
    params, bn_state = net.init(key, input_shape)
    return SpawnState(
        params, bn_state, optimizer.init(params), jnp.zeros((), jnp.int32)
    )


def make_trainer(
    net: BatchNormNetwork,
    optimizer: Optimizer,
    X: jax.Array,
    y: jax.Array,
    *,
    batch_size: int,
    augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> Trainer:
    """``advance(state, seed, stop)``: SGD steps ``state.step, ..., stop - 1`` (see module doc).

    Args:
        net: a :class:`~lensbox.connectivity.networks.BatchNormNetwork` (trained in BatchNorm's training mode).
        optimizer: a :mod:`lensbox.engine.optim` optimiser carrying its own learning-rate schedule, e.g.
            the paper's ``sgd(0.1, momentum=0.9, decay_at=(32_000, 48_000))`` (divided by ten
            after each of those steps).
        X, y: training images ``(n, h, w, c)`` and integer class labels ``(n,)``.
        batch_size: rows per step; ``n // batch_size`` steps make an epoch.
        augment: ``augment(key, images) -> images`` applied to every batch (e.g.
            :func:`lensbox.connectivity.augment.augment`), or ``None``.
    """
    X = check_images(X, "X")
    n = int(X.shape[0])
    y = check_labels(net, y, n, "y")
    batch_size = as_count(batch_size, "batch_size", minimum=1)
    if batch_size > n:
        raise ArgumentError(
            f"batch_size must lie in [1, {n}] (the training rows); got {batch_size!r}."
        )

    def loss(params, bn_state, xb, yb):
        logits, new_state = net.apply(params, bn_state, xb, True)
        return jnp.mean(softmax_cross_entropy(logits, yb)), new_state

    def one_step(state: SpawnState, first, rows, key, X, y) -> SpawnState:
        s = state.step
        batch = rows[s - first]  # this chunk's batches start at step ``first``
        xb = X[batch]
        if augment is not None:
            xb = augment(jax.random.fold_in(jax.random.fold_in(key, s), 1), xb)
        grads, bn_state = jax.grad(loss, has_aux=True)(
            state.params, state.bn_state, xb, y[batch]
        )
        delta, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return SpawnState(
            apply_updates(state.params, delta), bn_state, opt_state, s + 1
        )

    def steps(state: SpawnState, rows, key, stop, X, y) -> SpawnState:
        first = state.step
        return jax.lax.while_loop(
            lambda st: st.step < stop,
            lambda st: one_step(st, first, rows, key, X, y),
            state,
        )

    return Trainer(steps, X, y, batch_size)


@dataclass(frozen=True, eq=False)
class Trainer:
    """What :func:`make_trainer` returns: ``trainer(state, seed, stop)`` advances one run.

    ``steps(state, rows, key, stop, X, y)`` is the pure, compiled part: the steps from
    ``state.step`` to ``stop``, step ``state.step + i`` on the rows ``rows[i]``. The training data
    are its arguments, not constants of a compiled program, so :func:`train_many` compiles once
    however large the data set.
    """

    steps: Callable[..., SpawnState]
    X: jax.Array
    y: jax.Array
    batch_size: int

    def order(self, seed: int | Sequence[int]) -> BatchOrder:
        """The batch order of the run with data seed ``seed``."""
        return BatchOrder(int(self.X.shape[0]), self.batch_size, seed)

    def __call__(
        self, state: SpawnState, seed: int | Sequence[int], stop: int
    ) -> SpawnState:
        one = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], state)
        done, _ = train_many(self, one, [seed], [stop], progress=False)
        return index(done, 0)


def index(tree: Any, i) -> Any:
    """The ``i``-th entry along the leading axis of every leaf."""
    return jax.tree_util.tree_map(lambda leaf: leaf[i], tree)


def _vectorised(steps):
    """``jit(vmap(steps))`` over states, batches, keys and stops (the data shared), built once per
    trainer (:func:`~lensbox.engine.training.cached_program`) so that repeated calls reuse the
    compilation."""
    return cached_program(
        ("spawning steps", steps),
        lambda: jax.jit(jax.vmap(steps, in_axes=(0, 0, 0, 0, None, None))),
    )


def train_many(
    advance: Trainer,
    states: SpawnState,
    seeds: Sequence[int | Sequence[int]],
    stops,
    *,
    chunk: int = 500,
    progress: bool = True,
    desc: str = "training",
    devices: Sequence[Any] | None = None,
) -> tuple[SpawnState, bool]:
    """Run many states side by side (leading axis) until each reaches its own ``stops[i]``.

    Run ``i`` takes its batches from ``advance.order(seeds[i])`` and its augmentation from
    :func:`data_key` ``(seeds[i])``. Steps run in compiled chunks of ``chunk`` steps under one
    ``vmap`` (the chunk's batches drawn on the host first); between chunks a tqdm bar moves (with
    ``progress``, or the shared one of :func:`lensbox.engine.progress.shared_steps`), and Ctrl-C
    stops cleanly, returning the states reached and ``interrupted=True``. The runs are spread over
    ``devices`` (:func:`lensbox.engine.devices.place_runs`; default: all of ``jax.devices()``,
    nothing moves on one device).

    Returns:
        ``(states, interrupted)``.
    """
    chunk = as_count(chunk, "chunk", minimum=1)
    stops = jnp.asarray(stops, jnp.int32)
    if stops.shape != states.step.shape or stops.ndim != 1:
        raise ArgumentError(
            f"stops must have one entry per state, shape {states.step.shape}; "
            f"got {stops.shape}."
        )
    if len(seeds) != stops.shape[0]:
        raise ArgumentError(
            f"seeds must hold one data seed per run ({stops.shape[0]}); got {len(seeds)}."
        )
    orders = [advance.order(s) for s in seeds]
    keys = jnp.stack([data_key(order.seed) for order in orders])
    states, keys = place_runs((states, keys), devices)
    run = _vectorised(advance.steps)
    first, last = int(jnp.min(states.step)), int(jnp.max(stops))
    bounds = list(range(first + chunk, last, chunk)) + [last]
    bar = step_bar(max(last - first, 0), progress, desc)
    done = first
    previous = states
    rows = np.zeros((len(orders), chunk, advance.batch_size), np.int32)
    try:
        for bound in bounds:
            ends = np.minimum(np.asarray(stops), bound)
            for i, (order, start) in enumerate(zip(orders, np.asarray(states.step))):
                if (
                    ends[i] > start
                ):  # at most ``chunk`` steps (every run is at >= the last bound)
                    rows[i, : ends[i] - start] = order.batches(
                        int(start) + 1, int(ends[i] - start)
                    )
            states = run(states, rows, keys, jnp.asarray(ends), advance.X, advance.y)
            jax.block_until_ready(states.step)
            finite = _finite_runs(states.params)
            if not finite.all():
                bad = np.flatnonzero(~finite)
                raise DivergenceError(
                    f"training diverged by step {bound}: run(s) {bad[:5].tolist()} of "
                    f"{len(finite)} have non-finite parameters (lower the learning rate). "
                    "The states before this chunk are in this error's `partial` attribute.",
                    bound,
                    previous,
                )
            previous = states
            if bar is not None:
                bar.update(bound - done)
            done = bound
    except KeyboardInterrupt:
        return states, True
    finally:
        if bar is not None:
            bar.close()
    return states, False


def _finite_runs(params: Params) -> np.ndarray:
    """Whether each run (leading axis) has finite parameters."""
    leaves = jax.tree_util.tree_leaves(params)
    flags = [
        jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
        for leaf in leaves
    ]
    return np.asarray(jnp.all(jnp.stack(flags), axis=0))


def spawn(parents: SpawnState, n_children: int) -> SpawnState:
    """``n_children`` copies of each parent state, leading axes ``(parents..., n_children)``.

    Children share parameters, BatchNorm statistics, the optimiser state (momentum) and the step:
    everything but the data order, which the caller gives each child through its own key.
    """
    n_children = as_count(n_children, "n_children", minimum=1)
    axis = int(np.ndim(parents.step))  # after the parents' own leading axes
    return jax.tree_util.tree_map(
        lambda leaf: jnp.stack([leaf] * int(n_children), axis=axis), parents
    )


def _flatten(tree: Any, axes: int) -> Any:
    return jax.tree_util.tree_map(
        lambda leaf: leaf.reshape((-1,) + leaf.shape[axes:]), tree
    )


def _unflatten(tree: Any, lead: tuple[int, ...]) -> Any:
    return jax.tree_util.tree_map(
        lambda leaf: leaf.reshape(lead + leaf.shape[1:]), tree
    )


def train_to_checkpoints(
    advance: Trainer,
    states: SpawnState,
    seeds: Sequence[int | Sequence[int]],
    checkpoints: Sequence[int],
    *,
    progress: bool = True,
    desc: str = "parent",
) -> SpawnState:
    r"""Train runs (leading axis) through the sorted ``checkpoints``, keeping the state at each;
    run ``i`` on the data seed ``seeds[i]`` (see :func:`train_many`).

    Returns:
        States with leading axes ``(len(checkpoints), runs)``: the parents :math:`\theta_{t'}`.

    Raises:
        KeyboardInterrupt: re-raised if training was interrupted, so no half-trained parent is
            mistaken for a checkpoint.
    """
    checkpoints = [as_count(c, "checkpoints") for c in checkpoints]
    if checkpoints != sorted(checkpoints):
        raise ArgumentError(
            f"checkpoints must be sorted non-negative steps; got {checkpoints}."
        )
    kept = []
    for stop in checkpoints:
        states, interrupted = train_many(
            advance,
            states,
            seeds,
            jnp.full(states.step.shape, stop),
            progress=progress,
            desc=f"{desc} to step {stop}",
        )
        if interrupted:
            raise KeyboardInterrupt
        kept.append(states)
    return stack(kept)


def train_children(
    advance: Trainer,
    parents: SpawnState,
    n_children: int,
    seed: int,
    stop: int,
    *,
    progress: bool = True,
) -> tuple[SpawnState, bool]:
    r"""Spawn ``n_children`` children from every parent and train them all, side by side, to ``stop``.

    ``parents`` has two leading axes (checkpoints, seeds). Each child gets its own data seed
    ``(seed, i)``, ``i`` its position in the flattened (checkpoints, seeds, children) order: a
    new batch order and augmentation from :math:`t'` on. It shares everything else with its parent.

    Returns:
        ``(children, interrupted)``, children with leading axes ``(checkpoints, seeds, n_children)``.
    """
    kids = spawn(parents, n_children)
    lead = tuple(kids.step.shape)
    flat = _flatten(kids, 3)
    seed = as_count(seed, "seed")
    done, interrupted = train_many(
        advance,
        flat,
        [(seed, i) for i in range(int(np.prod(lead)))],
        jnp.full(flat.step.shape, as_count(stop, "stop")),
        progress=progress,
        desc="children",
    )
    return _unflatten(done, lead), interrupted
