r"""The polynomial-regression model of the grokking study (paper Eq. 25, after Kumar et al. 2024).

:func:`quadratic_network` is a one-hidden-layer network with the activation
:math:`\phi(h) = h + \frac\epsilon2 h^2`, and :func:`quadratic_tangent_kernel` its closed-form
tangent kernel; the *Grokking* chapter trains it on the paper's polynomial task
(:func:`lensbox.data.polynomial_task`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from lensbox.engine.checks import is_integer
from lensbox.engine.models import Model, Params
from lensbox.errors import ArgumentError, ShapeError


@dataclass(frozen=True)
class QuadraticSpec:
    """What a :func:`quadratic_network` is made of.

    Attributes:
        width: number of hidden units :math:`n_h`.
        epsilon: :math:`\\epsilon` in :math:`\\phi(h) = h + \\frac\\epsilon2 h^2`.
        centred: whether the initial prediction is subtracted (Kumar et al.'s convention).
    """

    width: int
    epsilon: float
    centred: bool


def quadratic_network(width: int, epsilon: float, *, centred: bool = True) -> Model:
    r"""The paper's Eq. 25: :math:`f_\theta(x) = \frac1{n_h}\sum_{j=1}^{n_h}\phi(\theta_j^\top x)`,
    :math:`\phi(h) = h + \frac\epsilon2 h^2`, with the output weights fixed at :math:`1/n_h`.

    ``init(key, d)`` draws every :math:`\theta_j \in \mathbb R^d` i.i.d. standard normal and returns
    ``{"theta": (n_h, d)}``. The paper says it replicates Kumar et al. (2024, section 5) exactly;
    their code trains the *centred* network

    .. math:: f_\theta(x) - f_{\theta_0}(x),

    so that the prediction starts at zero, with full-batch gradient descent at learning rate
    :math:`\eta = n_h / \alpha^2 = 500` (output scale :math:`\alpha = 1`) on the mean squared error
    :math:`\frac1n\sum_i (f(x_i) - y_i)^2`. That is how we read the paper's "gamma = B = 500": the
    learning rate equals the width. On lensbox's loss :math:`\frac12(y - f)^2` the same run has
    learning rate :math:`2 n_h = 1000`.

    With ``centred=True`` the parameters also hold ``"theta_init"``, a frozen copy of
    :math:`\theta_0` behind ``jax.lax.stop_gradient``: its gradient is zero, so gradient descent
    never moves it and it adds nothing to the tangent kernel (train it without weight decay, which
    would shrink it). The trainable parameters are ``theta`` alone: :math:`p = n_h d`.

    Args:
        width: :math:`n_h`, 500 in the paper.
        epsilon: :math:`\epsilon`, the task alignment: 0.2 in the paper's main text,
            0.05 and 0.5 in its Fig. 11.
        centred: subtract the initial prediction (Kumar et al.'s convention, the default).

    Returns:
        A :class:`Model`; its closed-form tangent kernel is :func:`quadratic_tangent_kernel`.
    """
    if not is_integer(width) or width < 1:
        raise ArgumentError(f"width must be a positive integer; got {width!r}.")
    if not (
        isinstance(epsilon, (int, float))
        and epsilon == epsilon
        and abs(epsilon) < float("inf")
    ):
        raise ArgumentError(f"epsilon must be a finite number; got {epsilon!r}.")
    width = int(width)
    spec = QuadraticSpec(width, float(epsilon), bool(centred))
    eps = spec.epsilon

    def init_fn(key: jax.Array, in_dim: int) -> Params:
        dtype = jnp.zeros(()).dtype
        theta = jax.random.normal(key, (width, int(in_dim)), dtype)
        return {"theta": theta, "theta_init": theta} if centred else {"theta": theta}

    def raw(theta: jax.Array, x: jax.Array) -> jax.Array:
        h = x @ theta.T
        return jnp.mean(h + 0.5 * eps * h * h, axis=1)

    def apply_fn(params: Params, x: jax.Array) -> jax.Array:
        f = raw(params["theta"], x)
        if "theta_init" in params:
            f = f - raw(jax.lax.stop_gradient(params["theta_init"]), x)
        return f

    return Model(init_fn, apply_fn, apply_fn, spec)


def quadratic_tangent_kernel(
    params: Params,
    X_R: jax.Array,
    X_B: jax.Array,
    preconditioner: Params | None = None,
    *,
    epsilon: float,
) -> jax.Array:
    r"""Closed-form tangent kernel of :func:`quadratic_network`, an ``(R, B)`` block.

    :math:`\nabla_{\theta_j} f(x) = \frac1{n_h}\phi'(\theta_j^\top x)\,x` with
    :math:`\phi'(h) = 1 + \epsilon h`, so the kernel is a Gram of :math:`\phi'` values times the
    input Gram,

    .. math::
        K(x, x') = \frac{1}{n_h^2}\Big[\sum_j \phi'(\theta_j^\top x)\phi'(\theta_j^\top x')\Big]\,
        x^\top x' = \frac{1}{n_h^2}\big[n_h + \epsilon(u(x) + u(x')) +
        \epsilon^2 x^\top \theta^\top\theta\, x'\big]\, x^\top x',

    with :math:`u(x) = x^\top\sum_j\theta_j`: it depends on :math:`\theta` only through
    :math:`\sum_j\theta_j` and :math:`\theta^\top\theta`, so a block costs :math:`O(R d^2 + R B d)`.
    With an Adam preconditioner :math:`\phi_t` (a pytree like ``params``) the kernel is
    :math:`\nabla f(x)^\top \mathrm{diag}(1/\phi_t)\nabla f(x')`, computed at
    :math:`O(R B n_h d)`. Like :func:`lensbox.engine.kernels.tangent_kernel` it leaves out the learning
    rate and the :math:`1/|B|`; use it as ``kernel_fn`` of :func:`lensbox.engine.smoother.smoother_tracker`
    through ``functools.partial(quadratic_tangent_kernel, epsilon=...)``.
    """
    theta = params["theta"]
    X_R, X_B = jnp.asarray(X_R), jnp.asarray(X_B)
    if (
        X_R.ndim != 2
        or X_B.ndim != 2
        or X_R.shape[1] != theta.shape[1]
        or X_B.shape[1] != theta.shape[1]
    ):
        raise ShapeError(
            f"X_R and X_B must be matrices with {theta.shape[1]} columns (the input dimension); "
            f"got shapes {X_R.shape} and {X_B.shape}."
        )
    n_h = theta.shape[0]
    if preconditioner is None:
        m = jnp.sum(theta, axis=0)
        gram_theta = theta.T @ theta
        phi_gram = (
            n_h
            + epsilon * ((X_R @ m)[:, None] + (X_B @ m)[None, :])
            + epsilon**2 * (X_R @ gram_theta) @ X_B.T
        )
        return phi_gram * (X_R @ X_B.T) / n_h**2
    inv = 1.0 / preconditioner["theta"]  # (n_h, d)
    d_R = 1.0 + epsilon * (X_R @ theta.T)  # phi'(theta_j^T x), (R, n_h)
    d_B = 1.0 + epsilon * (X_B @ theta.T)
    return (
        jnp.einsum("rj,bj,rk,bk,jk->rb", d_R, d_B, X_R, X_B, inv, optimize=True)
        / n_h**2
    )
