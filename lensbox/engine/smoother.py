r"""The smoother form of the telescoping model for squared loss (Eqs. 6-8, 14-21) and effective
parameters (paper section 4.1; the book's *Smoothers* chapter).

With :math:`\ell = \tfrac12(y-f)^2`, every update is linear in the residuals of the batch, so the
telescoping prediction at any input is affine in the training labels,

.. math:: \tilde f_{\theta_t}(x) = \mathbf s_t(x)\,\mathbf y + c_t(x), \qquad \mathbf s_0 = \mathbf 0,\
    c_0(x) = f_{\theta_0}(x).

We track rows :math:`R` = the ``n`` training rows, then the ``m`` evaluation rows, as one matrix
``[S | c_closed_loop | c_realised]`` of shape (n + m) x (n + 2): the coefficients of
:math:`[\mathbf y; 1; 1]`.

**Two offsets, one S: the two readings of the smoother.** The residuals of step ``t`` on the batch split as
:math:`\mathbf y_B - \mathbf f_B = (\mathbf E_B - \mathbf S_B)\mathbf y + \mathbf r_B`. The part
proportional to :math:`\mathbf y` drives ``S``; it never reads the residuals, so ``S`` (and every
effective-parameter count) is the same whichever offset drives ``c``:

* ``c_closed_loop`` (the *closed-loop* reading, Eq. 7 onward): :math:`\mathbf r_B = -\mathbf c_B`,
  the telescoping model's own residuals :math:`\mathbf y - \tilde{\mathbf f}_{t-1}`;
* ``c_realised`` (the *realised* reading): :math:`\mathbf r_B = \mathbf S_B\mathbf y -
  \mathbf f_{\theta_{t-1}}(X_B)`, the network's residuals (Eq. 6). Then
  :math:`\mathbf S\mathbf y + \mathbf c_{realised}` equals the realised-step telescoping model of
  :mod:`lensbox.engine.telescoping` exactly; this column reads the labels.

Their predictions :math:`\mathbf S\mathbf y + \mathbf c` are recorded as ``closed_loop`` and
``realised``; the *gap* of a reading is its prediction minus the network's
(:meth:`SmootherRun.gap`, :class:`lensbox.complexity.faithfulness.Gap`).

**Each step.** The negative-gradient direction of the batch, written in parameter space as a
``p x (n + 2)`` matrix, is :math:`\mathbf u = -\mathbf J_B^\top \mathbf V / |B|` with
:math:`\mathbf V = [\mathbf E_B - \mathbf S_B \mid \mathbf r_B \mid \mathbf r^{net}_B]`. The
optimiser's own pieces (:mod:`lensbox.engine.transforms`: decay, momentum trace, bias correction,
:math:`\mathrm{diag}(1/\phi_t)`, learning rate) map it to :math:`\Delta\theta_t` in the same
representation, carrying their momentum traces as ``p x (n + 2)`` matrices and reading
:math:`\theta_{t-1} = \mathbf D_t [\mathbf y; 1; 1]` (:math:`\mathbf D_1 = [\mathbf 0 \mid
\theta_0 \mid \theta_0]`) where they decay the weights. This is the consistent form of Eqs. 16-21
(the book's *Optimisers* chapter derives it): :math:`\Delta\tilde f_t(x) = \nabla f_{\theta_{t-1}}(x)^\top\Delta\theta_t`,
:math:`\mathbf D_{t+1} = \mathbf D_t + \Delta\theta_t`. :math:`\phi_t` is read from the real
optimiser state, as in the paper. One GEMM :math:`p\times|B|\times(n+2)` and one
:math:`R\times p\times(n+2)` per step, Jacobian rows built in chunks.

When every piece is memoryless and ignores the parameters (SGD and Adam without momentum or
decay: Eqs. 14, 17, 18), the step collapses to the kernel block
:math:`\Delta[\mathbf S|\mathbf c|\mathbf c_{net}] = \tfrac{\gamma_t}{|B|}
K^\phi_t(X_R, X_B)\,\mathbf V`, which is much cheaper.

The smoother is *adaptive*: the kernels and :math:`\phi_t` come from the real run and depend on
:math:`\mathbf y`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lensbox.engine import kernels as _kernels
from lensbox.engine import transforms as tx
from lensbox.engine.checks import as_matrix, as_targets
from lensbox.errors import ArgumentError, ShapeError
from lensbox.engine.models import Model
from lensbox.engine.optim import Optimizer, check_smoother_optimizer, preconditioner
from lensbox.engine.telescoping import telescoping_tracker
from lensbox.engine.training import (
    StepInfo,
    Tracker,
    TrainResult,
    predictions_tracker,
    train,
)

Params = Any
Apply = Callable[[Params, jax.Array], jax.Array]
KernelFn = Callable[[Params, jax.Array, jax.Array, Any], jax.Array]
# failure codes kept in the tracker state and checked on the host by check_record
NONFINITE, ROW_OUT_OF_RANGE = 1, 2


def effective_parameters(S_rows, n: int):
    r""":math:`p^0_{\hat s} = \frac{n}{|\mathcal I_0|}\sum_{j\in\mathcal I_0}\|\hat{\mathbf s}(x^0_j)\|_2^2`
    (paper section 4.1, after Curth, Jeffares & van der Schaar 2023).

    ``S_rows`` holds one smoother row :math:`\hat{\mathbf s}(x)` (length ``n``) per input. On the
    training rows this is :math:`\|\mathbf S\|_F^2` (``p_train``); an interpolating smoother
    (:math:`\mathbf S = \mathbf I`) has ``p_train = n``. Returns a float, or a traced scalar inside
    ``jit``; ``nan`` for an empty row set.

    Examples:
        On ``n = 4`` training rows: interpolating uses ``n`` parameters, the global mean one,
        and a k-nearest-neighbour smoother ``n / k``.

        >>> import numpy as np
        >>> import lensbox
        >>> n = 4
        >>> lensbox.effective_parameters(np.eye(n), n)
        4.0
        >>> lensbox.effective_parameters(np.full((n, n), 1 / n), n)
        1.0
        >>> x, k = np.arange(n, dtype=float), 2
        >>> distance = np.abs(x[:, None] - x[None, :])
        >>> nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]  # k nearest per row
        >>> S = np.zeros((n, n))
        >>> np.put_along_axis(S, nearest, 1 / k, axis=1)
        >>> lensbox.effective_parameters(S, n)
        2.0
    """
    if isinstance(S_rows, jax.core.Tracer):
        rows = S_rows.shape[0]
        return jnp.nan if rows == 0 else n / rows * jnp.sum(S_rows * S_rows)
    S = np.asarray(S_rows, dtype=float)
    if S.ndim != 2:
        raise ArgumentError(
            f"S_rows must be a 2-D array (rows x n); got shape {S.shape}."
        )
    if S.shape[1] != n:
        raise ArgumentError(
            f"S_rows has {S.shape[1]} columns but n = {n} training labels."
        )
    return float("nan") if S.shape[0] == 0 else float(n / S.shape[0] * np.sum(S * S))


def tracked_rows(X_train, y_train, X_eval) -> tuple[jax.Array, jax.Array, int]:
    """Validated ``(X_R, y, n)``: the training rows then the evaluation rows (``X_eval=None``: none)."""
    X_train = as_matrix(X_train, "X_train")
    n, d = X_train.shape
    if n == 0:
        raise ArgumentError("X_train must have at least one row; got 0.")
    y = as_targets(y_train, "y_train", n_rows=n)
    if X_eval is None:
        X_eval = np.zeros((0, d))
    if np.ndim(X_eval) != 2 or np.shape(X_eval)[1] != d:
        raise ArgumentError(
            f"X_eval must be a 2-D array with {d} features like X_train (or None for "
            f"the training rows only); got shape {np.shape(X_eval)}."
        )
    X_eval = as_matrix(X_eval, "X_eval") if np.shape(X_eval)[0] else jnp.asarray(X_eval)
    return jnp.concatenate([X_train, X_eval.astype(X_train.dtype)], axis=0), y, n


def _flatten_like(stats, params):
    """Each sub-tree of ``stats`` shaped like ``params`` (Adam's second moment) as a flat vector
    in the order of ``ravel_pytree(params)``, so it scales the rows of a ``p x columns`` matrix."""
    treedef = jax.tree_util.tree_structure(params)
    return jax.tree_util.tree_map(
        lambda s: ravel_pytree(s)[0],
        stats,
        is_leaf=lambda x: jax.tree_util.tree_structure(x) == treedef,
    )


def _residual_columns(coef, idx, y, f_B, n: int, basis, probes) -> jax.Array:
    r"""``V`` (|B| x (q + 2)): the batch residuals as coefficients of :math:`[\mathbf y; 1; 1]`,
    the label part in the columns of ``basis`` (``None``: the identity, q = n; else the ``probes``
    columns ``Z``, then ``y``, then any further label vectors, see :func:`probe_basis`)."""
    if basis is None:
        S_B = coef[idx, :n]
        first, Sy_B = jax.nn.one_hot(idx, n, dtype=coef.dtype) - S_B, S_B @ y
    else:
        q, k = basis.shape[1], probes
        first, Sy_B = (
            basis[idx] - coef[idx, :q],
            coef[idx, k],
        )  # (E_B - S_B) [Z | y | labels]
    q = first.shape[1]
    return jnp.concatenate(
        [
            first,  # E_B - S_B (times the basis): both offsets
            -coef[idx, q][:, None],  # closed loop: y - (S y + c)
            (Sy_B - f_B)[:, None],  # network: y - f
        ],
        axis=1,
    )


def probe_basis(y, probes: int, seed: int, labels=None) -> jax.Array:
    r"""``[Z | y | labels^T]`` (n x (probes + 1 + L)): ``probes`` Rademacher columns drawn from
    ``seed`` (:func:`numpy.random.default_rng`), then the labels ``y``, then the ``L`` further label
    vectors in the rows of ``labels`` (``None``: none). Tracking :math:`\mathbf S[\mathbf Z |
    \mathbf y]` instead of :math:`\mathbf S` keeps the prediction :math:`\mathbf S\mathbf y + c`
    exact and estimates each row's :math:`\|\hat{\mathbf s}(x)\|^2` without bias,
    :math:`\mathbb E[(\hat{\mathbf s}(x)\cdot\mathbf z)^2] = \|\hat{\mathbf s}(x)\|^2`
    (Hutchinson), because the recursion is linear in the label vector."""
    n = y.shape[0]
    Z = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, int(probes)))
    more = (
        jnp.zeros((n, 0), y.dtype) if labels is None else jnp.asarray(labels, y.dtype).T
    )
    return jnp.concatenate([jnp.asarray(Z, y.dtype), y[:, None], more], axis=1)


def _failure(state, dF, idx, t, n: int):
    """The first failure seen so far (code and step); 0 while all is well."""
    code = jnp.where(
        jnp.max(idx) >= n,
        ROW_OUT_OF_RANGE,
        jnp.where(jnp.all(jnp.isfinite(dF)), 0, NONFINITE),
    ).astype(jnp.int32)
    first = state["failure"] == 0
    return (
        jnp.where(first, code, state["failure"]),
        jnp.where(first & (code > 0), t.astype(jnp.int32), state["failed_at"]),
    )


def _check_spec(info: StepInfo, spec: tuple) -> None:
    """Trace-time check that the run's optimiser is the one the tracker was built for."""
    found = getattr(info.opt_state, "spec", None)
    if found != spec:
        raise ArgumentError(
            f"smoother: the tracker was built for the optimiser with pieces {list(spec)} but the run "
            f"uses {list(found) if found is not None else type(info.opt_state)}; build "
            "smoother_tracker with the optimiser you train with."
        )


def _kernel_route(model, method, kernel_fn, pieces, X_R):
    """Step for a diagonal chain (no momentum, no decay): one kernel block per step."""
    if kernel_fn is None:

        def kernel_fn(params, XR, XB, divisor):
            return _kernels.tangent_kernel(
                model, params, XR, XB, preconditioner=divisor, method=method
            )

    def step(state, info, V):
        scalar, divisor = tx.chain_scale(pieces, info.opt_state.stats, info.step)
        K = kernel_fn(info.params_prev, X_R, X_R[info.batch], divisor)
        return (
            K * (-scalar / info.batch.shape[0])
        ) @ V, state  # scale the smaller factor

    return step


def _parameter_route(model, method, pieces, X_R, rows_per_chunk):
    r"""Step carrying the pieces' states as ``p x (n + 2)`` matrices (Eqs. 16-21). The two
    Jacobian products, the batch gradient :math:`\mathbf J_B^\top\mathbf V` and the change
    :math:`\mathbf J(X_R)\,\Delta\theta_t` of the tracked rows, go through
    :func:`~lensbox.engine.kernels.factor_transpose_times` and
    :func:`~lensbox.engine.kernels.factor_times` on the structured route, from one
    :func:`~lensbox.engine.kernels.layer_factors` pass over the tracked rows (the batch's factors
    are its rows), and through Jacobian rows on the generic one; the tracked rows in chunks of
    ``rows_per_chunk``."""
    uses_params = any(p.uses_params for p in pieces)
    structured = method == "structured"

    def jac(params, X):
        return _kernels.jacobian_rows(model, params, X, method=method)

    def chunked(row, xs):
        return jax.lax.map(
            row, xs, batch_size=min(int(rows_per_chunk), max(X_R.shape[0], 1))
        )

    def step(state, info, V):
        V = V / -info.batch.shape[0]
        params = info.params_prev
        if structured:
            factors = _kernels.layer_factors(model, params, X_R)
            u = _kernels.factor_transpose_times(  # the gradient
                [(a[info.batch], d[info.batch]) for a, d in factors], V
            )
        else:
            u = jac(params, X_R[info.batch]).T @ V
        stats = _flatten_like(info.opt_state.stats, params)
        delta, traces, _ = tx.run_chain(
            pieces, u, state["traces"], stats, state.get("D"), info.step, observe=False
        )
        state = dict(state, traces=traces)
        if uses_params:
            state["D"] = state["D"] + delta
        if structured:
            one = lambda f: _kernels.factor_times(
                params, [(a[None], d[None]) for a, d in f], delta
            )[0]
            return chunked(one, factors), state
        return chunked(lambda x: jac(params, x[None])[0] @ delta, X_R), state

    return step


def _route_step(
    model, method, kernel_fn, pieces, X_R, columns, rows_per_chunk, parameter_space
):
    """The step of the route the optimiser's pieces need (:func:`_parameter_route` or
    :func:`_kernel_route`) for ``columns`` tracked columns; ``rows_per_chunk=None`` chooses it
    (:func:`_rows_within` on the structured route, 256 on the generic one)."""
    if not parameter_space:
        return _kernel_route(model, method, kernel_fn, pieces, X_R)
    if rows_per_chunk is None:
        rows_per_chunk = (
            _rows_within(2**25, (X_R.shape[1], *model.spec.widths, 1), columns)
            if method == "structured"
            else 256
        )
    return _parameter_route(model, method, pieces, X_R, rows_per_chunk)


def _rows_within(entries: int, sizes: Sequence[int], columns: int) -> int:
    """Tracked rows per chunk so that no layer's intermediate in
    :func:`~lensbox.engine.kernels.factor_times` exceeds ``entries``: per row, the layer's
    Jacobian block (fan_in x fan_out) or min(fan_in, fan_out) x columns, whichever it takes (the
    smaller); ``sizes`` are the layer sizes, input to output."""
    widest = max(
        min(a, b) * min(max(a, b), columns) for a, b in zip(sizes[:-1], sizes[1:])
    )
    return max(1, entries // widest)


def _init_state(apply, pieces, X_R, q, parameter_space):
    def init(params):
        f0 = apply(params, X_R)
        coef = jnp.concatenate(
            [jnp.zeros((X_R.shape[0], q), f0.dtype), f0[:, None], f0[:, None]], 1
        )
        state = {
            "coef": coef,
            "failure": jnp.zeros((), jnp.int32),
            "failed_at": jnp.zeros((), jnp.int32),
        }
        if parameter_space:
            theta0 = ravel_pytree(params)[0].astype(f0.dtype)
            D = jnp.concatenate(
                [
                    jnp.zeros((theta0.shape[0], q), f0.dtype),
                    theta0[:, None],
                    theta0[:, None],
                ],
                axis=1,
            )
            state["traces"] = tuple(p.init(D) for p in pieces)
            if any(p.uses_params for p in pieces):
                state["D"] = D
        return state

    return init


def _update(step, apply, spec: tuple, X_R, y, n: int, basis, probes):
    """One smoother step: residual columns, the route's ``step``, the failure flags."""

    def update(state, info: StepInfo):
        _check_spec(info, spec)
        f_B = apply(info.params_prev, X_R[info.batch])
        dF, state = step(
            state,
            info,
            _residual_columns(state["coef"], info.batch, y, f_B, n, basis, probes),
        )
        failure, failed_at = _failure(state, dF, info.batch, info.step, n)
        return dict(
            state, coef=state["coef"] + dF, failure=failure, failed_at=failed_at
        )

    return update


def _readings(state, Sy, q: int, one_label: bool) -> dict:
    """The record fields both routes share: the closed-loop offset (column ``q`` of the state),
    the failure flags and, when the run has ``one_label`` vector (``y``), each reading's
    prediction ``S y + c`` and the realised offset (column ``q + 1``), which are built from ``y``
    and hold for no other label vector."""
    coef = state["coef"]
    out = {
        "c_closed_loop": coef[:, q],
        "nonfinite": state["failure"] == NONFINITE,
        "failure": state["failure"],
        "failed_at": state["failed_at"],
    }
    if one_label:
        out.update(
            closed_loop=Sy + coef[:, q],
            realised=Sy + coef[:, q + 1],
            c_realised=coef[:, q + 1],
        )
    return out


def _probe_record(n: int, k: int, q: int, one_label: bool):
    """The record of the probe route: ``p`` as the mean of the k probes' estimates, with its
    standard error, the tracked label columns ``SY`` (rows x (q - k): ``S y`` first) and the
    exact prediction from its first column."""

    def p_and_se(W):
        if W.shape[0] == 0:
            nan = jnp.asarray(jnp.nan, W.dtype)
            return nan, nan
        each = n / W.shape[0] * jnp.sum(W * W, axis=0)  # one estimate of p per probe
        return jnp.mean(each), jnp.std(each, ddof=1) / jnp.sqrt(k)

    def record(state, params):
        coef = state["coef"]
        W, SY = coef[:, :k], coef[:, k:q]
        p_train, p_train_se = p_and_se(W[:n])
        p_test, p_test_se = p_and_se(W[n:])
        return {
            "p_train": p_train,
            "p_test": p_test,
            "p_train_se": p_train_se,
            "p_test_se": p_test_se,
            "SY": SY,
            **_readings(state, SY[:, 0], q, one_label),
        }

    return record


def _record(y, n: int, record_weights: bool, one_label: bool):
    def record(state, params):
        coef = state["coef"]
        S, m = coef[:, :n], coef.shape[0] - n
        out = {
            "p_train": effective_parameters(S[:n], n),
            "p_test": effective_parameters(S[n:], n)
            if m
            else jnp.asarray(jnp.nan, S.dtype),
            **_readings(state, S @ y, n, one_label),
        }
        if record_weights:
            out["S"] = S
        return out

    return record


def smoother_tracker(
    model: Model | Apply,
    X_train,
    y_train,
    X_eval,
    optimizer: Optimizer,
    *,
    kernel_fn: KernelFn | None = None,
    record_weights: bool = False,
    loss: str = "squared",
    method: str = "auto",
    rows_per_chunk: int | None = None,
    probes: int | None = None,
    probe_seed: int = 0,
    labels=None,
) -> Tracker:
    r"""A :class:`~lensbox.engine.training.Tracker` running the smoother recursion with the run's optimiser.

    Rows are ``X_train`` (n) then ``X_eval`` (m). Train with the same ``X_train``, ``y_train`` and
    ``optimizer``, and squared loss: ``lensbox.train(model, params, opt, X, y, trackers={"smoother":
    smoother_tracker(model, X, y, X_test, opt)})``.

    Args:
        model: a :class:`~lensbox.engine.models.Model` or ``apply(params, X)``.
        X_train, y_train: the training rows and labels.
        X_eval: evaluation rows (may have zero rows, or be ``None`` for none).
        optimizer: the :mod:`lensbox.engine.optim` optimiser of the run (any chain of
            :mod:`lensbox.engine.transforms` pieces); training with another raises ``ValueError``.
        kernel_fn: optional ``(params, X_R, X_B, divisor) -> (R, B)`` replacing
            :func:`lensbox.engine.kernels.tangent_kernel`, ``divisor`` being ``None`` or Adam's
            :math:`\phi_t`. Only for optimisers without momentum or weight decay.
        record_weights: also record ``S`` (R x n) at each recording step.
        loss: must be ``"squared"``; the smoother exists only for squared loss (section 4.1).
        method: kernel and Jacobian route, as in :func:`~lensbox.engine.kernels.tangent_kernel`.
        rows_per_chunk: tracked rows taken at once by the parameter-space route (momentum, weight
            decay). ``None``: on the structured route, as many as keep each layer's intermediate
            (rows x min(fan_in, fan_out) x columns) under 2**25 entries; on the generic route, 256
            (rows x p Jacobian entries at once).
        probes: ``None`` (the default): the exact route, carrying all ``n`` columns of ``S``.
            An integer k >= 2: the probe route, carrying ``S [Z | y]`` for k Rademacher vectors
            ``Z`` (:func:`probe_basis`), k + 1 columns instead of n: the prediction stays exact
            and ``p_train``, ``p_test`` are unbiased estimates, recorded with their standard
            errors over the probes (``p_train_se``, ``p_test_se``). Every optimiser of the exact
            route is supported; ``record_weights`` is not (``S`` is never formed). Worth it when
            k + 1 is well below n: the cost of a step grows with the number of columns.
        probe_seed: seeds the probes (:func:`probe_basis`); the same seed, the same probes.
        labels: further label vectors (L, n) the run's seeds train on beside ``y_train`` (the
            per-seed labels of :func:`lensbox.complexity.faithfulness.smoother_fit`). ``S`` and
            ``c_closed_loop`` never read the labels, so one tracker serves every seed; the
            record then leaves out what is built from ``y_train`` alone (``closed_loop``,
            ``realised``, ``c_realised``). The probe route carries each ``S y_l`` exactly beside
            ``S y`` in ``SY`` (rows x (1 + L)); on the exact route record ``S`` to form them.

    Returns:
        A tracker whose ``record`` gives ``p_train``, ``p_test``, the two readings' predictions
        ``closed_loop`` (R,) = ``S y + c_closed_loop`` and ``realised`` = ``S y + c_realised``
        (the realised-step telescoping model) and their offsets ``c_closed_loop`` and
        ``c_realised`` (without ``labels``: with them only ``c_closed_loop``), ``failure`` (0, or 1 for a
        non-finite update, 2 for a batch row beyond ``X_train``), ``failed_at`` (its step),
        ``nonfinite`` and, with ``record_weights``, ``S``; the probe route adds ``p_train_se``,
        ``p_test_se`` and ``SY``. :func:`check_record` raises on failures.
    """
    if loss != "squared":
        raise ArgumentError(
            f"the smoother form exists for squared loss only (Eqs. 6-8); got loss={loss!r}. "
            "Use lensbox.telescope for other losses."
        )
    optimizer = check_smoother_optimizer(optimizer)
    pieces, spec = optimizer.pieces, optimizer.config.spec
    X_R, y, n = tracked_rows(X_train, y_train, X_eval)
    if labels is not None:
        labels = np.atleast_2d(np.asarray(labels, dtype=float))
        if labels.ndim != 2 or labels.shape[1] != n:
            raise ShapeError(
                f"labels must have shape (L, {n}), one row per label vector; got "
                f"{np.shape(labels)}."
            )
    one_label = labels is None or labels.shape[0] == 0
    basis = None
    if probes is not None:
        if not (isinstance(probes, (int, np.integer)) and probes >= 2):
            raise ArgumentError(
                f"probes must be None (exact) or an integer >= 2; got {probes!r}."
            )
        if record_weights:
            raise ArgumentError(
                "record_weights needs the exact route (probes=None): the probe route never "
                "forms S."
            )
        basis = probe_basis(y, int(probes), int(probe_seed), labels)
    q = n if basis is None else basis.shape[1]
    method, model = _kernels.route(model, method)
    apply = model.apply
    parameter_space = not tx.is_diagonal(pieces)
    if kernel_fn is not None and parameter_space:
        raise ArgumentError(
            "kernel_fn replaces the kernel block of the SGD/Adam recursion, but momentum "
            "and weight decay need the parameter-space smoother state (Jacobian rows); "
            "drop kernel_fn or use an optimiser without them."
        )
    step = _route_step(
        model, method, kernel_fn, pieces, X_R, q + 2, rows_per_chunk, parameter_space
    )
    return Tracker(
        _init_state(apply, pieces, X_R, q, parameter_space),
        _update(step, apply, spec, X_R, y, n, basis, probes),
        _record(y, n, record_weights, one_label)
        if basis is None
        else _probe_record(n, int(probes), q, one_label),
    )


def check_record(record: dict) -> None:
    """Raise the documented error if a smoother tracker's records show a failure.

    Raises:
        FloatingPointError: the tangent kernel or the smoother update became non-finite (naming the
            first such step).
        ValueError: a training batch used a row index beyond the smoother's ``X_train``.
    """
    failure = np.asarray(record["failure"]).ravel()
    bad = np.flatnonzero(failure)
    if bad.size == 0:
        return
    code, step = (
        int(failure[bad[0]]),
        int(np.asarray(record["failed_at"]).ravel()[bad[0]]),
    )
    if code == NONFINITE:
        raise FloatingPointError(
            f"smoother: the tangent kernel (or the update built from it) is non-finite at step {step}; "
            "check kernel_fn, the learning rate and the inputs."
        )
    raise ArgumentError(
        f"smoother: step {step} used a training row index beyond the smoother's X_train; "
        "train on the same X_train and y_train the smoother was given."
    )


@dataclass
class SmootherRun:
    """A training run seen through the smoother, the realised-step telescoping model and the network,
    on the same rows (training rows first, then evaluation rows).

    Attributes:
        record_steps: recorded steps (0 is the initialisation).
        n: number of training rows.
        closed_loop: the closed-loop reading :math:`\\mathbf s_t(x)\\mathbf y + c_t(x)`, its offset
            driven by the telescoping model's own residuals, shape (records, R).
        realised: the realised reading, its offset driven by the network's residuals; equals
            ``telescoping`` up to round-off.
        telescoping: the realised-step telescoping model :math:`\\tilde f_{\\theta_t}(x)` (Eq. 5 i).
        network: :math:`f_{\\theta_t}(x)`.
        p_train, p_test: effective parameters at each recorded step (the same for both offsets).
        S: smoother weights (records, R, n), when recorded.
        train: the :class:`~lensbox.engine.training.TrainResult`.
        p_train_se, p_test_se: the standard errors of ``p_train`` and ``p_test`` over the probes
            (probe route only; ``None`` for the exact route).
    """

    record_steps: np.ndarray
    n: int
    closed_loop: np.ndarray
    realised: np.ndarray
    telescoping: np.ndarray
    network: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    S: np.ndarray | None
    train: TrainResult
    p_train_se: np.ndarray | None = None
    p_test_se: np.ndarray | None = None

    def gap(self, rows: str = "eval", *, to: str = "telescoping") -> np.ndarray:
        """Mean absolute gap between the closed-loop reading and ``to`` (``"telescoping"``, the
        realised-step model, or ``"network"``), per recorded step, on ``rows`` = ``"train"``,
        ``"eval"`` or ``"all"``."""
        sl = {
            "train": slice(0, self.n),
            "eval": slice(self.n, None),
            "all": slice(None),
        }[rows]
        other = {"telescoping": self.telescoping, "network": self.network}[to]
        return np.mean(np.abs(self.closed_loop[:, sl] - other[:, sl]), axis=1)


def smooth(
    model: Model | Apply,
    params: Params,
    optimizer: Optimizer,
    X,
    y,
    X_eval=None,
    *,
    steps: int,
    record_at: Sequence[int] | None = None,
    record_weights: bool = False,
    loss: str = "squared",
    kernel_fn: KernelFn | None = None,
    method: str = "auto",
    probes: int | None = None,
    probe_seed: int = 0,
    **train_kwargs,
) -> SmootherRun:
    """Train with squared loss and track the smoother (both offsets), the telescoping model and the
    network on the rows ``X`` then ``X_eval`` (``None``: the training rows only). Takes the
    arguments of :func:`lensbox.train`; ``probes`` and ``probe_seed`` choose the exact or the probe
    route (:func:`smoother_tracker`).

    Raises:
        TypeError: for an optimiser that is not a lensbox optimiser (e.g. the string ``"sgd"``).
        ValueError: for a loss other than squared error or mismatched rows.
        FloatingPointError: if the kernel or the smoother update became non-finite (naming the step).

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> import lensbox
        >>> X = jnp.linspace(-1, 1, 16)[:, None]
        >>> y = jnp.sin(3 * X[:, 0])
        >>> X_test = jnp.linspace(-0.95, 0.95, 7)[:, None]
        >>> net = lensbox.mlp((32,))
        >>> params = net.init(jax.random.PRNGKey(0), 1)
        >>> run = lensbox.smooth(
        ...     net, params, lensbox.sgd(0.1), X, y, X_test,
        ...     steps=100, record_at=[0, 100], record_weights=True, progress=False,
        ... )
        >>> run.S.shape  # (records, training rows then test rows, n)
        (2, 23, 16)

        Before training the smoother uses no parameter (``S = 0``); trained, it uses some, but
        fewer than the ``n = 16`` of an interpolating smoother. Its realised reading (the offset
        driven by the network's residuals) reproduces the telescoping model.

        >>> float(run.p_train[0])
        0.0
        >>> bool(0 < run.p_train[-1] < len(X))
        True
        >>> bool(np.allclose(run.realised, run.telescoping, atol=1e-5))
        True
    """
    tracker = smoother_tracker(
        model,
        X,
        y,
        X_eval,
        optimizer,
        kernel_fn=kernel_fn,
        record_weights=record_weights,
        loss=loss,
        method=method,
        probes=probes,
        probe_seed=probe_seed,
    )
    X_R, _, n = tracked_rows(X, y, X_eval)
    apply = model.apply if isinstance(model, Model) else model
    trackers = {
        "smoother": tracker,
        "telescoping": telescoping_tracker(apply, X_R),
        "network": predictions_tracker(apply, X_R),
        **train_kwargs.pop("trackers", {}),
    }
    result = train(
        model,
        params,
        optimizer,
        X,
        y,
        steps=steps,
        loss="squared",
        trackers=trackers,
        record_at=record_at,
        **train_kwargs,
    )
    rec = result.records["smoother"]
    check_record(rec)
    return SmootherRun(
        result.record_steps,
        n,
        np.asarray(rec["closed_loop"]),
        np.asarray(rec["realised"]),
        np.asarray(result.records["telescoping"]),
        np.asarray(result.records["network"]),
        np.asarray(rec["p_train"]),
        np.asarray(rec["p_test"]),
        np.asarray(rec["S"]) if record_weights else None,
        result,
        np.asarray(rec["p_train_se"]) if probes is not None else None,
        np.asarray(rec["p_test_se"]) if probes is not None else None,
    )


# ----------------------------------------------------------------------------------------------
# When the recursion itself is unstable


def stability_limit(optimizer: Optimizer) -> float:
    r"""The largest step-scaled sharpness :math:`\lambda_t` (:func:`sharpness_tracker`) at which the
    smoother's linear recursion still shrinks every residual direction.

    On the training rows the recursion's part that drives ``S`` is linear in the residuals, with
    the kernel of the step frozen at its value in the real run. Along an eigen-direction of
    curvature :math:`h` it is the classical linear iteration of the optimiser on a quadratic,
    stable while :math:`\eta h` stays below

    * :math:`2` without momentum;
    * :math:`2(1+\beta)` with heavy-ball momentum :math:`\beta` (``v = beta v + g``);
    * :math:`2(1+\beta)/(1-\beta)` with the averaged momentum of Adam(W) and
      ``momentum_style="ema"`` (``m = beta m + (1 - beta) g``).

    Past the limit the sharpest direction of :math:`\mathbf I - \mathbf S` grows instead of
    shrinking: :math:`p` can exceed :math:`n` and the closed-loop reading leaves the network, while
    the network itself may stay stable (its nonlinear dynamics hold it at the edge; Adam's
    :math:`\phi_t` collapses once the training loss vanishes, which raises :math:`\lambda_t`).

    Examples:
        >>> import lensbox
        >>> from lensbox.engine.smoother import stability_limit
        >>> stability_limit(lensbox.sgd(0.1)), stability_limit(lensbox.sgd(0.1, momentum=0.5))
        (2.0, 3.0)
        >>> round(stability_limit(lensbox.adamw(1e-4)), 6)  # beta_1 = 0.9
        38.0
    """
    kind, beta, _ = _momentum_of(check_smoother_optimizer(optimizer))
    if kind == "heavy_ball":
        return 2.0 * (1.0 + beta)
    if kind == "ema":
        return 2.0 * (1.0 + beta) / (1.0 - beta)
    return 2.0


def _momentum_of(optimizer: Optimizer) -> tuple[str | None, float, bool]:
    """``(kind, beta, debiased)``: the optimiser's momentum piece (``heavy_ball``, ``ema`` or
    ``None``), its :math:`\\beta` and whether a bias correction follows it."""
    specs = {piece.spec[0]: piece.spec for piece in optimizer.config.pieces}
    for kind in ("heavy_ball", "ema"):
        if kind in specs:
            return kind, float(specs[kind][1]), "debias" in specs
    return None, 0.0, False


def sharpness_tracker(model: Model | Apply, X_train, optimizer: Optimizer) -> Tracker:
    r"""Records the step-scaled sharpness of the kernel that drives the smoother's recursion on the
    training rows, to compare with :func:`stability_limit`:

    .. math:: \lambda_t = \eta_t\,\lambda_{max}\Big(\tfrac1{|B_t|}\,\mathbf J_{t}\,
        \mathrm{diag}(1/\phi_t)\,\mathbf J_{t}^\top\Big),

    with :math:`\mathbf J_t` the Jacobian of the network on the rows of step ``t``'s batch
    :math:`B_t` (all ``n`` training rows at full batch) at :math:`\theta_{t-1}`, :math:`\phi_t`
    the optimiser's preconditioner after step ``t`` (1 without one) and :math:`\eta_t = \gamma_t`,
    divided by :math:`1-\beta^t` where a bias correction follows the momentum: the kernel the
    step's recursion applies to its batch's residuals. Weight decay is left out (it adds at most
    :math:`\gamma_t\lambda`).

    Each record is ``{"sharpness": lambda_t, "max_sharpness": the largest lambda so far}``. One
    batch-by-batch kernel (``n x n`` at full batch) and its top eigenvalue per step: use it on the
    training sets the exact smoother tracks, not on thousands of rows.
    """
    optimizer = check_smoother_optimizer(optimizer)
    X = as_matrix(X_train, "X_train")
    config = optimizer.config
    _, beta, debiased = _momentum_of(optimizer)

    def init(params):
        zero = jnp.zeros((), jnp.result_type(float))
        return {"sharpness": zero, "max_sharpness": zero}

    def update(state, info: StepInfo):
        phi = preconditioner(info.opt_state, config)
        X_batch = X[info.batch]
        K = _kernels.tangent_kernel(
            model, info.params_prev, X_batch, X_batch, preconditioner=phi
        )
        eta = info.learning_rate
        if debiased:
            eta = eta / (1.0 - beta ** info.step.astype(K.dtype))
        lam = eta * jnp.linalg.eigvalsh(K / X_batch.shape[0])[-1]
        return {
            "sharpness": lam,
            "max_sharpness": jnp.maximum(state["max_sharpness"], lam),
        }

    return Tracker(init, update, lambda state, params: state)


def growth_tracker(
    model: Model | Apply,
    X_train,
    optimizer: Optimizer,
    *,
    frozen_at: tuple[Params, Any] | None = None,
    method: str = "auto",
    seed: int = 0,
) -> Tracker:
    r"""Records how much the smoother's recursion has amplified a disturbance: the log of its
    growth, summed over the steps so far (its top Lyapunov exponent times the steps, once the
    disturbance has turned into the fastest-growing direction).

    ``S`` and the closed-loop offset follow an affine recursion on the training rows; the
    difference of two of its solutions follows the homogeneous part, the smoother's own step with
    the residual columns replaced by the disturbance's (:func:`smoother_tracker`'s step, with the
    real run's kernels, :math:`\phi_t` and batches). The tracker carries one such disturbance (a
    random column on the training rows, the pieces' traces and the decayed parameters of the
    parameter-space route), renormalised every step, and adds the log of each step's growth.
    A record that grows without bound means the closed loop drifts from the network whatever it
    starts from; :func:`sharpness_tracker` bounds single steps only.

    ``frozen_at=(params, opt_state)`` (for instance a :class:`~lensbox.engine.training.TrainState`'s
    first two fields) keeps the kernels and the optimiser's statistics at that point while the
    batches follow the run: the recursion of one frozen kernel switching between batches. Either
    part may be ``None``, and then follows the run: ``(params, None)`` freezes the Jacobians only,
    ``(None, opt_state)`` the optimiser's statistics (and the step count its bias correction and
    schedule read) only.
    """
    optimizer = check_smoother_optimizer(optimizer)
    pieces, spec = optimizer.pieces, optimizer.config.spec
    X = as_matrix(X_train, "X_train")
    n = X.shape[0]
    method, model = _kernels.route(model, method)
    parameter_space = not tx.is_diagonal(pieces)
    step = _route_step(model, method, None, pieces, X, 1, None, parameter_space)
    if frozen_at is not None:
        frozen_params, frozen_state = frozen_at[0], frozen_at[1]

    def init(params):
        dtype = ravel_pytree(params)[0].dtype
        s = jax.random.normal(jax.random.PRNGKey(seed), (n, 1), dtype)
        state = {"coef": s / jnp.linalg.norm(s), "log_growth": jnp.zeros((), dtype)}
        if parameter_space:
            zeros = jnp.zeros((ravel_pytree(params)[0].shape[0], 1), dtype)
            state["traces"] = tuple(p.init(zeros) for p in pieces)
            if any(p.uses_params for p in pieces):
                state["D"] = zeros
        return state

    def update(state, info: StepInfo):
        if frozen_at is not None and frozen_params is not None:
            info = info._replace(params_prev=frozen_params)
        if frozen_at is not None and frozen_state is not None:
            info = info._replace(
                opt_state=frozen_state, step=jnp.asarray(frozen_state.count)
            )
        _check_spec(info, spec)
        # the disturbance s of S's training rows: residual columns -s on the batch
        dF, new = step(state, info, -state["coef"][info.batch])
        new = dict(new, coef=state["coef"] + dF)
        moving = {k: new[k] for k in ("coef", "traces", "D") if k in new}
        norm = jnp.sqrt(
            sum(jnp.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(moving))
        )
        scaled = jax.tree_util.tree_map(lambda leaf: leaf / norm, moving)
        return dict(new, **scaled, log_growth=state["log_growth"] + jnp.log(norm))

    return Tracker(init, update, lambda state, params: state["log_growth"])
