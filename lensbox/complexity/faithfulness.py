r"""Does the smoother describe the network? Two readings of one smoother, and a stated bound.

For squared loss the telescoping model is a smoother :math:`\tilde f(x) = \hat{\mathbf s}(x)\mathbf y
+ c(x)` (Eqs. 6-8, 14-21), and the effective parameters :math:`p^0_{\hat s}` come from
:math:`\hat{\mathbf s}` alone. The recursion for :math:`\hat{\mathbf s}` never reads a residual
(paper Eqs. 6-8 and App. B.1; the book's *Smoothers* chapter), so the offset :math:`c` can be driven in two ways without changing
:math:`\hat{\mathbf s}` or :math:`p`:

* **closed loop** (the paper's Eq. 7): by the smoother's own residuals
  :math:`\mathbf y - \tilde{\mathbf f}_{t-1}`; its prediction :math:`\hat{\mathbf s}\mathbf y + c`
  is a model in its own right and may drift from the network;
* **realised**: by the network's residuals; then :math:`\hat{\mathbf s}\mathbf y + c` is exactly the
  realised-step telescoping model :math:`\tilde f` of Eq. 5, which
  :func:`lensbox.telescoping_tracker` accumulates.

:func:`smoother_fit` trains seeds side by side (:func:`lensbox.engine.seeds.tracked_seeds`) and
reads the network's errors and the closed-loop smoother at the end of training;
:func:`faithful_fit` does the same and
measures both gaps to the network, :math:`|\hat{\mathbf s}\mathbf y + c - f|` and
:math:`|\tilde f - f|`. :func:`is_faithful` applies the book's bound, fixed before any run from one
principle: the smoother describes the network when it differs from the network by at most a tenth
of the network's own test error (root mean square), i.e. its mean squared gap is at most
``fraction = 0.01`` of the network's test MSE. Then the smoother's test MSE lies within about
:math:`\pm 20\,\%` of the network's, by the triangle inequality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from lensbox.engine.models import Model, Params
from lensbox.engine.optim import Optimizer
from lensbox.engine.seeds import SeedRuns, StoppingRule, tracked_seeds
from lensbox.engine.smoother import check_record, effective_parameters
from lensbox.errors import ArgumentError

#: The bound's principle: mean squared gap at most this fraction of the network's test MSE.
FRACTION = 0.01


@dataclass
class SmootherFit:
    """One model trained over several seeds, seen through the network and the smoother at the end.

    Every array has a leading seed axis. Errors are mean squared errors against the labels the
    model was trained on (``train_*``, noisy ones included) and the clean test labels (``test_*``);
    ``*_error`` are misclassification rates at the threshold 0.5.

    Attributes:
        stop_steps, reasons: stopping step and reason per seed (see :class:`StoppingRule`).
        train_mse, test_mse, train_error, test_error: the network's errors at the end.
        p_train, p_test: effective parameters :math:`p^{train}_{\\hat s}`, :math:`p^{test}_{\\hat s}`
            of the smoother at the end (``nan`` without the smoother).
        drift: largest :math:`|\\mathbf s(x)\\mathbf y + c(x) - f_\\theta(x)|` over training and test
            rows at the end: how far the smoother's prediction strayed from the network's.
        mean_drift: the same gap averaged over the training and test rows.
        smoother_test_mse: test MSE of the smoother's own prediction.
        S_test: the smoother weights :math:`\\hat{\\mathbf s}(x)` of the test rows (seeds, m, n),
            when asked for.
        runs: the underlying :class:`SeedRuns`.
        p_train_se, p_test_se: standard errors of ``p_train``, ``p_test`` over the probes (the
            probe route, ``probes=k``; ``None`` on the exact route).
    """

    stop_steps: np.ndarray
    reasons: list[str]
    train_mse: np.ndarray
    test_mse: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    drift: np.ndarray
    mean_drift: np.ndarray
    smoother_test_mse: np.ndarray
    S_test: np.ndarray | None
    runs: SeedRuns = field(repr=False)
    p_train_se: np.ndarray | None = None
    p_test_se: np.ndarray | None = None


class _SmootherSummary(NamedTuple):
    p_train: np.ndarray
    p_test: np.ndarray
    drift: np.ndarray  # largest |S y + c - f| per seed
    mean_drift: np.ndarray  # mean |S y + c - f| per seed
    gap_mse: np.ndarray  # mean (S y + c - f)^2 per seed
    smoother_test_mse: np.ndarray
    S: np.ndarray | None  # None on the probe route
    p_train_se: np.ndarray | None
    p_test_se: np.ndarray | None


def _smoother_summary(rec, Y, f, y_test) -> _SmootherSummary:
    """Effective parameters, gap to the network and test error of each seed's closed-loop
    smoother at the end of training (shared by :func:`smoother_fit` and
    :func:`faithful_fit`)."""
    check_record(rec)
    n = Y.shape[1]
    c = np.asarray(rec["c"], dtype=float)
    if "S" in rec:  # the exact route
        S = np.asarray(rec["S"], dtype=float)
        pred = np.einsum("srn,sn->sr", S, Y) + c
        p_train = np.array([effective_parameters(S_s[:n], n) for S_s in S])
        p_test = np.array([effective_parameters(S_s[n:], n) for S_s in S])
        se = (None, None)
    else:  # the probe route: seed s's labels are column s of SY (column 0 if shared)
        SY = np.asarray(rec["SY"], dtype=float)
        cols = np.arange(len(SY)) if SY.shape[2] > 1 else np.zeros(len(SY), int)
        pred = SY[np.arange(len(SY)), :, cols] + c
        p_train, p_test, S = (
            np.asarray(rec["p_train"], float),
            np.asarray(rec["p_test"], float),
            None,
        )
        se = (
            np.asarray(rec["p_train_se"], float),
            np.asarray(rec["p_test_se"], float),
        )
    gap = pred - f
    return _SmootherSummary(
        p_train=p_train,
        p_test=p_test,
        drift=np.abs(gap).max(axis=1),
        mean_drift=np.abs(gap).mean(axis=1),
        gap_mse=np.mean(gap**2, axis=1),
        smoother_test_mse=np.mean((pred[:, n:] - y_test) ** 2, axis=1),
        S=S,
        p_train_se=se[0],
        p_test_se=se[1],
    )


def _network_errors(f, Y, y_test) -> dict[str, np.ndarray]:
    """Each seed's mean squared errors and misclassification rates at 0.5 (training: against
    the labels trained on; test: the clean labels)."""
    n = Y.shape[1]
    f_train, f_test = f[:, :n], f[:, n:]
    return {
        "train_mse": np.mean((f_train - Y) ** 2, axis=1),
        "test_mse": np.mean((f_test - y_test) ** 2, axis=1),
        "train_error": np.mean((f_train > 0.5) != (Y > 0.5), axis=1),
        "test_error": np.mean((f_test > 0.5) != (y_test > 0.5), axis=1),
    }


def smoother_fit(
    model: Model,
    params: Params,
    optimizer: Optimizer,
    X_train,
    Y_train,
    X_test,
    y_test,
    *,
    rule: StoppingRule,
    smoother: bool = True,
    record_weights: bool = False,
    batch_size: int | None = None,
    record_at: Sequence[int] | None = None,
    seed: int = 0,
    probes: int | None = None,
    probe_seed: int = 0,
) -> SmootherFit:
    r"""Train the seeds in ``params`` with squared loss under ``rule`` and summarise the end of
    training: the network's errors and, with ``smoother=True``, the telescoping smoother
    :math:`\tilde f(x) = \hat{\mathbf s}(x)\mathbf y + c(x)` (Eqs. 6-8 and 14-21, for the optimiser
    used) with its effective parameters

    .. math:: p^0_{\hat s} = \frac{n}{|\mathcal I_0|}\sum_{j\in\mathcal I_0}\|\hat{\mathbf s}(x^0_j)\|^2

    on the training rows and on the test rows (section 4.1, Eq. 8; the *Smoothers* chapter).

    Args:
        model: the network.
        params: :math:`\theta_0` with a leading seed axis (see :func:`init_seeds`).
        optimizer: from :mod:`lensbox.engine.optim`.
        X_train, Y_train: training inputs (n, d) and each seed's labels (seeds, n) or shared (n,).
        X_test, y_test: test inputs (m, d) and clean labels (m,).
        rule: the :class:`StoppingRule`.
        smoother: track the smoother (costly: one tangent-kernel block per step).
        record_weights: keep the test rows' smoother weights (``S_test``); exact route only.
        batch_size, record_at, seed: as in :func:`train_seeds`.
        probes, probe_seed: ``None`` for the exact smoother; k for the probe route, whose ``p``
            are estimates from k random probes with standard errors ``p_*_se``
            (:func:`lensbox.engine.smoother.smoother_tracker`).

    Returns:
        A :class:`SmootherFit`.
    """
    if record_weights and probes is not None:
        raise ArgumentError(
            "record_weights needs the exact smoother (probes=None): the probe route never "
            "forms the weights."
        )
    runs, Y, f, y_test = tracked_seeds(
        model,
        params,
        optimizer,
        X_train,
        Y_train,
        X_test,
        y_test,
        rule=rule,
        smoother=smoother,
        batch_size=batch_size,
        record_at=record_at,
        seed=seed,
        probes=probes,
        probe_seed=probe_seed,
    )
    n_seeds, n = Y.shape
    nan = np.full(n_seeds, np.nan)
    p_train = p_test = drift = mean_drift = smoother_mse = nan
    S_test = se = None
    if smoother:
        summary = _smoother_summary(runs.final["smoother"], Y, f, y_test)
        p_train, p_test = summary.p_train, summary.p_test
        drift, mean_drift = summary.drift, summary.mean_drift
        smoother_mse = summary.smoother_test_mse
        S_test = summary.S[:, n:] if record_weights else None
        se = summary.p_train_se, summary.p_test_se
    return SmootherFit(
        stop_steps=runs.stop_steps,
        reasons=runs.reasons,
        **_network_errors(f, Y, y_test),
        p_train=p_train,
        p_test=p_test,
        drift=drift,
        mean_drift=mean_drift,
        smoother_test_mse=smoother_mse,
        S_test=S_test,
        runs=runs,
        p_train_se=None if se is None else se[0],
        p_test_se=None if se is None else se[1],
    )


@dataclass
class FaithfulFit:
    """Seeds trained under a stopping rule, with the network, both readings of the smoother and
    their gaps, read where each seed stopped. Every array has a leading seed axis; gaps are over
    the training and test rows together.

    Attributes:
        stop_steps: stopping step per seed.
        train_error, test_error: misclassification rates at 0.5 (training: against the labels
            trained on, noisy ones included).
        train_mse, test_mse: the network's mean squared errors (test: clean labels).
        p_train, p_test: effective parameters of :math:`\\hat{\\mathbf s}`.
        closed_loop, realised: mean squared gap of :math:`\\hat{\\mathbf s}\\mathbf y + c` (closed
            loop) and of :math:`\\tilde f` (realised) to the network.
        closed_loop_abs, realised_abs: the same as mean absolute gaps.
        S_test: smoother weights of the test rows (seeds, m, n); ``None`` on the probe route.
        runs: the :class:`~lensbox.engine.seeds.SeedRuns`.
        p_train_se, p_test_se: standard errors of ``p_train``, ``p_test`` over the probes
            (``None`` on the exact route).
    """

    stop_steps: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    closed_loop: np.ndarray
    realised: np.ndarray
    closed_loop_abs: np.ndarray
    realised_abs: np.ndarray
    S_test: np.ndarray | None
    runs: SeedRuns = field(repr=False)
    p_train_se: np.ndarray | None = None
    p_test_se: np.ndarray | None = None


def faithful_fit(
    model: Model,
    params,
    optimizer: Optimizer,
    X_train,
    Y_train,
    X_test,
    y_test,
    *,
    rule: StoppingRule,
    batch_size: int | None = None,
    seed: int = 0,
    probes: int | None = None,
    probe_seed: int = 0,
) -> FaithfulFit:
    """Train the seeds in ``params`` (leading seed axis) with squared loss under ``rule``, tracking
    the smoother (closed loop) and the realised-step telescoping model on the training and test
    rows; see the module docstring.

    Args:
        model, params, optimizer: as in :func:`smoother_fit`.
        X_train, Y_train: (n, d) inputs and each seed's labels (S, n), or shared labels (n,).
        X_test, y_test: (m, d) test inputs and clean labels (m,).
        rule, batch_size, seed: as in :func:`lensbox.engine.seeds.train_seeds`.
        probes, probe_seed: as in :func:`smoother_fit`.
    """
    runs, Y, f, y_test = tracked_seeds(
        model,
        params,
        optimizer,
        X_train,
        Y_train,
        X_test,
        y_test,
        rule=rule,
        telescoping=True,
        batch_size=batch_size,
        seed=seed,
        probes=probes,
        probe_seed=probe_seed,
    )
    n = Y.shape[1]
    summary = _smoother_summary(runs.final["smoother"], Y, f, y_test)
    realised = np.asarray(runs.final["telescoping"], dtype=float) - f
    return FaithfulFit(
        stop_steps=runs.stop_steps,
        **_network_errors(f, Y, y_test),
        p_train=summary.p_train,
        p_test=summary.p_test,
        closed_loop=summary.gap_mse,
        realised=np.mean(realised**2, axis=1),
        closed_loop_abs=summary.mean_drift,
        realised_abs=np.mean(np.abs(realised), axis=1),
        S_test=None if summary.S is None else summary.S[:, n:],
        runs=runs,
        p_train_se=summary.p_train_se,
        p_test_se=summary.p_test_se,
    )


def is_faithful(gap_mse, test_mse, fraction: float = FRACTION) -> np.ndarray:
    """Whether a smoother's mean squared gap to the network is at most ``fraction`` of the
    network's test MSE (elementwise over seeds or widths); see the module docstring."""
    if not 0.0 < fraction < 1.0:
        raise ArgumentError(f"fraction must lie in (0, 1); got {fraction!r}.")
    gap_mse, test_mse = (
        np.asarray(gap_mse, dtype=float),
        np.asarray(test_mse, dtype=float),
    )
    if gap_mse.shape != test_mse.shape:
        raise ArgumentError(
            f"gap_mse and test_mse must have the same shape; got {gap_mse.shape} and {test_mse.shape}."
        )
    return np.isfinite(gap_mse) & (gap_mse <= fraction * test_mse)


__all__: Sequence[str] = (
    "FRACTION",
    "FaithfulFit",
    "SmootherFit",
    "faithful_fit",
    "is_faithful",
    "smoother_fit",
)
