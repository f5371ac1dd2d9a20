r"""The smoother form of the telescoping model for squared loss (Eqs. 6-8, 14-21) and effective
parameters (paper-notes 3.1).

With :math:`\ell = \tfrac12(y-f)^2` and the telescoping residuals :math:`\mathbf y - \tilde{\mathbf
f}_{t-1}` driving every update (Eq. 7), the prediction at any input is affine in the training labels,

.. math:: \tilde f_{\theta_t}(x) = \mathbf s_t(x)\,\mathbf y + c_t(x), \qquad \mathbf s_0 = \mathbf 0,\
    c_0(x) = f_{\theta_0}(x).

We track rows :math:`R` = the ``n`` training rows, then the ``m`` evaluation rows: ``S`` is
(n + m) x n and ``c`` has n + m entries, and all rows follow the same recursion.

**SGD and adaptive learning rates without momentum or decay** (Eqs. 14, 17, 18) need only the
kernel block between the tracked rows and the batch:

.. math:: \mathbf S_R \leftarrow \mathbf S_R + \tfrac{\gamma_t}{|B_t|} K_t(X_R, X_B)
    (\mathbf E_B - \mathbf S_B), \qquad
    \mathbf c_R \leftarrow \mathbf c_R - \tfrac{\gamma_t}{|B_t|} K_t(X_R, X_B)\,\mathbf c_B,

with :math:`K_t` preconditioned by :math:`\mathrm{diag}(1/\phi_t)` for Adam.

**Momentum, weight decay, Adam and AdamW** (the consistent Eqs. 19-21 of paper-notes 3.2) carry
parameter-space state, each quantity written as :math:`\mathbf A^S \mathbf y + \mathbf a^C`
(``p x n`` and ``p``). With :math:`\theta_{t-1} = \mathbf D^S_t\mathbf y + \mathbf D^C_t`
(:math:`\mathbf D^S_1 = \mathbf 0`, :math:`\mathbf D^C_1 = \theta_0`), the negative gradient
:math:`\mathbf G_t = \mathbf T_t(\mathbf I - \mathbf S_{t-1})\mathbf y - \mathbf T_t\mathbf c_{t-1}
- \lambda_c\theta_{t-1}` (coupled decay :math:`\lambda_c`), the momentum
:math:`\tilde{\mathbf U}_t = \beta\tilde{\mathbf U}_{t-1} + \mathbf G_t` (heavy ball) or
:math:`\beta\tilde{\mathbf U}_{t-1} + (1-\beta)\mathbf G_t` (EMA), the direction
:math:`\mathbf U_t = \mathrm{diag}(1/\phi_t)\tilde{\mathbf U}_t / (1-\beta^t)` (EMA; heavy ball has
neither divisor, SGD no :math:`\phi`) and the decoupled decay :math:`\lambda_d` of AdamW,

.. math:: \Delta\theta_t = \gamma_t(\mathbf U_t - \lambda_d \theta_{t-1}),\quad
    \Delta\tilde f_t(x) = \nabla f_{\theta_{t-1}}(x)^\top \Delta\theta_t,\quad
    \mathbf D_{t+1} = \mathbf D_t + \Delta\theta_t .

:math:`\phi_t` is read from the real optimiser state, as in the paper. Each step costs one GEMM
:math:`p \times |B| \times n` and one :math:`R \times p \times n`, with Jacobian rows built in chunks.

The smoother is *adaptive*: the kernels and :math:`\phi_t` come from the real run and depend on
:math:`\mathbf y`. It differs from the realised-step telescoping model of :mod:`lensbox.telescope`
at second order, because its residuals are the telescoping model's, not the network's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lensbox import kernels as _kernels
from lensbox._validation import as_matrix, as_targets
from lensbox.models import Model
from lensbox.optim import Optimizer, preconditioner
from lensbox.telescope import telescoping_tracker
from lensbox.train import StepInfo, Tracker, TrainResult, predictions_tracker, train

Params = Any
Apply = Callable[[Params, jax.Array], jax.Array]
KernelFn = Callable[[Params, jax.Array, jax.Array, Any], jax.Array]
SUPPORTED_OPTIMIZERS = ("sgd", "adam", "adamw")


def effective_parameters(S_rows, n: int):
    r""":math:`p^0_{\hat s} = \frac{n}{|\mathcal I_0|}\sum_{j\in\mathcal I_0}\|\hat{\mathbf s}(x^0_j)\|_2^2`
    (paper-notes 3.1, after Curth, Jeffares & van der Schaar 2023).

    ``S_rows`` holds one smoother row :math:`\hat{\mathbf s}(x)` (length ``n``) per input. On the
    training rows this is :math:`\|\mathbf S\|_F^2` (``p_train``); an interpolating smoother
    (:math:`\mathbf S = \mathbf I`) has ``p_train = n``. Returns a float, or a traced scalar inside
    ``jit``; ``nan`` for an empty row set.
    """
    if isinstance(S_rows, jax.core.Tracer):
        rows = S_rows.shape[0]
        return jnp.nan if rows == 0 else n / rows * jnp.sum(S_rows * S_rows)
    S = np.asarray(S_rows, dtype=float)
    if S.ndim != 2:
        raise ValueError(f"S_rows must be a 2-D array (rows x n); got shape {S.shape}.")
    if S.shape[1] != n:
        raise ValueError(f"S_rows has {S.shape[1]} columns but n = {n} training labels.")
    return float("nan") if S.shape[0] == 0 else float(n / S.shape[0] * np.sum(S * S))


def _raise_if_bad(code, step):
    if code == 1:
        raise FloatingPointError(
            f"smoother: the tangent kernel (or the update built from it) is non-finite at step "
            f"{int(step)}; check kernel_fn, the learning rate and the inputs.")
    if code == 2:
        raise ValueError(
            f"smoother: step {int(step)} used a training row index beyond the smoother's X_train; "
            "train on the same X_train and y_train the smoother was given.")


def _check_optimizer(optimizer) -> None:
    config = getattr(optimizer, "config", None)
    if not isinstance(optimizer, Optimizer) or getattr(config, "name", None) not in SUPPORTED_OPTIMIZERS:
        raise ValueError(
            "the smoother supports lensbox.optim optimisers (sgd with or without momentum, in "
            f"either style, and weight decay; adam; adamw); got {optimizer!r:.120}.")


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
    chunk: int = 256,
) -> Tracker:
    r"""A :class:`~lensbox.train.Tracker` running the smoother recursion for the optimiser used.

    Rows are ``X_train`` (n) then ``X_eval`` (m). Use it with the same ``X_train``, ``y_train`` and
    ``optimizer`` as the training run, and squared loss::

        tracker = smoother_tracker(model, X, y, X_test, opt)
        lensbox.train(model, params, opt, X, y, loss="squared", trackers={"smoother": tracker})

    Args:
        model: a :class:`~lensbox.models.Model` or ``apply(params, X)``.
        X_train, y_train: the training rows and labels.
        X_eval: evaluation rows (may have zero rows).
        optimizer: the :mod:`lensbox.optim` optimiser of the run.
        kernel_fn: optional ``(params, X_R, X_B, phi) -> (R, B)`` replacing
            :func:`lensbox.kernels.tangent_kernel` (e.g. a closed form). Only for optimisers without
            parameter-space state (no momentum, no weight decay).
        record_weights: also record ``S`` (R x n) at each recording step.
        loss: must be ``"squared"``; the smoother exists only for squared loss (section 4.1).
        method: kernel and Jacobian route, as in :func:`~lensbox.kernels.tangent_kernel`.
        chunk: rows per Jacobian chunk for the parameter-space route.

    Returns:
        A tracker whose ``record`` gives ``p_train``, ``p_test``, ``prediction`` (R,) =
        ``S y + c``, ``c`` (R,), ``nonfinite`` (bool) and, with ``record_weights``, ``S``.
    """
    if loss != "squared":
        raise ValueError(f"the smoother form exists for squared loss only (Eqs. 6-8); got loss={loss!r}. "
                         "Use lensbox.telescope for other losses.")
    _check_optimizer(optimizer)
    X_train = as_matrix(X_train, "X_train")
    n, d = X_train.shape
    y = as_targets(y_train, "y_train", n_rows=n)
    X_eval = jnp.zeros((0, d), X_train.dtype) if X_eval is None else X_eval
    if np.ndim(X_eval) != 2 or np.shape(X_eval)[1] != d:
        raise ValueError(f"X_eval must be a 2-D array with {d} features like X_train; got shape "
                         f"{np.shape(X_eval)}.")
    X_eval = as_matrix(X_eval, "X_eval") if np.shape(X_eval)[0] else jnp.asarray(X_eval)
    X_R = jnp.concatenate([X_train, X_eval.astype(X_train.dtype)], axis=0)
    R, m = X_R.shape[0], X_R.shape[0] - n
    method, apply = _kernels._resolve(model, method)
    config = optimizer.config
    beta = config.momentum
    heavy_ball = config.name == "sgd" and config.momentum_style == "heavy_ball"
    lam_c = 0.0 if config.decoupled else config.weight_decay
    lam_d = config.weight_decay if config.decoupled else 0.0
    parameter_space = beta > 0 or config.weight_decay > 0
    if kernel_fn is not None and parameter_space:
        raise ValueError("kernel_fn replaces the kernel block of the SGD/Adam recursion, but momentum "
                         "and weight decay need the parameter-space smoother state (Jacobian rows); "
                         "drop kernel_fn or use an optimiser without them.")
    if kernel_fn is None:
        def kernel_fn(params, XR, XB, phi):
            return _kernels.tangent_kernel(model, params, XR, XB, preconditioner=phi, method=method)

    def jac(params, X):
        return _kernels.jacobian_rows(model, params, X, method=method)

    def jac_times(params, X, M):
        # J(X) @ M in row chunks, so the (R x p) Jacobian is never whole in memory.
        row = lambda x: jac(params, x[None])[0] @ M
        return jax.lax.map(row, X, batch_size=min(int(chunk), max(X.shape[0], 1)))

    def init(params):
        f0 = apply(params, X_R)
        state = {"S": jnp.zeros((R, n), f0.dtype), "c": f0, "bad": jnp.zeros((), jnp.int32)}
        if parameter_space:
            theta0 = ravel_pytree(params)[0]
            p = theta0.shape[0]
            if beta > 0:
                state["MS"], state["MC"] = jnp.zeros((p, n), f0.dtype), jnp.zeros((p,), f0.dtype)
            if config.weight_decay > 0:
                state["DS"], state["DC"] = jnp.zeros((p, n), f0.dtype), theta0
        return state

    def update(state, info: StepInfo):
        S, c, idx, gamma = state["S"], state["c"], info.batch, info.learning_rate
        size = idx.shape[0]
        VS = jax.nn.one_hot(idx, n, dtype=S.dtype) - S[idx]  # (E_B - S_B): residual weights on y
        VC = -c[idx]
        phi = preconditioner(info.opt_state, config)
        new = dict(state)
        if not parameter_space:
            K = kernel_fn(info.params_prev, X_R, X_R[idx], phi) * (gamma / size)
            dS, dc = K @ VS, K @ VC
        else:
            JB = jac(info.params_prev, X_R[idx]) / size  # rows of T_t^T
            GS, GC = JB.T @ VS, JB.T @ VC
            if lam_c > 0:
                GS, GC = GS - lam_c * state["DS"], GC - lam_c * state["DC"]
            if beta > 0:
                mix = 1.0 if heavy_ball else 1.0 - beta
                new["MS"] = beta * state["MS"] + mix * GS
                new["MC"] = beta * state["MC"] + mix * GC
                correction = 1.0 if heavy_ball else 1.0 - beta ** info.step.astype(S.dtype)
                US, UC = new["MS"] / correction, new["MC"] / correction
            else:
                US, UC = GS, GC
            if phi is not None:
                inv = 1.0 / ravel_pytree(phi)[0]
                US, UC = US * inv[:, None], UC * inv
            if lam_d > 0:
                US, UC = US - lam_d * state["DS"], UC - lam_d * state["DC"]
            stepS, stepC = gamma * US, gamma * UC
            if config.weight_decay > 0:
                new["DS"], new["DC"] = state["DS"] + stepS, state["DC"] + stepC
            both = jac_times(info.params_prev, X_R, jnp.concatenate([stepS, stepC[:, None]], axis=1))
            dS, dc = both[:, :n], both[:, n]
        finite = jnp.all(jnp.isfinite(dS)) & jnp.all(jnp.isfinite(dc))
        code = jnp.where(jnp.max(idx) >= n, 2, jnp.where(finite, 0, 1)).astype(jnp.int32)
        jax.lax.cond(code > 0, lambda: jax.debug.callback(_raise_if_bad, code, info.step),
                     lambda: None)
        new["S"], new["c"] = S + dS, c + dc
        new["bad"] = jnp.maximum(state["bad"], code)
        return new

    def record(state, params):
        S, c = state["S"], state["c"]
        out = {
            "p_train": effective_parameters(S[:n], n),
            "p_test": effective_parameters(S[n:], n) if m else jnp.asarray(jnp.nan, S.dtype),
            "prediction": S @ y + c,
            "c": c,
            "nonfinite": state["bad"] > 0,
        }
        if record_weights:
            out["S"] = S
        return out

    return Tracker(init, update, record)


@dataclass
class SmootherRun:
    """A training run seen through the smoother, the realised-step telescoping model and the network,
    on the same rows (training rows first, then evaluation rows).

    Attributes:
        steps: recorded steps (0 is the initialisation).
        n: number of training rows.
        smoother: :math:`\\mathbf s_t(x)\\mathbf y + c_t(x)`, shape (records, R).
        telescoping: the realised-step telescoping model :math:`\\tilde f_{\\theta_t}(x)` (Eq. 5 i).
        network: :math:`f_{\\theta_t}(x)`.
        p_train, p_test: effective parameters at each recorded step.
        S: smoother weights (records, R, n), when recorded.
        train: the :class:`~lensbox.train.TrainResult`.
    """

    steps: np.ndarray
    n: int
    smoother: np.ndarray
    telescoping: np.ndarray
    network: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    S: np.ndarray | None
    train: TrainResult

    def gap(self, rows: str = "eval") -> np.ndarray:
        """Mean absolute gap between the smoother and the realised-step telescoping model, per
        recorded step, on ``rows`` = ``"train"``, ``"eval"`` or ``"all"``."""
        sl = {"train": slice(0, self.n), "eval": slice(self.n, None), "all": slice(None)}[rows]
        return np.mean(np.abs(self.smoother[:, sl] - self.telescoping[:, sl]), axis=1)


def smooth(
    model: Model | Apply,
    params: Params,
    optimizer: Optimizer,
    X,
    y,
    X_eval,
    *,
    steps: int,
    record_at: Sequence[int] | None = None,
    record_weights: bool = False,
    loss: str = "squared",
    kernel_fn: KernelFn | None = None,
    method: str = "auto",
    **train_kwargs,
) -> SmootherRun:
    """Train with squared loss and track the smoother, the telescoping model and the network on the
    rows ``X`` then ``X_eval``. Takes the arguments of :func:`lensbox.train.train`.

    Raises:
        ValueError: for a loss other than squared error, an unsupported optimiser or mismatched rows.
        FloatingPointError: if the kernel or the smoother update became non-finite.
    """
    tracker = smoother_tracker(model, X, y, X_eval, optimizer, kernel_fn=kernel_fn,
                               record_weights=record_weights, loss=loss, method=method)
    X_R = jnp.concatenate([jnp.asarray(X), jnp.asarray(X_eval, dtype=jnp.asarray(X).dtype)], axis=0)
    apply = model.apply if isinstance(model, Model) else model
    trackers = {"smoother": tracker, "telescoping": telescoping_tracker(apply, X_R),
                "network": predictions_tracker(apply, X_R), **train_kwargs.pop("trackers", {})}
    result = train(model, params, optimizer, X, y, steps=steps, loss="squared", trackers=trackers,
                   record_at=record_at, **train_kwargs)
    rec = result.records["smoother"]
    if np.any(rec["nonfinite"]):
        raise FloatingPointError("smoother: the tangent kernel or the smoother update became "
                                 "non-finite during training.")
    return SmootherRun(result.record_steps, int(np.shape(X)[0]), np.asarray(rec["prediction"]),
                       np.asarray(result.records["telescoping"]), np.asarray(result.records["network"]),
                       np.asarray(rec["p_train"]), np.asarray(rec["p_test"]),
                       np.asarray(rec["S"]) if record_weights else None, result)
