r"""An optimiser as a chain of small linear pieces, written once and used twice.

Every optimiser of the book is a sequence of :class:`Piece` objects. A piece maps an *update*
:math:`u` (it starts as the gradient :math:`g_t`) to a new update, keeping a linear state of its own
(a momentum trace) and possibly reading the parameters :math:`\theta_{t-1}` (weight decay):

=====================  ===============================================================  ================
piece                  map                                                              paper
=====================  ===============================================================  ================
:func:`add_decay`      :math:`u \mapsto u + \lambda\theta_{t-1}`                        Eqs. 12, 20, 21
:func:`heavy_ball`     :math:`v_t = \beta v_{t-1} + u`; passes on :math:`v_t`           Eq. 11 (PyTorch)
:func:`ema`            :math:`m_t = \beta m_{t-1} + (1-\beta)u`; passes on :math:`m_t`  Eqs. 11, 19
:func:`debias`         :math:`u \mapsto u / (1-\beta^t)`                                Eqs. 11, 19
:func:`second_moment`  identity; measures :math:`\phi_t = \sqrt{\hat v_t} + \epsilon`   section 5
:func:`precondition`   :math:`u \mapsto \mathrm{diag}(1/\phi_t)\,u`                     Eqs. 18, 21
:func:`learning_rate`  :math:`u \mapsto -\gamma_t u` (a :class:`Schedule`)              Eq. 1
=====================  ===============================================================  ================

Where weight decay sits decides its kind: before the momentum trace it is *coupled* (L2 decay, added
to the gradient), after the preconditioner it is *decoupled* (AdamW). The same piece serves both.

**Why linear pieces.** Given the numbers a run measures (the step :math:`t`, the learning rate
:math:`\gamma_t`, Adam's :math:`\phi_t`), every piece is linear in ``(u, state, theta)``. So the
chain that steps the parameters also steps any quantity written as an affine function of the labels,
:math:`\mathbf A\mathbf y + \mathbf a`: store it as the matrix ``[A | a]`` (``p x (n + 1)``) and run
the pieces column by column. That is how :mod:`lensbox.engine.smoother` obtains the smoother's
parameter-space state of Eqs. 16-21 (paper App. B.1) without a second description of any optimiser.
A per-parameter factor (``phi``, ``p`` entries) broadcasts over the trailing columns.

The one non-linear part of an optimiser, the statistics of the gradients (Adam's second moment), is
kept apart: a piece ``observe``-s the update it receives in the real run, and ``publish``-es the
numbers later pieces read (``phi``). A smoother reads those statistics from the real run's state,
as the paper does (section 5).

Pieces whose map is ``u -> scalar * u / divisor`` with no state and no parameters (learning rate,
bias correction, preconditioner) say so through ``scale``; a chain made only of them is one diagonal
matrix per step, which lets the smoother use the cheaper tangent-kernel route (Eqs. 14, 17, 18).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from lensbox.engine.checks import as_count
from lensbox.errors import ArgumentError

Tree = Any
tree_map = jax.tree_util.tree_map


# ----------------------------------------------------------------------------------------------
# Learning-rate schedules


@dataclass(frozen=True)
class Schedule:
    r"""The learning rate :math:`\gamma_t` of step ``t`` (1-based).

    .. math:: \gamma_t = \gamma\,\min(1, t / t_\text{warm-up})\;
        \rho^{\,|\{s \in \text{decay\_at} : t > s\}|},

    a linear warm-up over ``warmup_steps`` steps, then division by ``1/decay_factor`` once each
    ``decay_at`` step has been completed (a step schedule: ``decay_at=(a, b)`` and ``decay_factor=0.1``
    give :math:`\gamma` for steps 1..a, :math:`\gamma/10` for a+1..b and :math:`\gamma/100` after,
    as PyTorch's ``MultiStepLR`` and optax's ``piecewise_constant_schedule`` count).
    """

    peak: float
    warmup_steps: int = 0
    decay_at: tuple[int, ...] = ()
    decay_factor: float = 0.1

    def __post_init__(self):
        if (
            isinstance(self.peak, bool)
            or not isinstance(self.peak, numbers.Real)
            or not self.peak > 0
        ):
            raise ArgumentError(
                f"learning_rate must be positive (a number); got {self.peak!r}."
            )
        object.__setattr__(self, "peak", float(self.peak))
        object.__setattr__(
            self, "warmup_steps", as_count(self.warmup_steps, "warmup_steps")
        )
        steps = tuple(as_count(s, "decay_at", minimum=1) for s in self.decay_at)
        if list(steps) != sorted(set(steps)):
            raise ArgumentError(
                f"decay_at must be increasing steps; got {self.decay_at!r}."
            )
        object.__setattr__(self, "decay_at", steps)
        if not (0 < self.decay_factor <= 1):
            raise ArgumentError(
                f"decay_factor must lie in (0, 1]; got {self.decay_factor!r}."
            )
        object.__setattr__(self, "decay_factor", float(self.decay_factor))

    def __call__(self, t) -> jax.Array:
        t = jnp.asarray(t, dtype=jnp.zeros(()).dtype)
        rate = jnp.asarray(self.peak, t.dtype)
        if self.warmup_steps > 0:
            rate = rate * jnp.minimum(1.0, t / self.warmup_steps)
        for s in self.decay_at:
            rate = rate * jnp.where(t > s, self.decay_factor, 1.0)
        return rate


# ----------------------------------------------------------------------------------------------
# Pieces


def _no_state(like: Tree) -> Any:
    return ()


def _keep(u: Tree, stats: Any, t: jax.Array) -> Any:
    return stats


def _publish_nothing(stats: Any, t: jax.Array) -> dict:
    return {}


class Piece(NamedTuple):
    """One linear step of an optimiser (see the module docstring).

    Attributes:
        spec: a hashable description (name and hyper-parameters); two pieces with equal ``spec``
            do the same thing, which is how a smoother checks it follows the run's optimiser.
        apply: ``(u, state, theta, context) -> (u, state)``, linear in ``(u, state, theta)``;
            ``context`` holds ``t`` and what earlier pieces published.
        init: ``like -> state``, the zero state shaped like ``like`` (the parameters, or a smoother's
            ``p x columns`` matrix).
        uses_params: whether ``apply`` reads ``theta``.
        scale: for a memoryless piece that ignores ``theta``: ``context -> (scalar, divisor)`` with
            ``apply(u) = scalar * u / divisor`` (``divisor`` a tree like the parameters, or ``None``).
        init_stats, observe, publish: the non-linear statistics of the real run (see
            :func:`second_moment`): ``params -> stats``, ``(u, stats, t) -> stats`` and
            ``(stats, t) -> dict``.
    """

    spec: tuple
    apply: Callable[[Tree, Any, Tree, dict], tuple[Tree, Any]]
    init: Callable[[Tree], Any] = _no_state
    uses_params: bool = False
    scale: Callable[[dict], tuple[Any, Tree | None]] | None = None
    init_stats: Callable[[Tree], Any] = _no_state
    observe: Callable[[Tree, Any, jax.Array], Any] = _keep
    publish: Callable[[Any, jax.Array], dict] = _publish_nothing


def _columns(factor, x):
    """``factor`` (shaped like a parameter leaf, or a scalar) broadcast over ``x``'s trailing axes."""
    factor = jnp.asarray(factor)
    return (
        factor.reshape(factor.shape + (1,) * (x.ndim - factor.ndim))
        if factor.ndim
        else factor
    )


def scale_tree(u: Tree, scalar, divisor: Tree | None) -> Tree:
    """``scalar * u / divisor`` leaf by leaf; ``divisor`` broadcasts over trailing columns."""
    unit = isinstance(scalar, float) and scalar == 1.0  # skip a pass over u
    if divisor is None:
        return u if unit else tree_map(lambda x: scalar * x, u)
    if unit:
        return tree_map(lambda x, d: x / _columns(d, x), u, divisor)
    return tree_map(lambda x, d: scalar * x / _columns(d, x), u, divisor)


def diagonal_piece(
    spec: tuple, scale: Callable[[dict], tuple[Any, Tree | None]], **fields
) -> Piece:
    """A memoryless piece ``u -> scalar * u / divisor`` given by its ``scale(context)``."""

    def apply(u, state, theta, context):
        scalar, divisor = scale(context)
        return scale_tree(u, scalar, divisor), state

    return Piece(spec, apply, scale=scale, **fields)


def learning_rate(schedule: Schedule) -> Piece:
    r""":math:`u \mapsto -\gamma_t u`: the step is minus the learning rate times the update."""
    return diagonal_piece(
        ("learning_rate", schedule), lambda c: (-schedule(c["t"]), None)
    )


def debias(beta: float) -> Piece:
    r""":math:`u \mapsto u / (1-\beta^t)`, the bias correction of an EMA started at zero."""

    def scale(context):
        t = context["t"].astype(jnp.zeros(()).dtype)
        return 1.0 / (1.0 - beta**t), None

    return diagonal_piece(("debias", float(beta)), scale)


def precondition() -> Piece:
    r""":math:`u \mapsto \mathrm{diag}(1/\phi_t)\,u` with :math:`\phi_t` published by
    :func:`second_moment` earlier in the chain (Eq. 18; the Adam kernel of section 5)."""
    return diagonal_piece(("precondition",), lambda c: (1.0, c["phi"]))


def second_moment(b2: float, eps: float) -> Piece:
    r"""Measures Adam's :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) u^2` from the update it receives
    (the gradient) and publishes :math:`\phi_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon`; passes
    ``u`` on unchanged. The only non-linear statistic of the book's optimisers."""

    def observe(u, nu, t):
        return tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, u)

    def publish(nu, t):
        correction = 1 - b2 ** t.astype(jnp.zeros(()).dtype)
        return {"phi": tree_map(lambda v: jnp.sqrt(v / correction) + eps, nu)}

    return diagonal_piece(
        ("second_moment", float(b2), float(eps)),
        lambda c: (1.0, None),
        init_stats=lambda params: tree_map(jnp.zeros_like, params),
        observe=observe,
        publish=publish,
    )


def _trace(spec: tuple, beta: float, weight: float) -> Piece:
    def apply(u, trace, theta, context):
        trace = tree_map(lambda v, x: beta * v + weight * x, trace, u)
        return trace, trace

    return Piece(spec, apply, init=lambda like: tree_map(jnp.zeros_like, like))


def heavy_ball(beta: float) -> Piece:
    r""":math:`v_t = \beta v_{t-1} + u`, passing on :math:`v_t` (PyTorch's and optax's SGD momentum)."""
    return _trace(("heavy_ball", float(beta)), beta, 1.0)


def ema(beta: float) -> Piece:
    r""":math:`m_t = \beta m_{t-1} + (1-\beta) u`, passing on :math:`m_t` (Eq. 11, Adam's first
    moment); follow it with :func:`debias`."""
    return _trace(("ema", float(beta)), beta, 1.0 - beta)


def add_decay(weight_decay: float) -> Piece:
    r""":math:`u \mapsto u + \lambda\theta_{t-1}`: coupled (L2) decay before the momentum trace,
    decoupled (AdamW) decay after the preconditioner."""

    def apply(u, state, theta, context):
        return tree_map(lambda x, p: x + weight_decay * p, u, theta), state

    return Piece(("add_decay", float(weight_decay)), apply, uses_params=True)


# ----------------------------------------------------------------------------------------------
# Running a chain


class ChainState(NamedTuple):
    """The linear states and the statistics of each piece, in chain order."""

    traces: tuple
    stats: tuple


def init_chain(pieces: Sequence[Piece], params: Tree) -> ChainState:
    """Zero states and statistics for a real run from :math:`\\theta_0`."""
    return ChainState(
        tuple(p.init(params) for p in pieces),
        tuple(p.init_stats(params) for p in pieces),
    )


def run_chain(
    pieces: Sequence[Piece],
    u: Tree,
    traces: tuple,
    stats: tuple,
    theta: Tree,
    t: jax.Array,
    *,
    observe: bool,
) -> tuple[Tree, tuple, tuple]:
    """Pass ``u`` through the pieces at step ``t``; returns ``(u, traces, stats)``.

    ``observe=True`` in the real run (statistics are updated from the update each piece receives);
    ``observe=False`` when ``stats`` are the real run's statistics after step ``t``, read by a
    smoother that steps an affine representation ``[A | a]`` through the same pieces.
    """
    context: dict = {"t": t}
    new_traces, new_stats = [], []
    for piece, trace, stat in zip(pieces, traces, stats):
        if observe:
            stat = piece.observe(u, stat, t)
        context.update(piece.publish(stat, t))
        u, trace = piece.apply(u, trace, theta, context)
        new_traces.append(trace)
        new_stats.append(stat)
    return u, tuple(new_traces), tuple(new_stats)


def published(pieces: Sequence[Piece], stats: tuple, t: jax.Array) -> dict:
    """What the pieces publish from the statistics after step ``t`` (e.g. ``phi``)."""
    context: dict = {"t": t}
    for piece, stat in zip(pieces, stats):
        context.update(piece.publish(stat, t))
    return context


def is_diagonal(pieces: Sequence[Piece]) -> bool:
    """Whether every piece is memoryless and ignores the parameters (so the chain is one diagonal
    matrix per step, see :func:`chain_scale`)."""
    return all(p.scale is not None for p in pieces)


def chain_scale(
    pieces: Sequence[Piece], stats: tuple, t: jax.Array
) -> tuple[Any, Tree | None]:
    """For a diagonal chain, ``(scalar, divisor)`` with ``chain(u) = scalar * u / divisor``."""
    if not is_diagonal(pieces):
        raise ArgumentError(
            "chain_scale needs a chain of memoryless pieces that ignore the parameters."
        )
    context = published(pieces, stats, t)
    scalar, divisor = 1.0, None
    for piece in pieces:
        s, d = piece.scale(context)
        scalar = scalar * s
        if d is not None:
            divisor = d if divisor is None else tree_map(jnp.multiply, divisor, d)
    return scalar, divisor
