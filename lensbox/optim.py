r"""Optimisers as small pure functions, with the conventions the telescoping model needs spelled out.

Every optimiser is an :class:`Optimizer`: ``init(params) -> state`` and
``update(grads, state, params) -> (delta, state)``, where ``delta`` is the realised parameter step
:math:`\Delta\theta_t` (add it to the parameters). The step index ``t`` starts at 1, and the
learning rate of step ``t`` is

.. math:: \gamma_t = \gamma \min(1, t / t_\text{warm-up}),

a linear warm-up over ``warmup_steps`` steps (none by default).

The :class:`OptimizerConfig` carried in ``Optimizer.config`` is what :mod:`lensbox.smoother` reads
to decide how the optimiser acts on the smoother's linear state.

Momentum comes in two conventions, named explicitly because the paper's algebra depends on it:

``heavy_ball`` (PyTorch's ``SGD(momentum=b)`` and ``optax.sgd(momentum=b)``)
    :math:`v_t = \beta v_{t-1} + g_t`, :math:`\Delta\theta_t = -\gamma_t v_t`.
``ema`` (the paper's Eq. 11, Adam's bias-corrected first moment)
    :math:`m_t = \beta m_{t-1} + (1-\beta) g_t`,
    :math:`\Delta\theta_t = -\gamma_t m_t / (1-\beta^t)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Params = Any
tree_map = jax.tree_util.tree_map

MOMENTUM_STYLES = ("heavy_ball", "ema")


@dataclass(frozen=True)
class OptimizerConfig:
    """Hyper-parameters of an optimiser, in the paper's symbols.

    Attributes:
        name: ``sgd``, ``adam`` or ``adamw``.
        learning_rate: :math:`\\gamma` after warm-up.
        momentum: :math:`\\beta_1` (0 for none).
        momentum_style: ``heavy_ball`` or ``ema`` for SGD; ``ema`` for Adam(W).
        weight_decay: :math:`\\lambda`.
        decoupled: ``True`` for AdamW's decoupled decay; ``False`` for coupled L2 decay, which adds
            :math:`\\lambda\\theta_{t-1}` to the gradient.
        b2: :math:`\\beta_2` (Adam only).
        eps: :math:`\\epsilon` (Adam only).
        warmup_steps: length of the linear warm-up (0 for none).
    """

    name: str
    learning_rate: float
    momentum: float = 0.0
    momentum_style: str = "heavy_ball"
    weight_decay: float = 0.0
    decoupled: bool = False
    b2: float = 0.999
    eps: float = 1e-8
    warmup_steps: int = 0

    @property
    def adaptive(self) -> bool:
        """Whether the step is divided element-wise by :math:`\\phi_t` (Adam, AdamW)."""
        return self.name in ("adam", "adamw")


class OptState(NamedTuple):
    """Optimiser state: the step count, first moment ``mu`` and second moment ``nu``.

    ``mu`` and ``nu`` are pytrees like the parameters, or ``()`` when the optimiser has none.
    """

    count: jax.Array
    mu: Any
    nu: Any


class Optimizer(NamedTuple):
    init: Callable[[Params], OptState]
    update: Callable[[Params, OptState, Params], tuple[Params, OptState]]
    config: OptimizerConfig


def learning_rate_at(config: OptimizerConfig, t) -> jax.Array:
    """:math:`\\gamma_t` for step ``t`` (1-based), with the linear warm-up."""
    t = jnp.asarray(t, dtype=jnp.zeros(()).dtype)
    if config.warmup_steps > 0:
        return config.learning_rate * jnp.minimum(1.0, t / config.warmup_steps)
    return jnp.asarray(config.learning_rate, dtype=t.dtype)


def _check(config: OptimizerConfig) -> None:
    if not (config.learning_rate > 0):
        raise ValueError(f"learning_rate must be positive; got {config.learning_rate!r}.")
    if not (0.0 <= config.momentum < 1.0):
        raise ValueError(f"momentum must lie in [0, 1); got {config.momentum!r}.")
    if config.momentum_style not in MOMENTUM_STYLES:
        raise ValueError(
            f"momentum_style must be one of {MOMENTUM_STYLES}; got {config.momentum_style!r}."
        )
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative; got {config.weight_decay!r}.")
    if config.warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative; got {config.warmup_steps!r}.")
    if config.adaptive and not (0.0 <= config.b2 < 1.0 and config.eps >= 0):
        raise ValueError(f"b2 must lie in [0, 1) and eps be non-negative; got {config}.")


def sgd(
    learning_rate: float,
    *,
    momentum: float = 0.0,
    momentum_style: str = "heavy_ball",
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
) -> Optimizer:
    r"""Stochastic gradient descent (Eq. 1), optionally with momentum and coupled weight decay.

    With :math:`g_t = \nabla_\theta \mathcal L_{B_t}(\theta_{t-1}) + \lambda\theta_{t-1}`:

    * no momentum: :math:`\Delta\theta_t = -\gamma_t g_t` (Eq. 12 when :math:`\lambda > 0`);
    * ``heavy_ball``: :math:`v_t = \beta v_{t-1} + g_t`, :math:`\Delta\theta_t = -\gamma_t v_t`;
    * ``ema``: :math:`m_t = \beta m_{t-1} + (1-\beta) g_t`,
      :math:`\Delta\theta_t = -\gamma_t m_t / (1-\beta^t)` (Eq. 11).
    """
    config = OptimizerConfig(
        "sgd", float(learning_rate), float(momentum), momentum_style, float(weight_decay),
        False, warmup_steps=int(warmup_steps),
    )
    _check(config)
    beta, lam = config.momentum, config.weight_decay

    def init(params):
        mu = tree_map(jnp.zeros_like, params) if beta > 0 else ()
        return OptState(jnp.zeros((), jnp.int32), mu, ())

    def update(grads, state, params):
        t = state.count + 1
        lr = learning_rate_at(config, t)
        if lam > 0:
            grads = tree_map(lambda g, p: g + lam * p, grads, params)
        if beta == 0:
            return tree_map(lambda g: -lr * g, grads), OptState(t, (), ())
        if momentum_style == "heavy_ball":
            mu = tree_map(lambda m, g: beta * m + g, state.mu, grads)
            delta = tree_map(lambda m: -lr * m, mu)
        else:
            mu = tree_map(lambda m, g: beta * m + (1 - beta) * g, state.mu, grads)
            correction = 1 - beta ** t.astype(lr.dtype)
            delta = tree_map(lambda m: -lr * m / correction, mu)
        return delta, OptState(t, mu, ())

    return Optimizer(init, update, config)


def _adam_family(config: OptimizerConfig) -> Optimizer:
    _check(config)
    b1, b2, lam = config.momentum, config.b2, config.weight_decay

    def init(params):
        zeros = tree_map(jnp.zeros_like, params)
        return OptState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update(grads, state, params):
        t = state.count + 1
        lr = learning_rate_at(config, t)
        if lam > 0 and not config.decoupled:
            grads = tree_map(lambda g, p: g + lam * p, grads, params)
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        new = OptState(t, mu, nu)
        phi = preconditioner(new, config)
        c1 = 1 - b1 ** t.astype(lr.dtype)
        delta = tree_map(lambda m, f: -lr * (m / c1) / f, mu, phi)
        if lam > 0 and config.decoupled:
            delta = tree_map(lambda d, p: d - lr * lam * p, delta, params)
        return delta, new

    return Optimizer(init, update, config)


def adam(
    learning_rate: float,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
) -> Optimizer:
    r"""Adam; ``weight_decay`` is coupled L2 decay added to the gradient (PyTorch's ``Adam``).

    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`, :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
    :math:`\phi_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon`,
    :math:`\Delta\theta_t = -\gamma_t \, m_t / ((1-\beta_1^t)\phi_t)`.
    """
    return _adam_family(OptimizerConfig(
        "adam", float(learning_rate), float(b1), "ema", float(weight_decay), False,
        float(b2), float(eps), int(warmup_steps),
    ))


def adamw(
    learning_rate: float,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
) -> Optimizer:
    r"""AdamW (decoupled weight decay), as PyTorch and optax implement it.

    :math:`\Delta\theta_t = -\gamma_t [m_t / ((1-\beta_1^t)\phi_t) + \lambda\theta_{t-1}]`, with
    :math:`m_t`, :math:`\phi_t` as in :func:`adam` computed from the loss gradient alone.
    """
    return _adam_family(OptimizerConfig(
        "adamw", float(learning_rate), float(b1), "ema", float(weight_decay), True,
        float(b2), float(eps), int(warmup_steps),
    ))


def preconditioner(state: OptState, config: OptimizerConfig):
    r""":math:`\phi_t = \sqrt{\hat v_t} + \epsilon` from an Adam(W) state after step ``t``.

    This is the element-wise divisor of the step; the preconditioned tangent kernel is
    :math:`\nabla f(x)^\top \mathrm{diag}(1/\phi_t) \nabla f(x')` (paper section 5).
    Returns ``None`` for optimisers without one.
    """
    if not config.adaptive:
        return None
    t = state.count.astype(jnp.zeros(()).dtype)
    c2 = 1 - config.b2**t
    return tree_map(lambda v: jnp.sqrt(v / c2) + config.eps, state.nu)


def apply_updates(params: Params, delta: Params) -> Params:
    """:math:`\\theta_t = \\theta_{t-1} + \\Delta\\theta_t`."""
    return tree_map(jnp.add, params, delta)
