r"""Optimisers as chains of linear pieces (:mod:`lensbox.engine.transforms`), with the paper's conventions
spelled out.

Every optimiser is an :class:`Optimizer`: ``init(params) -> state`` and
``update(grads, state, params) -> (delta, state)``, where ``delta`` is the realised parameter step
:math:`\Delta\theta_t` (add it to the parameters). The step index ``t`` starts at 1 and the
learning rate of step ``t`` is a :class:`~lensbox.engine.transforms.Schedule`: a constant, a linear
warm-up over ``warmup_steps`` steps, and division by ten after each step in ``decay_at``.

Each optimiser is written once, as its pieces (``optimizer.pieces``):

=============================  ================================================================
``sgd(lr)``                    learning_rate
``sgd(lr, momentum=b)``        heavy_ball(b), learning_rate
``sgd(..., momentum_style=``   ema(b), debias(b), learning_rate (the paper's Eq. 11)
``"ema")``
``sgd(..., weight_decay=l)``   add_decay(l) first: coupled L2 decay (Eq. 12)
``adam(lr)``                   [add_decay], second_moment, ema(b1), debias(b1), precondition,
                               learning_rate
``adamw(lr)``                  second_moment, ema(b1), debias(b1), precondition, add_decay(l),
                               learning_rate (decoupled decay)
=============================  ================================================================

Momentum comes in two conventions, named explicitly because the paper's algebra depends on it:

``heavy_ball`` (PyTorch's ``SGD(momentum=b)`` and ``optax.sgd(momentum=b)``)
    :math:`v_t = \beta v_{t-1} + g_t`, :math:`\Delta\theta_t = -\gamma_t v_t`.
``ema`` (the paper's Eq. 11, Adam's bias-corrected first moment)
    :math:`m_t = \beta m_{t-1} + (1-\beta) g_t`,
    :math:`\Delta\theta_t = -\gamma_t m_t / (1-\beta^t)`.

:mod:`lensbox.engine.smoother` runs the same pieces on the smoother's parameter-space state, so a new
optimiser written here is also a new smoother.

Any `optax <https://optax.readthedocs.io>`_ ``GradientTransformation`` is accepted wherever the
realised steps are all that is needed (:func:`lensbox.train`, :func:`lensbox.telescope`: the
telescoping model of Eqs. 4-5 (i) reads only the applied updates): :func:`check_optimizer` wraps it
(:func:`from_optax`). The smoother form needs an update linear in the gradients given the
optimiser's state, read from the pieces; an optax transformation does not show its pieces, so
:func:`lensbox.smooth` refuses it and names the lensbox optimiser that computes the same steps:

=====================================  =============================================
``optax.sgd(lr)``                      ``lensbox.sgd(lr)``
``optax.sgd(lr, momentum=b)``          ``lensbox.sgd(lr, momentum=b)`` (heavy ball)
``optax.adam(lr, b1, b2, eps)``        ``lensbox.adam(lr, b1=b1, b2=b2, eps=eps)``
``optax.adamw(lr, b1, b2, eps,``       ``lensbox.adamw(lr, b1=b1, b2=b2, eps=eps,``
``weight_decay=l)``                    ``weight_decay=l)`` (optax's default l is 1e-4)
=====================================  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from lensbox.engine import transforms as tx
from lensbox.errors import ArgumentError, ArgumentTypeError
from lensbox.engine.transforms import Piece, Schedule

Params = Any
tree_map = jax.tree_util.tree_map

MOMENTUM_STYLES = ("heavy_ball", "ema")


@dataclass(frozen=True)
class OptimizerConfig:
    """What an optimiser is, in the paper's symbols: a description of its ``pieces``.

    Attributes:
        name: ``sgd``, ``adam``, ``adamw``, the name given to :func:`chain`, or ``optax`` for a
            wrapped optax transformation (:func:`from_optax`).
        schedule: the learning rate :math:`\\gamma_t` (a :class:`~lensbox.engine.transforms.Schedule`);
            ``None`` for an optax transformation, whose learning rate lensbox cannot read.
        momentum: :math:`\\beta_1` (0 for none).
        momentum_style: ``heavy_ball`` or ``ema``.
        weight_decay: :math:`\\lambda`.
        decoupled: ``True`` for AdamW's decoupled decay, ``False`` for coupled L2 decay.
        b2, eps: :math:`\\beta_2` and :math:`\\epsilon` (Adam only).
        pieces: the chain that defines the optimiser (:mod:`lensbox.engine.transforms`).
    """

    name: str
    schedule: Schedule | None
    momentum: float = 0.0
    momentum_style: str = "heavy_ball"
    weight_decay: float = 0.0
    decoupled: bool = False
    b2: float = 0.999
    eps: float = 1e-8
    pieces: tuple[Piece, ...] = field(default=(), compare=False, repr=False)

    @property
    def learning_rate(self) -> float:
        """:math:`\\gamma`, the learning rate after warm-up and before any decay (``nan`` for an
        optax transformation)."""
        return float("nan") if self.schedule is None else self.schedule.peak

    @property
    def opaque(self) -> bool:
        """Whether the update is a wrapped optax transformation, whose pieces lensbox cannot see."""
        return self.schedule is None

    @property
    def warmup_steps(self) -> int:
        return 0 if self.schedule is None else self.schedule.warmup_steps

    @property
    def spec(self) -> tuple:
        """The pieces' descriptions: equal specs mean the same algorithm and hyper-parameters."""
        return tuple(p.spec for p in self.pieces)

    @property
    def adaptive(self) -> bool:
        """Whether the step is divided element-wise by :math:`\\phi_t` (Adam, AdamW)."""
        return any(p.spec[0] == "precondition" for p in self.pieces)


@jax.tree_util.register_pytree_node_class
class OptState:
    """Optimiser state: the step count, each piece's linear state (``traces``) and statistics
    (``stats``), and the ``spec`` of the optimiser that made it (static: not a JAX value)."""

    def __init__(self, count, traces: tuple, stats: tuple, spec: tuple):
        self.count, self.traces, self.stats, self.spec = count, traces, stats, spec

    def tree_flatten(self):
        return (self.count, self.traces, self.stats), self.spec

    @classmethod
    def tree_unflatten(cls, spec, children):
        return cls(*children, spec)

    def __repr__(self) -> str:
        return f"OptState(count={self.count!r}, pieces={[s[0] for s in self.spec]})"


class Optimizer(NamedTuple):
    init: Callable[[Params], OptState]
    update: Callable[[Params, OptState, Params], tuple[Params, OptState]]
    config: OptimizerConfig

    @property
    def pieces(self) -> tuple[Piece, ...]:
        return self.config.pieces


def learning_rate_at(config: OptimizerConfig, t) -> jax.Array:
    """:math:`\\gamma_t` for step ``t`` (1-based), from the optimiser's schedule (``nan`` for an
    optax transformation)."""
    if config.schedule is None:
        return jnp.full(jnp.shape(t), jnp.nan)
    return config.schedule(t)


def check_optimizer(optimizer, name: str = "optimizer") -> Optimizer:
    """``optimizer`` as a lensbox :class:`Optimizer`: itself, or an optax ``GradientTransformation``
    wrapped by :func:`from_optax`; otherwise a ``TypeError`` naming the argument, what was
    expected and what arrived (e.g. the string ``"sgd"``)."""
    if isinstance(optimizer, Optimizer) and isinstance(
        optimizer.config, OptimizerConfig
    ):
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        return from_optax(optimizer)
    hint = (
        f" (build it with lensbox.{optimizer}(learning_rate, ...))"
        if isinstance(optimizer, str) and optimizer in ("sgd", "adam", "adamw")
        else ""
    )
    what = (
        f"the string {optimizer!r}"
        if isinstance(optimizer, str) and len(optimizer) <= 40
        else f"a {type(optimizer).__name__}"
    )
    raise ArgumentTypeError(
        f"{name} must be a lensbox optimiser such as lensbox.sgd(0.1) or an optax "
        f"GradientTransformation such as optax.adamw(1e-3); got {what}{hint}."
    )


def check_smoother_optimizer(optimizer, name: str = "optimizer") -> Optimizer:
    """:func:`check_optimizer`, refusing an optax transformation: the smoother needs the update's
    pieces (see the module docstring), and the error names the lensbox optimiser to use."""
    optimizer = check_optimizer(optimizer, name)
    if optimizer.config.opaque:
        raise ArgumentError(
            f"the smoother needs a lensbox optimiser: it reads how the update depends on the "
            f"gradients from the optimiser's pieces, which an optax transformation does not "
            f"show. Use the lensbox optimiser that computes the same steps: optax.sgd(lr) -> "
            f"lensbox.sgd(lr); optax.sgd(lr, momentum=b) -> lensbox.sgd(lr, momentum=b); "
            f"optax.adam(lr) -> lensbox.adam(lr); optax.adamw(lr, weight_decay=l) -> "
            f"lensbox.adamw(lr, weight_decay=l) (optax's default l is 1e-4, lensbox's 0.01). "
            f"lensbox.train and lensbox.telescope take the optax transformation itself."
        )
    return optimizer


@dataclass(frozen=True)
class _OptaxInit:
    """``init`` of a wrapped optax transformation (a value, so that two wraps of the same
    transformation are equal and share a compiled training loop)."""

    transformation: Any
    spec: tuple

    def __call__(self, params) -> OptState:
        inner = self.transformation.init(params)
        return OptState(jnp.zeros((), jnp.int32), (inner,), (), self.spec)


@dataclass(frozen=True)
class _OptaxUpdate:
    """``update`` of a wrapped optax transformation: optax's updates are the step to add."""

    transformation: Any
    spec: tuple

    def __call__(self, grads, state, params):
        if getattr(state, "spec", None) != self.spec:
            raise ArgumentError(
                f"the optimiser state was made by another optimiser "
                f"({getattr(state, 'spec', type(state))}); this one is {self.spec}."
            )
        delta, inner = self.transformation.update(grads, state.traces[0], params)
        return delta, OptState(state.count + 1, (inner,), (), self.spec)


def from_optax(transformation: optax.GradientTransformation) -> Optimizer:
    r"""A lensbox :class:`Optimizer` that runs an optax ``GradientTransformation``.

    Its ``update`` returns optax's updates as the realised step :math:`\Delta\theta_t` (optax's
    updates are added to the parameters, as lensbox's are), with the step count lensbox's training
    loop reads. Everything that needs only the realised steps works with it (training, the
    telescoping model of Eqs. 4-5 (i)); the smoother refuses it (:func:`check_smoother_optimizer`).

    Examples:
        ``optax.sgd`` and ``lensbox.sgd`` take the same steps:

        >>> import jax.numpy as jnp, numpy as np, optax
        >>> import lensbox
        >>> from lensbox.engine.optim import from_optax
        >>> opt = from_optax(optax.sgd(0.1, momentum=0.9))
        >>> params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([1.0, 1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     delta, state = opt.update(grads, state, params)
        >>> bool(np.allclose(delta["w"], -0.19)), int(state.count)  # -lr * (0.9 g + g)
        (True, 2)
    """
    if not isinstance(transformation, optax.GradientTransformation):
        raise ArgumentTypeError(
            f"transformation must be an optax GradientTransformation; got a "
            f"{type(transformation).__name__}."
        )
    spec = (("optax", id(transformation.update)),)
    return Optimizer(
        _OptaxInit(transformation, spec),
        _OptaxUpdate(transformation, spec),
        OptimizerConfig("optax", None),
    )


def from_config(config: OptimizerConfig) -> Optimizer:
    """The :class:`Optimizer` that runs ``config.pieces`` (see :mod:`lensbox.engine.transforms`)."""
    pieces, spec = config.pieces, config.spec

    def init(params):
        traces, stats = tx.init_chain(pieces, params)
        return OptState(jnp.zeros((), jnp.int32), traces, stats, spec)

    def update(grads, state, params):
        if getattr(state, "spec", None) != spec:
            raise ArgumentError(
                f"the optimiser state was made by another optimiser "
                f"({getattr(state, 'spec', type(state))}); this one is {spec}."
            )
        t = state.count + 1
        delta, traces, stats = tx.run_chain(
            pieces, grads, state.traces, state.stats, params, t, observe=True
        )
        return delta, OptState(t, traces, stats, spec)

    return Optimizer(init, update, config)


def chain(*pieces: Piece, name: str = "custom") -> Optimizer:
    """An optimiser from pieces of :mod:`lensbox.engine.transforms`; it needs one ``learning_rate`` piece.

    Example: Adam without bias correction of the first moment::

        T = lensbox.engine.transforms
        opt = chain(T.second_moment(0.999, 1e-8), T.ema(0.9), T.precondition(),
                    T.learning_rate(T.Schedule(1e-3)), name="adam_no_debias")
    """
    rates = [p.spec[1] for p in pieces if p.spec[0] == "learning_rate"]
    if len(rates) != 1 or not all(isinstance(p, Piece) for p in pieces):
        raise ArgumentError(
            "pieces must be lensbox.engine.transforms pieces with exactly one learning_rate "
            f"piece; got {[getattr(p, 'spec', p) for p in pieces]}."
        )
    return from_config(OptimizerConfig(str(name), rates[0], pieces=tuple(pieces)))


def schedule(
    learning_rate: float | Schedule,
    warmup_steps: int = 0,
    decay_at: Sequence[int] = (),
    decay_factor: float = 0.1,
) -> Schedule:
    """A :class:`~lensbox.engine.transforms.Schedule` from the optimisers' keyword arguments."""
    if isinstance(learning_rate, Schedule):
        if warmup_steps or tuple(decay_at):
            raise ArgumentError(
                "give warm-up and decay steps either in the Schedule passed as "
                "learning_rate or as keyword arguments, not both."
            )
        return learning_rate
    return Schedule(learning_rate, warmup_steps, tuple(decay_at), decay_factor)


def _check(momentum: float, style: str, weight_decay: float) -> None:
    if not (0.0 <= momentum < 1.0):
        raise ArgumentError(f"momentum must lie in [0, 1); got {momentum!r}.")
    if style not in MOMENTUM_STYLES:
        raise ArgumentError(
            f"momentum_style must be one of {MOMENTUM_STYLES}; got {style!r}."
        )
    if not (weight_decay >= 0):
        raise ArgumentError(f"weight_decay must be non-negative; got {weight_decay!r}.")


def sgd(
    learning_rate: float | Schedule,
    *,
    momentum: float = 0.0,
    momentum_style: str = "heavy_ball",
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    decay_at: Sequence[int] = (),
) -> Optimizer:
    r"""Stochastic gradient descent (Eq. 1), optionally with momentum and coupled weight decay.

    With :math:`g_t = \nabla_\theta \mathcal L_{B_t}(\theta_{t-1}) + \lambda\theta_{t-1}`:

    * no momentum: :math:`\Delta\theta_t = -\gamma_t g_t` (Eq. 12 when :math:`\lambda > 0`);
    * ``heavy_ball``: :math:`v_t = \beta v_{t-1} + g_t`, :math:`\Delta\theta_t = -\gamma_t v_t`;
    * ``ema``: :math:`m_t = \beta m_{t-1} + (1-\beta) g_t`,
      :math:`\Delta\theta_t = -\gamma_t m_t / (1-\beta^t)` (Eq. 11).

    ``learning_rate`` is a number (with ``warmup_steps`` and ``decay_at`` shaping it, see
    :func:`schedule`) or a :class:`~lensbox.engine.transforms.Schedule`.

    Examples:
        Heavy-ball momentum is two pieces; its second step adds 0.9 times the first.

        >>> import jax.numpy as jnp, numpy as np
        >>> import lensbox
        >>> opt = lensbox.sgd(0.1, momentum=0.9)
        >>> [piece.spec[0] for piece in opt.pieces]
        ['heavy_ball', 'learning_rate']
        >>> params, grads = {"w": jnp.array([1.0, -2.0])}, {"w": jnp.array([1.0, 1.0])}
        >>> state = opt.init(params)
        >>> delta, state = opt.update(grads, state, params)
        >>> bool(np.allclose(delta["w"], -0.1))  # -lr * g
        True
        >>> delta, state = opt.update(grads, state, params)
        >>> bool(np.allclose(delta["w"], -0.19))  # -lr * (0.9 * g + g)
        True

        The paper's Eq. 11 (``momentum_style="ema"``) averages the gradients instead, with a bias
        correction (so its first step is plain SGD's).

        >>> [p.spec[0] for p in lensbox.sgd(0.1, momentum=0.9, momentum_style="ema").pieces]
        ['ema', 'debias', 'learning_rate']
    """
    rate = schedule(learning_rate, warmup_steps, decay_at)
    beta, lam = float(momentum), float(weight_decay)
    _check(beta, momentum_style, lam)
    pieces = [tx.add_decay(lam)] if lam > 0 else []
    if beta > 0:
        pieces += (
            [tx.heavy_ball(beta)]
            if momentum_style == "heavy_ball"
            else [tx.ema(beta), tx.debias(beta)]
        )
    pieces.append(tx.learning_rate(rate))
    return from_config(
        OptimizerConfig(
            "sgd", rate, beta, momentum_style, lam, False, pieces=tuple(pieces)
        )
    )


def _adam_family(
    name: str,
    rate: Schedule,
    b1: float,
    b2: float,
    eps: float,
    lam: float,
    decoupled: bool,
) -> Optimizer:
    _check(b1, "ema", lam)
    if not (0.0 <= b2 < 1.0 and eps >= 0):
        raise ArgumentError(
            f"b2 must lie in [0, 1) and eps be non-negative; got b2={b2!r}, eps={eps!r}."
        )
    pieces = [tx.add_decay(lam)] if lam > 0 and not decoupled else []
    pieces.append(tx.second_moment(b2, eps))
    if b1 > 0:
        pieces += [tx.ema(b1), tx.debias(b1)]
    pieces.append(tx.precondition())
    if lam > 0 and decoupled:
        pieces.append(tx.add_decay(lam))
    pieces.append(tx.learning_rate(rate))
    return from_config(
        OptimizerConfig(
            name, rate, b1, "ema", lam, decoupled, b2, eps, pieces=tuple(pieces)
        )
    )


def adam(
    learning_rate: float | Schedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    decay_at: Sequence[int] = (),
) -> Optimizer:
    r"""Adam; ``weight_decay`` is coupled L2 decay added to the gradient (PyTorch's ``Adam``).

    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`, :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
    :math:`\phi_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon`,
    :math:`\Delta\theta_t = -\gamma_t \, m_t / ((1-\beta_1^t)\phi_t)`.

    Examples:
        The first step moves every parameter by about the learning rate, whatever the size of
        its gradient (:math:`m_1/\phi_1 \approx \mathrm{sign}(g_1)`).

        >>> import jax.numpy as jnp, numpy as np
        >>> import lensbox
        >>> opt = lensbox.adam(1e-3)
        >>> params, grads = {"w": jnp.array([1.0, 1.0])}, {"w": jnp.array([100.0, -0.01])}
        >>> delta, state = opt.update(grads, opt.init(params), params)
        >>> bool(np.allclose(delta["w"], [-1e-3, 1e-3]))
        True
        >>> [piece.spec[0] for piece in opt.pieces]
        ['second_moment', 'ema', 'debias', 'precondition', 'learning_rate']
    """
    return _adam_family(
        "adam",
        schedule(learning_rate, warmup_steps, decay_at),
        float(b1),
        float(b2),
        float(eps),
        float(weight_decay),
        False,
    )


def adamw(
    learning_rate: float | Schedule,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    decay_at: Sequence[int] = (),
) -> Optimizer:
    r"""AdamW (decoupled weight decay), as PyTorch and optax implement it.

    :math:`\Delta\theta_t = -\gamma_t [m_t / ((1-\beta_1^t)\phi_t) + \lambda\theta_{t-1}]`, with
    :math:`m_t`, :math:`\phi_t` as in :func:`adam` computed from the loss gradient alone.

    Examples:
        With a zero gradient only the decay moves the parameters, by :math:`-\gamma\lambda\theta`:
        proportional to each parameter. Adam's coupled decay instead enters the gradient, so the
        preconditioner scales it to about :math:`\gamma` per parameter.

        >>> import jax.numpy as jnp, numpy as np
        >>> import lensbox
        >>> params, zero = {"w": jnp.array([2.0, -4.0])}, {"w": jnp.zeros(2)}
        >>> opt = lensbox.adamw(0.1, weight_decay=0.5)
        >>> delta, _ = opt.update(zero, opt.init(params), params)
        >>> bool(np.allclose(delta["w"], [-0.1, 0.2]))  # -0.1 * 0.5 * theta
        True
        >>> coupled = lensbox.adam(0.1, weight_decay=0.5)
        >>> delta, _ = coupled.update(zero, coupled.init(params), params)
        >>> bool(np.allclose(delta["w"], [-0.1, 0.1]))
        True
        >>> [piece.spec[0] for piece in opt.pieces]
        ['second_moment', 'ema', 'debias', 'precondition', 'add_decay', 'learning_rate']
    """
    return _adam_family(
        "adamw",
        schedule(learning_rate, warmup_steps, decay_at),
        float(b1),
        float(b2),
        float(eps),
        float(weight_decay),
        True,
    )


def preconditioner(state: OptState, config: OptimizerConfig):
    r""":math:`\phi_t = \sqrt{\hat v_t} + \epsilon` from an Adam(W) state after step ``t``.

    This is the element-wise divisor of the step; the preconditioned tangent kernel is
    :math:`\nabla f(x)^\top \mathrm{diag}(1/\phi_t) \nabla f(x')` (paper section 5).
    Returns ``None`` for optimisers without one.
    """
    context = tx.published(config.pieces, state.stats, jnp.asarray(state.count))
    return context.get("phi")


def apply_updates(params: Params, delta: Params) -> Params:
    """:math:`\\theta_t = \\theta_{t-1} + \\Delta\\theta_t`."""
    return tree_map(jnp.add, params, delta)
