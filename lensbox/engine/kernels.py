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

``structured`` (MLPs from :func:`lensbox.engine.models.mlp`)
    A dense layer's per-example weight gradient is rank one, :math:`\delta_l(x) a_{l-1}(x)^\top`
    (back-propagated error times layer input), so
    :math:`K = \sum_l (A_{l-1,R} A_{l-1,B}^\top + 1) \odot (D_{l,R} D_{l,B}^\top)` and no Jacobian is
    ever built. A sigmoid output multiplies :math:`D_L` by :math:`\sigma'(g)` (Eq. 13).
``generic`` (any ``apply(params, X)``)
    Per-example Jacobians by ``vmap(jacrev)``, kept as a pytree shaped like the parameters (no
    flattening), contracted leaf by leaf with ``einsum``; the tracked rows are processed in chunks
    so that at most ``rows_per_chunk`` x p Jacobian entries exist at once. Inputs may be any array
    with a leading row axis (images) or a pytree of them, and the model may have k > 1 outputs.
    It is the reference the structured route is tested against.

**Adam's preconditioner on the structured route.** With :math:`Q = 1/\phi_W` (fan_in x fan_out)
on a dense layer's weight, its term of the kernel is

.. math::
    K_W(x, x') = \sum_{ij} a_i(x)\,\delta_j(x)\,Q_{ij}\,a_i(x')\,\delta_j(x')
    = \sum_i a_i(x)\,a_i(x')\,\big[Q\,(\delta(x)\odot\delta(x'))\big]_i .

A diagonal :math:`\phi` keeps the rank-one per-example gradients, so no Jacobian is formed: one
GEMM contracts the larger of fan-in and fan-out for every (row, batch) pair and a Hadamard sum the
smaller. It does not keep the Gram factorisation: for a general :math:`Q` each pair's term is a
bilinear form in :math:`Q` whose two vectors depend on the pair, so the exact term costs
:math:`2RB\,\text{fan}_\text{in}\text{fan}_\text{out}` flops, as many as contracting that layer's
Jacobian columns (:math:`2RBp` over all layers). The exact preconditioned route is therefore
bounded by the machine's matrix-multiply rate, not by a better flop count (``python -m
benchmarks.bench`` prints its fraction of that rate). Only a structured :math:`Q` is cheaper: with
its singular value decomposition :math:`Q = \sum_k \sigma_k \mathbf u_k \mathbf v_k^\top`,

.. math::
    K_W = \sum_k \sigma_k\,\big(A\,\mathrm{diag}(\mathbf u_k)A'^\top\big)
    \odot\big(D\,\mathrm{diag}(\mathbf v_k)D'^\top\big),

:math:`2RB(\text{fan}_\text{in} + \text{fan}_\text{out})` flops a term. ``rank=r`` keeps the ``r``
largest terms (the best rank-``r`` :math:`Q` in Frobenius norm) on every weight whose smaller
side exceeds ``r``; the others, the biases and every layer without a preconditioner stay exact.
It is an approximation: its error depends on how far Adam's :math:`1/\phi` is from rank ``r``,
and the benchmark measures it on a trained network's :math:`\phi` next to its time.

With :math:`k > 1` outputs the kernel is a :math:`k \times k` matrix per pair of rows,
:math:`K_{ij}(x, x') = \nabla f_i(x)^\top\mathrm{diag}(1/\phi)\nabla f_j(x')` (the paper's
section 2 writes :math:`k = 1`; its appendix extends the telescoping model to several outputs
coordinate-wise). ``outputs="full"`` returns it whole, shape (R, B, k, k); ``outputs="diagonal"``
returns the kernel of each output, (R, B, k); ``outputs="trace"`` returns their sum, (R, B).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lensbox.engine.checks import as_inputs
from lensbox.errors import ArgumentError, ShapeError
from lensbox.engine.models import (
    ACTIVATIONS,
    Apply,
    MLPSpec,
    Model,
    as_model,
    check_features,
)

Params = Any
METHODS = ("auto", "structured", "generic")
OUTPUTS = ("full", "diagonal", "trace")
tree_map = jax.tree_util.tree_map


def route(model: Model | Apply, method: str) -> tuple[str, Model]:
    """The route (``"structured"`` or ``"generic"``) that ``method`` resolves to for ``model``, and
    the model as a :class:`~lensbox.engine.models.Model`; shared by the kernels and the smoother so
    that both choose the same way."""
    if method not in METHODS:
        raise ArgumentError(f"method must be one of {METHODS}; got {method!r}.")
    model = as_model(model)
    is_mlp = isinstance(model.spec, MLPSpec)
    if method == "structured" and not is_mlp:
        raise ArgumentError(
            "method='structured' needs a lensbox.engine.models.mlp Model; use "
            "method='generic' for other apply functions."
        )
    if is_mlp and model.spec.out != 1:
        if method == "structured":
            raise ArgumentError(
                f"method='structured' supports one output (k = 1): its rank-one factorisation is "
                f"written for a scalar f. This MLP has k = {model.spec.out}; method='auto' or "
                f"'generic' computes its (R, B, k, k) kernel through Jacobians."
            )
        return "generic", model
    if method == "auto":
        method = "structured" if is_mlp else "generic"
    return method, model


def layer_factors(model: Model, params: Params, X) -> list[tuple[jax.Array, jax.Array]]:
    r"""Per layer :math:`l`, the inputs :math:`A_{l-1}` (rows x fan_in) and the back-propagated errors
    :math:`D_l = \partial f / \partial z_l` (rows x fan_out) of an :func:`~lensbox.engine.models.mlp`.

    The gradient of :math:`f(x)` with respect to layer ``l``'s weight is ``outer(A[x], D[x])`` and
    with respect to its bias ``D[x]``; one forward and one backward pass give them for all rows.
    """
    spec = model.spec
    act = ACTIVATIONS[spec.activation]
    h, inputs, derivs = jnp.asarray(X), [], []
    for layer in params[:-1]:
        inputs.append(h)
        z = h @ layer["w"] + layer["b"]
        h = act.function(z)
        derivs.append(act.derivative(z, h))
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


def jacobian_tree(apply: Apply, params: Params, X) -> Params:
    r"""Per-example Jacobians :math:`\partial f(x) / \partial\theta` as a pytree shaped like
    ``params`` with a leading row axis (and an output axis after it when ``f`` has k > 1 outputs).

    One ``jax.jacrev`` per example (a reverse pass per output), mapped over the rows by ``vmap``.
    """

    def one(p, x):
        return apply(p, tree_map(lambda a: a[None], x))[0]

    return jax.vmap(jax.jacrev(one), in_axes=(None, 0))(params, X)


def jacobian_rows(
    model: Model | Apply, params: Params, X, *, method: str = "auto"
) -> jax.Array:
    r"""The Jacobian :math:`[\nabla_\theta f_\theta(x)^\top]_x` of a one-output model, shape
    (rows, p), columns in the order of ``jax.flatten_util.ravel_pytree(params)``.

    The structured route builds each row from the outer products of :func:`layer_factors`; the
    generic route flattens :func:`jacobian_tree`.
    """
    method, model = route(model, method)
    X = as_inputs(X, "X")
    check_features(model, params, X, "X")
    if method == "structured":
        factors = layer_factors(model, params, X)
        grads = [{"b": d, "w": _rank_one_block(a, d)} for a, d in factors]
        return _flat_rows(grads)
    rows = jacobian_tree(model.apply, params, X)
    leaves = jax.tree_util.tree_leaves(rows)
    n, lead = leaves[0].shape[0], len(jax.tree_util.tree_leaves(params)[0].shape)
    if leaves[0].ndim - lead != 1:
        raise ShapeError(
            "jacobian_rows needs a one-output model (apply returning shape (n,)); "
            "use jacobian_tree for k > 1 outputs."
        )
    return jnp.concatenate([leaf.reshape(n, -1) for leaf in leaves], axis=1)


def _layer_blocks(params: Params, M: jax.Array):
    """Per layer of an MLP, its bias and weight rows of ``M`` (rows in the order of
    ``ravel_pytree(params)``: each layer's ``b`` then ``w``), shaped (fan_out, c), (fan_in, fan_out, c)."""
    c, offset = M.shape[1], 0
    for layer in params:
        fan_in, fan_out = layer["w"].shape
        b = M[offset : offset + fan_out]
        offset += fan_out
        w = M[offset : offset + fan_in * fan_out].reshape(fan_in, fan_out, c)
        offset += fan_in * fan_out
        yield b, w


def _columns(M, name: str, rows: int, what: str) -> jax.Array:
    """``M`` as a 2-D array with ``rows`` rows, or a :class:`ShapeError` naming it."""
    M = jnp.asarray(M)
    if M.ndim != 2 or M.shape[0] != rows:
        raise ShapeError(
            f"{name} must be a 2-D array with one row per {what} ({rows}), one column per "
            f"direction; got shape {M.shape}."
        )
    return M


def _rank_one_block(a: jax.Array, d: jax.Array) -> jax.Array:
    """A dense layer's weight columns of the Jacobian, rows x (fan_in * fan_out), in the order of
    ``ravel_pytree``: row ``r`` is ``outer(a[r], d[r])`` flattened."""
    return (a[:, :, None] * d[:, None, :]).reshape(a.shape[0], -1)


def _builds_block(fan_in: int, fan_out: int, columns: int) -> bool:
    """Whether a layer's products take its Jacobian block (rows x fan_in fan_out entries) rather
    than the rows x min(fan_in, fan_out) x columns intermediate: whichever is smaller. The block
    turns each product into one GEMM over fan_in * fan_out."""
    return max(fan_in, fan_out) < columns


def factor_times(params: Params, factors, M) -> jax.Array:
    r""":math:`\mathbf J\,\mathbf M` (rows x c) from the :func:`layer_factors` of the rows, ``M`` of
    shape (p, c) in the order of ``ravel_pytree(params)``.

    Layer ``l`` contributes :math:`\sum_{ij} A_{ri} W^{(c)}_{ij} D_{rj} + (D\,b^{(c)})_r`, by the
    cheaper of two exact orders: when the layer's Jacobian block (rows x fan_in fan_out) is
    smaller than the intermediate rows x min(fan_in, fan_out) x c, one GEMM of that block with the
    layer's rows of ``M``; otherwise one GEMM over the larger of fan-in and fan-out, then a
    Hadamard sum over the smaller.
    """
    out = 0.0
    for (a, d), (b, w) in zip(factors, _layer_blocks(params, M)):
        fan_in, fan_out, c = w.shape
        if _builds_block(fan_in, fan_out, c):
            out = out + _rank_one_block(a, d) @ w.reshape(fan_in * fan_out, c)
        elif fan_out >= fan_in:  # G[r, i, c] = sum_j D[r, j] W[i, j, c]
            G = d @ jnp.moveaxis(w, 1, 0).reshape(fan_out, fan_in * c)
            out = out + jnp.einsum("ric,ri->rc", G.reshape(-1, fan_in, c), a)
        else:  # T[r, j, c] = sum_i A[r, i] W[i, j, c]
            T = a @ w.reshape(fan_in, fan_out * c)
            out = out + jnp.einsum("rjc,rj->rc", T.reshape(-1, fan_out, c), d)
        out = out + d @ b
    return out


def factor_transpose_times(factors, V) -> jax.Array:
    r""":math:`\mathbf J^\top\mathbf V` (p x c) from the :func:`layer_factors` of the rows and ``V``
    of shape (rows, c), in the order of ``ravel_pytree``: layer ``l``'s weight rows are
    :math:`\sum_r A_{ri} D_{rj} V_{rc}`, one GEMM of the layer's Jacobian block with ``V`` when that
    block is the smaller intermediate (see :func:`factor_times`), otherwise one ``einsum``."""
    c, blocks = V.shape[1], []
    for a, d in factors:
        fan_in, fan_out = a.shape[1], d.shape[1]
        if _builds_block(fan_in, fan_out, c):
            g = _rank_one_block(a, d).T @ V
        else:
            g = jnp.einsum("ri,rj,rc->ijc", a, d, V).reshape(fan_in * fan_out, c)
        blocks += [d.T @ V, g]
    return jnp.concatenate(blocks, axis=0)


def jacobian_times(
    model: Model | Apply, params: Params, X, M, *, method: str = "auto"
) -> jax.Array:
    r""":math:`\mathbf J(X)\,\mathbf M` (rows x c) for a one-output model, ``M`` of shape (p, c) with
    rows in the order of ``ravel_pytree(params)``: the change of every row's prediction along each
    of ``c`` parameter directions.

    Structured route: :func:`factor_times` on the rows' :func:`layer_factors` (exact GEMMs, the
    rows x p Jacobian never formed whole). Generic route: one ``jax.jvp`` per column.
    """
    method, model = route(model, method)
    X = as_inputs(X, "X")
    check_features(model, params, X, "X")
    M = _columns(
        M, "M", sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)), "p"
    )
    if method == "structured":
        return factor_times(params, layer_factors(model, params, X), M)
    unravel = ravel_pytree(params)[1]
    push = lambda col: jax.jvp(
        lambda th: model.apply(th, X), (params,), (unravel(col),)
    )[1]
    return jax.vmap(push, in_axes=1, out_axes=1)(M)


def jacobian_transpose_times(
    model: Model | Apply, params: Params, X, V, *, method: str = "auto"
) -> jax.Array:
    r""":math:`\mathbf J(X)^\top\mathbf V` (p x c) for a one-output model and ``V`` of shape
    (rows, c): ``c`` weighted sums of per-row gradients (a batch gradient per column), rows in
    the order of ``ravel_pytree(params)``.

    Structured route: :func:`factor_transpose_times` on the rows' :func:`layer_factors`. Generic
    route: one ``jax.vjp`` per column.
    """
    method, model = route(model, method)
    X = as_inputs(X, "X")
    check_features(model, params, X, "X")
    V = _columns(V, "V", jax.tree_util.tree_leaves(X)[0].shape[0], "rows of X")
    if method == "structured":
        return factor_transpose_times(layer_factors(model, params, X), V)
    f, pull = jax.vjp(lambda th: model.apply(th, X), params)
    back = lambda v: ravel_pytree(pull(v.astype(f.dtype))[0])[0]
    return jax.vmap(back, in_axes=1, out_axes=1)(V)


def _leading_components(Q: jax.Array, rank: int):
    """The ``rank`` leading singular triples ``(U, s, V)`` of ``Q``, with ``Q ~ U diag(s) V^T``,
    from the eigendecomposition of its smaller Gram matrix (min(shape)^2 entries; the leading
    components are the well-conditioned ones)."""
    tall = Q.shape[0] > Q.shape[1]
    M = Q.T if tall else Q  # short side first
    values, vectors = jnp.linalg.eigh(M @ M.T)  # ascending
    s = jnp.sqrt(jnp.maximum(values[::-1][:rank], 0.0))
    left = vectors[:, ::-1][:, :rank]
    right = (M.T @ left) / jnp.where(s > 0, s, 1.0)
    return (right, s, left) if tall else (left, s, right)


def _low_rank_term(aR, dR, aB, dB, inv_w, rank: int) -> jax.Array:
    """A weight's preconditioned kernel term with ``inv_w`` (fan_in x fan_out) replaced by its
    ``rank`` leading singular components (see the module docstring): per component, one GEMM of
    the tracked rows' factors with the batch's, scaled by that component's vector."""
    U, s, V = _leading_components(inv_w, rank)
    R, B = aR.shape[0], aB.shape[0]
    # batch side scaled per component: (fan, rank * B); the GEMMs keep the long fan dimension
    GA = aR @ (U[:, :, None] * aB.T[:, None, :]).reshape(U.shape[0], rank * B)
    GD = dR @ (V[:, :, None] * dB.T[:, None, :]).reshape(V.shape[0], rank * B)
    return jnp.einsum("rkb,k->rb", (GA * GD).reshape(R, rank, B), s)


def _structured_block(model, params, X_R, X_B, phi, params_B, rank=None) -> jax.Array:
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
        if rank is not None and rank < min(inv_w.shape):
            K = K + _low_rank_term(aR, dR, aB, dB, inv_w, rank)
        elif aR.shape[1] >= dR.shape[1]:
            Z = jnp.einsum("ri,boi->rbo", aR, jnp.einsum("bi,io->boi", aB, inv_w))
            K = K + jnp.einsum("ro,bo,rbo->rb", dR, dB, Z)
        else:
            Z = jnp.einsum("ro,bio->rbi", dR, jnp.einsum("bo,io->bio", dB, inv_w))
            K = K + jnp.einsum("ri,bi,rbi->rb", aR, aB, Z)
        K = K + (dR * inv_b) @ dB.T
    return K


def _contract(J_R: Params, J_B: Params, params: Params, outputs: str) -> jax.Array:
    """:math:`\\sum_\\text{leaves} J_R J_B^\\top`, leaf by leaf, keeping or reducing the output axes."""
    total = None
    for jr, jb, leaf in zip(
        jax.tree_util.tree_leaves(J_R),
        jax.tree_util.tree_leaves(J_B),
        jax.tree_util.tree_leaves(params),
    ):
        k_axes = jr.ndim - 1 - np.ndim(leaf)  # 0 for one output, 1 for k outputs
        jr = jr.reshape(jr.shape[: 1 + k_axes] + (-1,))
        jb = jb.reshape(jb.shape[: 1 + k_axes] + (-1,))
        if k_axes == 0:
            term = jr @ jb.T
        elif outputs == "full":
            term = jnp.einsum("rip,bjp->rbij", jr, jb)
        elif outputs == "diagonal":
            term = jnp.einsum("rip,bip->rbi", jr, jb)
        else:
            term = jnp.einsum("rip,bip->rb", jr, jb)
        total = term if total is None else total + term
    return total


def _generic_block(apply, params, X_R, X_B, phi, params_B, outputs, rows_per_chunk):
    J_B = jacobian_tree(apply, params if params_B is None else params_B, X_B)
    if phi is not None:
        J_B = tree_map(lambda j, f: j / f, J_B, phi)
    R = jax.tree_util.tree_leaves(X_R)[0].shape[0]
    if R <= rows_per_chunk:
        return _contract(jacobian_tree(apply, params, X_R), J_B, params, outputs)
    chunks = -(-R // rows_per_chunk)
    pad = chunks * rows_per_chunk - R
    padded = tree_map(
        lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]), X_R
    )
    stacked = tree_map(
        lambda a: a.reshape((chunks, rows_per_chunk) + a.shape[1:]), padded
    )
    blocks = jax.lax.map(
        lambda x: _contract(jacobian_tree(apply, params, x), J_B, params, outputs),
        stacked,
    )
    return blocks.reshape((chunks * rows_per_chunk,) + blocks.shape[2:])[:R]


def tangent_kernel(
    model: Model | Apply,
    params: Params,
    X_R,
    X_B,
    *,
    preconditioner: Params | None = None,
    method: str = "auto",
    params_B: Params | None = None,
    outputs: str = "full",
    rows_per_chunk: int = 128,
    rank: int | None = None,
) -> jax.Array:
    r"""The block :math:`[\nabla f_\theta(x_r)^\top \mathrm{diag}(1/\phi) \nabla f_{\theta'}(x_b)]_{r,b}`.

    Without :math:`\gamma_t` and :math:`1/|B_t|`: Eq. 3's :math:`K^\theta_t(x, x_i)` is
    ``tangent_kernel(...) / |B_t|`` on the batch, and the Adam kernel :math:`K^\phi_t` of section 5
    is the same with ``preconditioner=phi_t`` (from :func:`lensbox.engine.optim.preconditioner`).

    Args:
        model: a :class:`~lensbox.engine.models.Model` or any ``apply(params, X)`` (see
            :func:`lensbox.engine.models.as_model`); one-output MLPs from :func:`~lensbox.engine.models.mlp` take
            the structured route under ``auto``, everything else the generic route.
        params: :math:`\theta` for the rows ``X_R`` (and ``X_B`` unless ``params_B`` is given).
        X_R, X_B: R and B inputs: arrays with a leading row axis (``(R, d)``, images
            ``(R, h, w, c)``) or pytrees of them; every entry finite.
        preconditioner: :math:`\phi`, a pytree shaped like ``params``, or ``None``.
        method: ``auto``, ``structured`` or ``generic``.
        params_B: parameters for the ``X_B`` side, for the cross-temporal kernel
            :math:`K_{t,k}` of Eq. 11 (default: ``params``).
        outputs: for a model with k > 1 outputs, ``full`` (R, B, k, k), ``diagonal`` (R, B, k:
            the kernel of each output) or ``trace`` (R, B: their sum). Ignored when k = 1.
        rows_per_chunk: generic route: tracked rows whose Jacobians exist at once.
        rank: structured route with a preconditioner: keep the ``rank`` leading singular
            components of each weight's :math:`1/\phi` (an approximation, see the module
            docstring); ``None`` (default): exact.

    Returns:
        An (R, B) array for one output; see ``outputs`` for k > 1.

    Examples:
        The kernel between 5 rows and the first 3 is the product of their Jacobian rows, computed
        without forming them:

        >>> import jax, numpy as np
        >>> import lensbox
        >>> net = lensbox.mlp((8,))
        >>> params = net.init(jax.random.PRNGKey(0), 2)
        >>> X = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
        >>> K = lensbox.tangent_kernel(net, params, X, X[:3])
        >>> K.shape
        (5, 3)
        >>> J = lensbox.engine.kernels.jacobian_rows(net, params, X)  # (rows, p)
        >>> J.shape
        (5, 33)
        >>> bool(np.allclose(K, J @ J[:3].T, rtol=1e-4))
        True
    """
    method, model = route(model, method)
    if outputs not in OUTPUTS:
        raise ArgumentError(f"outputs must be one of {OUTPUTS}; got {outputs!r}.")
    X_R, X_B = as_inputs(X_R, "X_R"), as_inputs(X_B, "X_B")
    check_features(model, params, X_R, "X_R")
    check_features(model, params if params_B is None else params_B, X_B, "X_B")
    if preconditioner is not None and (
        jax.tree_util.tree_structure(preconditioner)
        != jax.tree_util.tree_structure(params)
    ):
        raise ShapeError(
            "preconditioner must be a pytree shaped like params (phi from "
            "lensbox.engine.optim.preconditioner) or None."
        )
    if rank is not None:
        if (
            isinstance(rank, bool)
            or not isinstance(rank, (int, np.integer))
            or rank < 1
        ):
            raise ArgumentError(
                f"rank must be a positive integer or None; got {rank!r}."
            )
        if preconditioner is None or method != "structured":
            raise ArgumentError(
                "rank approximates a preconditioner's weight blocks on the structured route: "
                "it needs preconditioner=phi and a one-output lensbox.engine.models.mlp "
                f"(the route here is {method!r}, preconditioner "
                f"{'given' if preconditioner is not None else 'None'})."
            )
        rank = int(rank)
    if method == "structured":
        return _structured_jit(model, params, X_R, X_B, preconditioner, params_B, rank)
    return _generic_jit(
        model.apply,
        params,
        X_R,
        X_B,
        preconditioner,
        params_B,
        outputs,
        max(1, int(rows_per_chunk)),
    )


_structured_jit = jax.jit(_structured_block, static_argnums=(0, 6))
_generic_jit = jax.jit(_generic_block, static_argnums=(0, 6, 7))


def layer_trace_shares(
    model: Model | Apply,
    params: Params,
    X,
    preconditioner: Params | None = None,
    *,
    method: str = "auto",
) -> np.ndarray:
    r"""The share of :math:`\mathrm{tr}\,K(X, X)` that each top-level entry of ``params`` carries.

    The trace is a sum over parameters, :math:`\mathrm{tr}\,K = \sum_x\sum_j (\partial_j f(x))^2/\phi_j`,
    so it splits exactly into one part per layer (per entry of a list or dict of parameters); the
    *Optimisers* chapter uses the shares to show which layers Adam's :math:`K^\phi` listens to
    (section 5). Each part is the trace of the kernel with every other layer's :math:`1/\phi` set to
    zero. Returns an array summing to one.
    """
    ones = tree_map(jnp.ones_like, params) if preconditioner is None else preconditioner
    if isinstance(params, dict):
        keys = list(params)
    elif isinstance(params, (list, tuple)):
        keys = list(range(len(params)))
    else:
        raise ArgumentError(
            f"params must be a list or dict of layers to split the trace by; "
            f"got {type(params).__name__}."
        )

    def only(key):  # 1/phi kept for one layer, 1/inf = 0 for every other
        kept = {
            k: ones[k]
            if k == key
            else tree_map(lambda v: jnp.full_like(v, jnp.inf), ones[k])
            for k in keys
        }
        return kept if isinstance(params, dict) else type(params)(kept[k] for k in keys)

    parts = []
    for key in keys:
        parts.append(
            float(
                jnp.trace(
                    tangent_kernel(
                        model, params, X, X, preconditioner=only(key), method=method
                    )
                )
            )
        )
    return np.asarray(parts) / sum(parts)
