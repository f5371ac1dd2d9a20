r"""Linear mode connectivity through the telescoping lens (paper section 4.3, Eq. 10, Fig. 6).

Two children :math:`\theta_1, \theta_2` spawned at step :math:`t'` are *linearly connected* when no
point on the segment :math:`\theta_\alpha = \alpha\theta_1 + (1-\alpha)\theta_2` is worse than the
same mix of the endpoints. This module measures it for networks with BatchNorm
(:mod:`lensbox.connectivity.networks`):

* :func:`interpolate`: :math:`\theta_\alpha` for many :math:`\alpha` at once (a leading axis);
* :func:`interpolation_curve`: test loss and accuracy of every :math:`\theta_\alpha` in one
  vectorised call, with the BatchNorm statistics of the averaged model either interpolated like the
  parameters or recomputed on training inputs (:func:`recompute_statistics`);
* :func:`barrier`: the loss or accuracy barrier both ways the paper defines it (paper section 4.3):
  the largest shortfall over :math:`\alpha` (main text) or the children's mean minus the midpoint
  model (App. C.3);
* :func:`gradient_change`: the per-layer mean squared change of the pre-softmax gradients
  :math:`\nabla_\theta f(x)` between two parameter vectors (Fig. 6, panels 2 and 3);
* :func:`eq10_comparison`: Eq. 10 as a measurement, the weight-averaged model, the ensemble and the
  model linearised at :math:`\theta_{t'}` compared on test inputs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.connectivity.networks import (
    BatchNormNetwork,
    check_images,
    check_labels,
    get_layer,
    layer_names,
)
from lensbox.engine.checks import as_count, check_finite
from lensbox.errors import ArgumentError, ShapeError
from lensbox.engine.training import cached_program, softmax_cross_entropy

Params = Any
tree_map = jax.tree_util.tree_map
BN_MODES = ("interpolate", "recompute")


def _alphas(alphas) -> jax.Array:
    if isinstance(alphas, jax.core.Tracer):
        return alphas
    a = np.asarray(alphas, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ArgumentError(
            f"alphas must be a non-empty 1-D sequence; got shape {a.shape}."
        )
    if not np.all((a >= 0) & (a <= 1)):
        raise ArgumentError(f"alphas must lie in [0, 1]; got {a}.")
    return jnp.asarray(a, dtype=jnp.zeros(()).dtype)


def interpolate(theta_1: Params, theta_2: Params, alphas) -> Params:
    r""":math:`\alpha\theta_1 + (1-\alpha)\theta_2` for every ``alpha``, stacked on a leading axis.

    Works for any pair of pytrees of the same structure (parameters or BatchNorm statistics).
    """
    a = _alphas(alphas)
    if jax.tree_util.tree_structure(theta_1) != jax.tree_util.tree_structure(theta_2):
        raise ArgumentError(
            "theta_1 and theta_2 must be pytrees of the same structure."
        )
    shapes = [
        (jnp.shape(u), jnp.shape(v))
        for u, v in zip(
            jax.tree_util.tree_leaves(theta_1), jax.tree_util.tree_leaves(theta_2)
        )
        if jnp.shape(u) != jnp.shape(v)
    ]
    if shapes:
        raise ShapeError(
            f"theta_1 and theta_2 must hold arrays of the same shapes; {len(shapes)} differ, "
            f"the first {shapes[0][0]} against {shapes[0][1]}."
        )

    def mix(p1, p2):
        w = a.reshape((-1,) + (1,) * jnp.ndim(p1)).astype(jnp.result_type(p1))
        return w * p1 + (1 - w) * p2

    return tree_map(mix, theta_1, theta_2)


def recompute_statistics(
    net: BatchNormNetwork, params: Params, bn_state: Params, X: jax.Array
) -> Params:
    """BatchNorm statistics of ``params`` recomputed as the statistics of the inputs ``X``.

    One forward pass in training mode over all of ``X`` with momentum 1, so each layer's mean and
    (unbiased) variance are those of its inputs over ``X`` when every earlier layer is normalised
    the same way: what a weight-averaged model needs when its children's running statistics do not
    describe it (the "recompute" choice of :func:`interpolation_curve`). Differentiable in
    ``params``.
    """
    return net.apply(params, bn_state, X, True, 1.0)[1]


def _chunked_logits(net, params, bn_state, X, chunk: int):
    n = X.shape[0]
    if n <= chunk:
        return net.apply(params, bn_state, X, False)[0]
    pad = (-n) % chunk
    Xp = jnp.concatenate([X, jnp.zeros((pad,) + X.shape[1:], X.dtype)]) if pad else X
    out = jax.lax.map(
        lambda xb: net.apply(params, bn_state, xb, False)[0],
        Xp.reshape((-1, chunk) + X.shape[1:]),
    )
    return out.reshape((-1,) + out.shape[2:])[:n]


def evaluate(
    net: BatchNormNetwork,
    params: Params,
    bn_state: Params,
    X: jax.Array,
    y: jax.Array,
    *,
    chunk: int = 1000,
) -> tuple[jax.Array, jax.Array]:
    """Mean softmax cross-entropy and accuracy on ``(X, y)`` in evaluation mode (running statistics)."""
    X = check_images(X, "X")
    y = check_labels(net, y, X.shape[0], "y")
    chunk = as_count(chunk, "chunk", minimum=1)
    logits = _chunked_logits(net, params, bn_state, X, chunk)
    return (
        jnp.mean(softmax_cross_entropy(logits, y)),
        jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(logits.dtype)),
    )


def interpolation_curve(
    net: BatchNormNetwork,
    child_1: tuple[Params, Params],
    child_2: tuple[Params, Params],
    X: jax.Array,
    y: jax.Array,
    alphas,
    *,
    bn: str = "interpolate",
    X_stats: jax.Array | None = None,
    chunk: int = 1000,
) -> tuple[jax.Array, jax.Array]:
    r"""Loss and accuracy on ``(X, y)`` of :math:`\theta_\alpha` for every ``alpha``, in one vmapped call.

    Args:
        child_1, child_2: ``(params, bn_state)`` of the two children; ``alpha = 1`` is child 1.
        bn: ``"interpolate"`` mixes the children's running statistics with the same
            :math:`\alpha`; ``"recompute"`` replaces them by :func:`recompute_statistics` of
            :math:`\theta_\alpha` on ``X_stats`` (training inputs).

    Returns:
        ``(loss, accuracy)``, each of shape ``(len(alphas),)``.
    """
    if bn not in BN_MODES:
        raise ArgumentError(f"bn must be one of {BN_MODES}; got {bn!r}.")
    if bn == "recompute" and X_stats is None:
        raise ArgumentError(
            "bn='recompute' needs X_stats, the training inputs to recompute on."
        )
    X = check_images(X, "X")
    y = check_labels(net, y, X.shape[0], "y")
    if X_stats is not None:
        X_stats = check_images(X_stats, "X_stats")
    thetas = interpolate(child_1[0], child_2[0], alphas)
    stats = interpolate(child_1[1], child_2[1], alphas)

    def one(theta, stat):
        if bn == "recompute":
            stat = recompute_statistics(net, theta, stat, X_stats)
        return evaluate(net, theta, stat, X, y, chunk=chunk)

    return jax.vmap(one)(thetas, stats)


def barrier(
    values, alphas, *, kind: str = "max", higher_is_better: bool = False
) -> jax.Array:
    r"""The barrier along an interpolation curve, both ways the paper defines it (paper section 4.3).

    ``values[i]`` is a loss (or an accuracy, with ``higher_is_better=True``) of
    :math:`\theta_{\alpha_i}`; the endpoints are read at :math:`\alpha = 1` (child 1) and
    :math:`\alpha = 0` (child 2), which ``alphas`` must contain. With the sign chosen so that a
    positive barrier means the weight average is worse:

    * ``kind="max"`` (main text, after Frankle et al. 2020):
      :math:`\max_\alpha\,[v(\theta_\alpha) - (\alpha v(\theta_1) + (1-\alpha) v(\theta_2))]` for a
      loss, the mix minus the average's value for an accuracy;
    * ``kind="midpoint"`` (App. C.3): the same at :math:`\alpha = 1/2` only, i.e. the children's
      mean minus the averaged model for an accuracy; ``alphas`` must contain 1/2.

    ``values`` may carry leading axes (runs); the last axis runs over ``alphas``.
    """
    a = _alphas(alphas)
    v = jnp.asarray(values)
    if not isinstance(values, jax.core.Tracer):
        check_finite(v, "values")
    if v.ndim == 0 or v.shape[-1] != a.shape[0]:
        raise ArgumentError(
            f"values must end with one entry per alpha ({a.shape[0]}); got {v.shape}."
        )
    ends = {}
    for name, target in (("one", 1.0), ("zero", 0.0), ("half", 0.5)):
        hits = np.flatnonzero(np.isclose(np.asarray(a), target))
        ends[name] = int(hits[0]) if hits.size else None
    if ends["one"] is None or ends["zero"] is None:
        raise ArgumentError("alphas must contain 0 and 1 (the children themselves).")
    mix = a * v[..., ends["one"], None] + (1 - a) * v[..., ends["zero"], None]
    gap = (mix - v) if higher_is_better else (v - mix)
    if kind == "max":
        return jnp.max(gap, axis=-1)
    if kind == "midpoint":
        if ends["half"] is None:
            raise ArgumentError("kind='midpoint' needs alpha = 0.5 among the alphas.")
        return gap[..., ends["half"]]
    raise ArgumentError(f"kind must be 'max' or 'midpoint'; got {kind!r}.")


def _layer_sums(tree: Params) -> dict[str, tuple[jax.Array, int]]:
    """Per layer of :func:`~lensbox.connectivity.networks.layer_names`: (sum over its leaves, parameter count).

    Leaves carry leading axes (examples, logits) that are summed too.
    """
    out = {}
    for name, _ in layer_names(tree):
        leaves = jax.tree_util.tree_leaves(get_layer(tree, name))
        out[name] = (
            sum(jnp.sum(leaf) for leaf in leaves),
            sum(leaf.size for leaf in leaves),
        )
    return out


def layer_gradient_change(
    net: BatchNormNetwork,
    before: tuple[Params, Params],
    after: tuple[Params, Params],
    X: jax.Array,
    *,
    chunk: int = 32,
) -> dict:
    """:func:`gradient_change` as JAX scalars (jit- and map-able); same arguments."""
    X = check_images(X, "X")
    chunk = as_count(chunk, "chunk", minimum=1)
    n = X.shape[0]

    def jac(params, bn_state, xb):
        f = lambda p, x: net.apply(p, bn_state, x[None], False)[0][0]  # noqa: E731
        return jax.vmap(jax.jacrev(f), in_axes=(None, 0))(params, xb)

    def squared_diff(xb):
        ja, jb = jac(*before, xb), jac(*after, xb)
        return tree_map(lambda u, v: jnp.sum(jnp.square(v - u), axis=(0, 1)), ja, jb)

    pad = (-n) % chunk
    if pad:  # padded rows are copies of row 0; their contribution is removed below
        X = jnp.concatenate([X, jnp.broadcast_to(X[:1], (pad,) + X.shape[1:])])
    parts = jax.lax.map(squared_diff, X.reshape((-1, chunk) + X.shape[1:]))
    total = tree_map(lambda leaf: jnp.sum(leaf, axis=0), parts)
    if pad:
        total = tree_map(lambda t, r: t - pad * r, total, squared_diff(X[:1]))
    k = net.spec.classes
    return {
        name: s / (n * k * count) for name, (s, count) in _layer_sums(total).items()
    }


def gradient_change(
    net: BatchNormNetwork,
    before: tuple[Params, Params],
    after: tuple[Params, Params],
    X: jax.Array,
    *,
    chunk: int = 32,
) -> dict[str, float]:
    r"""Per-layer mean squared change of the pre-softmax gradients (Fig. 6, panels 2 and 3).

    For each layer :math:`l` with :math:`p_l` parameters:

    .. math:: \frac{1}{|X|\,k\,p_l}\sum_{x\in X}\sum_{c=1}^k\sum_{j\in l}
              \big(\partial_{\theta_j} f^c_{\theta_b}(x) - \partial_{\theta_j} f^c_{\theta_a}(x)\big)^2,

    where :math:`f^c` is logit :math:`c` in evaluation mode (each state's own running statistics)
    and ``before = (theta_a, bn_a)``, ``after = (theta_b, bn_b)`` (the paper: :math:`t'` and
    :math:`t'` + one epoch, 256 test inputs). The paper does not say which logit it differentiates;
    we average over all :math:`k` of them. BatchNorm scales and shifts are layers of their own.
    ``chunk`` rows are differentiated at a time.

    Returns:
        ``{layer name: mean squared change}`` in depth order.
    """
    out = layer_gradient_change(net, before, after, X, chunk=chunk)
    return {name: float(v) for name, v in out.items()}


def eq10_comparison(
    net: BatchNormNetwork,
    spawn: tuple[Params, Params],
    child_1: tuple[Params, Params],
    child_2: tuple[Params, Params],
    X: jax.Array,
    y: jax.Array,
    X_stats: jax.Array,
    *,
    alpha: float = 0.5,
) -> dict:
    r"""Eq. 10 on test inputs: weight average, ensemble, and the model linearised at :math:`\theta_{t'}`.

    With :math:`f_\theta` the network in evaluation mode with BatchNorm statistics recomputed on
    ``X_stats`` (a function of :math:`\theta` alone), and :math:`\theta_\alpha = \alpha\theta_1 +
    (1-\alpha)\theta_2`, the three pre-softmax predictions are

    * weight average :math:`f_{\theta_\alpha}(x)`;
    * ensemble :math:`\bar f^\alpha(x) = \alpha f_{\theta_1}(x) + (1-\alpha) f_{\theta_2}(x)`;
    * linearised :math:`f_{\theta_{t'}}(x) + \nabla_\theta f_{\theta_{t'}}(x)^\top(\theta_\alpha -
      \theta_{t'})`, Eq. 10's right-hand side with :math:`t^* = t'` (both children start at
      :math:`\theta_{t'}`, so :math:`\theta_\alpha - \theta_{t'} = \sum_t(\alpha\Delta\theta_{1t} +
      (1-\alpha)\Delta\theta_{2t})`).

    Returns:
        ``gap_wa_ens``, ``gap_lin_ens``, ``gap_lin_wa``: root-mean-square differences over inputs
        and logits, each divided by the root-mean-square of :math:`\bar f^\alpha - f_{\theta_{t'}}`
        (how far training moved the predictions), and ``acc_wa``, ``acc_ens``, ``acc_lin``,
        ``acc_spawn``: test accuracies (JAX scalars; the function is jit- and map-able).
    """

    if not isinstance(alpha, jax.core.Tracer) and not 0.0 <= float(alpha) <= 1.0:
        raise ArgumentError(
            f"alpha must lie in [0, 1] (a point between the children); got {alpha!r}."
        )
    X, X_stats = check_images(X, "X"), check_images(X_stats, "X_stats")
    y = check_labels(net, y, X.shape[0], "y")

    def f(params, bn_state):
        return net.apply(
            params, recompute_statistics(net, params, bn_state, X_stats), X, False
        )[0]

    theta_a = tree_map(
        lambda p1, p2: alpha * p1 + (1 - alpha) * p2, child_1[0], child_2[0]
    )
    f_spawn, jvp = jax.jvp(
        lambda p: f(p, spawn[1]),
        (spawn[0],),
        (tree_map(jnp.subtract, theta_a, spawn[0]),),
    )
    wa = f(theta_a, child_1[1])
    ens = alpha * f(*child_1) + (1 - alpha) * f(*child_2)
    lin = f_spawn + jvp
    rms = lambda d: jnp.sqrt(jnp.mean(jnp.square(d)))  # noqa: E731
    scale = rms(ens - f_spawn)
    acc = lambda logits: jnp.mean((jnp.argmax(logits, -1) == y).astype(logits.dtype))  # noqa: E731
    return {
        "gap_wa_ens": rms(wa - ens) / scale,
        "gap_lin_ens": rms(lin - ens) / scale,
        "gap_lin_wa": rms(lin - wa) / scale,
        "acc_wa": acc(wa),
        "acc_ens": acc(ens),
        "acc_lin": acc(lin),
        "acc_spawn": acc(f_spawn),
    }


def _compiled(net: BatchNormNetwork, what: str, bn: str = "", alphas: tuple = ()):
    """Jitted measurements over a leading axis of runs, compiled once per network and kind
    (:func:`~lensbox.engine.training.cached_program`)."""
    return cached_program(
        ("barrier measurements", net, what, bn, alphas),
        lambda: _measurements(net, what, bn, alphas),
    )


def _measurements(net: BatchNormNetwork, what: str, bn: str, alphas: tuple):
    if what == "curve":
        return jax.jit(
            lambda a, b, X, y, Xs: jax.lax.map(
                lambda ab: interpolation_curve(
                    net, ab[0], ab[1], X, y, np.asarray(alphas), bn=bn, X_stats=Xs
                ),
                (a, b),
            )
        )
    if what == "change":
        return jax.jit(
            lambda b, a, Xg: jax.lax.map(
                lambda ba: layer_gradient_change(net, ba[0], ba[1], Xg), (b, a)
            )
        )
    return jax.jit(
        lambda sp, k1, k2, X, y, Xs: jax.lax.map(
            lambda z: eq10_comparison(net, z[0], z[1], z[2], X, y, Xs), (sp, k1, k2)
        )
    )


def measure_spawns(
    net: BatchNormNetwork,
    spawned,
    later,
    children,
    X_test: jax.Array,
    y_test: jax.Array,
    X_stats: jax.Array,
    X_grad: jax.Array,
    alphas,
) -> dict:
    r"""Everything Fig. 6 and Eq. 10 need from one spawning experiment (numpy arrays).

    Args:
        spawned, later: :class:`~lensbox.connectivity.spawning.SpawnState` with leading axes (checkpoints,
            seeds): the parent at :math:`t'` and one epoch later (for the gradient change).
        children: leading axes (checkpoints, seeds, 2 P): P pairs ``(2i, 2i + 1)`` per parent.
        X_test, y_test: where losses, accuracies and Eq. 10 are measured.
        X_stats: training inputs to recompute BatchNorm statistics on.
        X_grad: the inputs of the gradient change (the paper: 256 test inputs).
        alphas: interpolation weights; must contain 0, 1/2 and 1.

    Returns:
        ``curves[bn][metric]`` (checkpoints, seeds, P, alphas) for ``bn`` in :data:`BN_MODES` and
        ``metric`` ``loss``/``accuracy``; ``barriers[bn][name]`` (checkpoints, seeds, P) for
        ``loss_max``, ``loss_midpoint``, ``error_max``, ``error_midpoint`` (accuracy barriers, as
        error rates); ``gradient_change`` (checkpoints, seeds, layers) with ``layers``; ``eq10[key]``
        (checkpoints, seeds) from the first pair at alpha = 1/2; ``child_accuracy`` (checkpoints,
        seeds, P, 2).
    """
    C, S, K = children.step.shape
    if K % 2:
        raise ArgumentError(f"children must come in pairs; got {K} per parent.")
    pick = lambda tree, j: tree_map(
        lambda leaf: leaf[:, :, j::2].reshape((-1,) + leaf.shape[3:]), tree
    )  # noqa: E731
    ones, twos = (
        (pick(children.params, 0), pick(children.bn_state, 0)),
        (pick(children.params, 1), pick(children.bn_state, 1)),
    )
    out = {"alphas": np.asarray(alphas), "curves": {}, "barriers": {}}
    for bn in BN_MODES:
        curve = _compiled(net, "curve", bn, tuple(float(a) for a in np.asarray(alphas)))
        loss, acc = (
            np.asarray(v).reshape(C, S, K // 2, -1)
            for v in curve(ones, twos, X_test, y_test, X_stats)
        )
        out["curves"][bn] = {"loss": loss, "accuracy": acc}
        out["barriers"][bn] = {
            f"{metric}_{kind}": np.asarray(
                barrier(vals, alphas, kind=kind, higher_is_better=hib)
            )
            for metric, vals, hib in (("loss", loss, False), ("error", acc, True))
            for kind in ("max", "midpoint")
        }
    flat = lambda tree: tree_map(
        lambda leaf: leaf.reshape((-1,) + leaf.shape[2:]), tree
    )  # noqa: E731
    before = (flat(spawned.params), flat(spawned.bn_state))
    after = (flat(later.params), flat(later.bn_state))
    change = _compiled(net, "change")(before, after, X_grad)
    out["layers"] = layer_names(spawned.params)
    out["gradient_change"] = np.stack(
        [np.asarray(change[name]) for name, _ in out["layers"]], axis=-1
    ).reshape(C, S, -1)
    first = lambda tree, j: tree_map(
        lambda leaf: leaf[:, :, j].reshape((-1,) + leaf.shape[3:]), tree
    )  # noqa: E731
    kids = [(first(children.params, j), first(children.bn_state, j)) for j in (0, 1)]
    res = _compiled(net, "eq10")(before, kids[0], kids[1], X_test, y_test, X_stats)
    out["eq10"] = {k: np.asarray(v).reshape(C, S) for k, v in res.items()}
    ends = [int(np.flatnonzero(np.isclose(out["alphas"], a))[0]) for a in (1.0, 0.0)]
    out["child_accuracy"] = out["curves"]["interpolate"]["accuracy"][..., ends]
    return out
