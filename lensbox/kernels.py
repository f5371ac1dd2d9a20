r"""Tangent-kernel blocks :math:`K_t(X_R, X_B)`, with an optimiser's preconditioner folded in.

The kernel form of the telescoping model (Eq. 5 ii) and its smoother form (Eqs. 6-8, 14-21) need,
at every step, the block

.. math::
    K(x_r, x_b) = \nabla_\theta f_\theta(x_r)^\top \,\mathrm{diag}(1/\phi)\, \nabla_\theta f_{\theta'}(x_b),

between tracked rows :math:`X_R` and the batch :math:`X_B`, *without* the learning rate
:math:`\gamma_t` and the :math:`1/|B_t|` of Eq. 3. :math:`\phi` is Adam's
:math:`\sqrt{\hat v_t}+\epsilon` (paper section 5) or ``None`` (plain SGD); :math:`\theta' = \theta`
except for momentum's cross-temporal kernel :math:`K_{t,k}` (Eq. 11), where the batch side is
evaluated at an earlier :math:`\theta_{k-1}`.

Two routes compute it:

``structured`` (MLPs from :func:`lensbox.models.mlp`)
    A dense layer's per-example weight gradient is rank one, :math:`\delta_l(x) a_{l-1}(x)^\top`
    (back-propagated error times layer input), so
    :math:`K = \sum_l (A_{l-1,R} A_{l-1,B}^\top + 1) \odot (D_{l,R} D_{l,B}^\top)` and no Jacobian is
    ever built. A sigmoid output multiplies :math:`D_L` by :math:`\sigma'(g)` (Eq. 13).
``generic`` (any ``apply(params, X)``)
    Per-example Jacobian rows by ``vmap(grad)`` in chunks, then contraction. It is the reference the
    structured route is tested against.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lensbox.models import MLPSpec, Model

Params = Any
Apply = Callable[[Params, jax.Array], jax.Array]
METHODS = ("auto", "structured", "generic")
_DERIVATIVES = {
    "relu": lambda z, h: (z > 0).astype(z.dtype),
    "tanh": lambda z, h: 1.0 - h * h,
    "sigmoid": lambda z, h: h * (1.0 - h),
}


def _resolve(model: Model | Apply, method: str) -> tuple[str, Apply]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    is_mlp = isinstance(model, Model) and isinstance(model.spec, MLPSpec)
    if isinstance(model, Model):
        apply = model.apply
    elif callable(model):
        apply = model
    else:
        raise TypeError(f"model must be a lensbox Model or an apply(params, X) function; got {type(model)}.")
    if method == "structured" and not is_mlp:
        raise ValueError("method='structured' needs a lensbox.models.mlp Model; use method='generic' "
                         "for other apply functions.")
    if is_mlp and model.spec.out != 1:
        if method == "structured":
            raise ValueError(f"the structured kernel supports one output (k = 1); this MLP has "
                             f"{model.spec.out}.")
        return "generic", apply
    if method == "auto":
        method = "structured" if is_mlp else "generic"
    return method, apply


def layer_factors(model: Model, params: Params, X) -> list[tuple[jax.Array, jax.Array]]:
    r"""Per layer :math:`l`, the inputs :math:`A_{l-1}` (rows x fan_in) and the back-propagated errors
    :math:`D_l = \partial f / \partial z_l` (rows x fan_out) of an :func:`~lensbox.models.mlp`.

    The gradient of :math:`f(x)` with respect to layer ``l``'s weight is ``outer(A[x], D[x])`` and
    with respect to its bias ``D[x]``; one forward and one backward pass give them for all rows.
    """
    spec = model.spec
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[spec.activation]
    dact = _DERIVATIVES[spec.activation]
    h, inputs, derivs = jnp.asarray(X), [], []
    for layer in params[:-1]:
        inputs.append(h)
        z = h @ layer["w"] + layer["b"]
        h = act(z)
        derivs.append(dact(z, h))
    inputs.append(h)
    g = h @ params[-1]["w"] + params[-1]["b"]
    if spec.output == "sigmoid":
        s = jax.nn.sigmoid(g)
        d = s * (1.0 - s)
    else:
        d = jnp.ones_like(g)
    errors = [d]
    for layer, dz in zip(reversed(params[1:]), reversed(derivs)):
        d = (d @ layer["w"].T) * dz
        errors.append(d)
    return list(zip(inputs, reversed(errors)))


def _flat_rows(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def jacobian_rows(model: Model | Apply, params: Params, X, *, method: str = "auto",
                  chunk: int = 256) -> jax.Array:
    r"""The Jacobian :math:`[\nabla_\theta f_\theta(x)^\top]_x`, shape (rows, p), columns in the order
    of ``jax.flatten_util.ravel_pytree(params)``.

    The structured route builds each row from the outer products of :func:`layer_factors`; the
    generic route runs ``vmap(grad)`` over chunks of ``chunk`` rows.
    """
    method, apply = _resolve(model, method)
    X = jnp.asarray(X)
    if method == "structured":
        factors = layer_factors(model, params, X)
        grads = [{"b": d, "w": a[:, :, None] * d[:, None, :]} for a, d in factors]
        return _flat_rows(grads)
    theta, unravel = ravel_pytree(params)

    def row(x):
        return jax.grad(lambda th: jnp.reshape(apply(unravel(th), x[None]), ()))(theta)

    return jax.lax.map(row, X, batch_size=min(int(chunk), max(X.shape[0], 1)))


def _structured_block(model, params, X_R, X_B, phi, params_B) -> jax.Array:
    fR = layer_factors(model, params, X_R)
    fB = layer_factors(model, params if params_B is None else params_B, X_B)
    K = jnp.zeros((X_R.shape[0], X_B.shape[0]), dtype=fR[0][1].dtype)
    for layer, ((aR, dR), (aB, dB)) in enumerate(zip(fR, fB)):
        if phi is None:
            K = K + (aR @ aB.T + 1.0) * (dR @ dB.T)
            continue
        # diag(1/phi) breaks the Gram factorisation of the weight block: contract the larger
        # side by one GEMM, then the smaller by a Hadamard sum (2 R B fan_in fan_out flops).
        inv_w, inv_b = 1.0 / phi[layer]["w"], 1.0 / phi[layer]["b"]
        if aR.shape[1] >= dR.shape[1]:
            Z = jnp.einsum("ri,boi->rbo", aR, jnp.einsum("bi,io->boi", aB, inv_w))
            K = K + jnp.einsum("ro,bo,rbo->rb", dR, dB, Z)
        else:
            Z = jnp.einsum("ro,bio->rbi", dR, jnp.einsum("bo,io->bio", dB, inv_w))
            K = K + jnp.einsum("ri,bi,rbi->rb", aR, aB, Z)
        K = K + (dR * inv_b) @ dB.T
    return K


def tangent_kernel(
    model: Model | Apply,
    params: Params,
    X_R,
    X_B,
    *,
    preconditioner: Params | None = None,
    method: str = "auto",
    params_B: Params | None = None,
) -> jax.Array:
    r"""The block :math:`[\nabla f_\theta(x_r)^\top \mathrm{diag}(1/\phi) \nabla f_{\theta'}(x_b)]_{r,b}`.

    Without :math:`\gamma_t` and :math:`1/|B_t|`: Eq. 3's :math:`K^\theta_t(x, x_i)` is
    ``tangent_kernel(...) / |B_t|`` on the batch, and the Adam kernel :math:`K^\phi_t` of section 5
    is the same with ``preconditioner=phi_t`` (from :func:`lensbox.optim.preconditioner`).

    Args:
        model: a :func:`~lensbox.models.mlp` :class:`~lensbox.models.Model` (structured route) or
            any ``apply(params, X)`` returning one output per row (generic route).
        params: :math:`\theta` for the rows ``X_R`` (and ``X_B`` unless ``params_B`` is given).
        X_R, X_B: (R, d) and (B, d) inputs.
        preconditioner: :math:`\phi`, a pytree shaped like ``params``, or ``None``.
        method: ``auto`` (structured for MLPs), ``structured`` or ``generic``.
        params_B: parameters for the ``X_B`` side, for the cross-temporal kernel
            :math:`K_{t,k}` of Eq. 11 (default: ``params``).

    Returns:
        An (R, B) array.
    """
    method, apply = _resolve(model, method)
    X_R, X_B = jnp.atleast_2d(jnp.asarray(X_R)), jnp.atleast_2d(jnp.asarray(X_B))
    if X_R.shape[1] != X_B.shape[1]:
        raise ValueError(f"X_R and X_B must have the same number of features; got {X_R.shape[1]} "
                         f"and {X_B.shape[1]}.")
    if preconditioner is not None and (jax.tree_util.tree_structure(preconditioner)
                                       != jax.tree_util.tree_structure(params)):
        raise ValueError("preconditioner must be a pytree shaped like params (phi from "
                         "lensbox.optim.preconditioner) or None.")
    return _block(model if method == "structured" else apply, method, params, X_R, X_B,
                  preconditioner, params_B)


@partial(jax.jit, static_argnums=(0, 1))
def _block(model, method, params, X_R, X_B, phi, params_B):
    if method == "structured":
        return _structured_block(model, params, X_R, X_B, phi, params_B)
    J_R = jacobian_rows(model, params, X_R, method="generic")
    J_B = jacobian_rows(model, params if params_B is None else params_B, X_B, method="generic")
    if phi is not None:
        J_B = J_B / ravel_pytree(phi)[0]
    return J_R @ J_B.T
