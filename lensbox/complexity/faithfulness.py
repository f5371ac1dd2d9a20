r"""Does the smoother describe the network? Two readings of one smoother, and a stated bound.

For squared loss the telescoping model is a smoother :math:`\tilde f(x) = \hat{\mathbf s}(x)\mathbf y
+ c(x)` (Eqs. 6-8, 14-21), and the effective parameters :math:`p^0_{\hat s}` come from
:math:`\hat{\mathbf s}` alone. The recursion for :math:`\hat{\mathbf s}` never reads a residual
(paper Eqs. 6-8 and App. B.1; the book's *Smoothers* chapter), so the offset :math:`c` can be driven
in two ways without changing :math:`\hat{\mathbf s}` or :math:`p`. The book calls them the two
*readings* of the smoother:

* **closed loop** (the paper's Eq. 7): the offset :math:`c_{closed}` is driven by the smoother's own
  residuals :math:`\mathbf y - \tilde{\mathbf f}_{t-1}`; its prediction
  :math:`\hat{\mathbf s}\mathbf y + c_{closed}` is a model in its own right and may move away from
  the network;
* **realised**: the offset :math:`c_{realised}` is driven by the network's residuals; then
  :math:`\hat{\mathbf s}\mathbf y + c_{realised}` is exactly the realised-step telescoping model
  :math:`\tilde f` of Eq. 5, which :func:`lensbox.telescoping_tracker` accumulates.

The **gap** of a reading is its prediction minus the network's, on the training and test rows
(:class:`Gap`: its mean square, mean absolute value and largest absolute value, per seed).
:func:`smoother_fit` trains seeds side by side (:func:`lensbox.engine.seeds.train_seeds`) and
reads, at the end of training, the network's errors, the smoother's effective parameters and the
gap of each reading. :func:`is_faithful` applies the book's bound, fixed before any run from one
principle: a reading describes the network when it differs from the network by at most a tenth
of the network's own test error (root mean square), i.e. its mean squared gap is at most
``fraction = 0.01`` of the network's test MSE. Then the smoother's test MSE lies within about
:math:`\pm 20\,\%` of the network's, by the triangle inequality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from lensbox.engine.checks import as_matrix, as_targets
from lensbox.engine.models import Model, Params
from lensbox.engine.optim import Optimizer
from lensbox.engine.seeds import (
    SeedRuns,
    StoppingRule,
    check_rule,
    seed_count,
    seed_labels,
    train_seeds,
)
from lensbox.engine.smoother import (
    check_record,
    effective_parameters,
    smoother_tracker,
)
from lensbox.engine.telescoping import telescoping_tracker
from lensbox.engine.training import predictions_tracker
from lensbox.errors import ArgumentError, ShapeError

#: The bound's principle: mean squared gap at most this fraction of the network's test MSE.
FRACTION = 0.01


@dataclass(frozen=True)
class Gap:
    """The gap between one reading of the smoother and the network, on the training and test rows
    together, one value per seed.

    Attributes:
        mse: mean squared gap (what :func:`is_faithful` compares with the test MSE).
        mean_abs: mean absolute gap.
        max_abs: largest absolute gap.
    """

    mse: np.ndarray
    mean_abs: np.ndarray
    max_abs: np.ndarray

    @classmethod
    def between(cls, prediction, network) -> Gap:
        """The gap of ``prediction`` to ``network``, both (seeds, rows)."""
        prediction = np.asarray(prediction, dtype=float)
        network = np.asarray(network, dtype=float)
        if prediction.ndim != 2 or prediction.shape != network.shape:
            raise ShapeError(
                "prediction and network must both have shape (seeds, rows); got "
                f"{prediction.shape} and {network.shape}."
            )
        gap = prediction - network
        return cls(
            np.mean(gap**2, axis=1),
            np.mean(np.abs(gap), axis=1),
            np.max(np.abs(gap), axis=1),
        )


@dataclass
class SmootherFit:
    """Seeds of one model trained under a stopping rule, seen at the end through the network and the
    smoother. Every array has a leading seed axis.

    Attributes:
        stop_steps, reasons: stopping step and reason per seed (see :class:`StoppingRule`).
        train_mse, test_mse, train_error, test_error: the network's mean squared errors and
            misclassification rates at 0.5 (training: against the labels trained on, noisy ones
            included; test: the clean labels).
        p_train, p_test: effective parameters :math:`p^{train}_{\\hat s}`, :math:`p^{test}_{\\hat s}`
            (``nan`` without the smoother).
        p_train_se, p_test_se: their standard errors over the probes (the probe route,
            ``probes=k``; ``None`` on the exact route or without the smoother).
        closed_loop: the :class:`Gap` of the closed-loop reading :math:`\\hat{\\mathbf s}\\mathbf y
            + c_{closed}` (``None`` without the smoother).
        realised: the :class:`Gap` of the realised reading, the realised-step telescoping model
            (``None`` unless asked for with ``realised=True``).
        smoother_test_mse: test MSE of the closed-loop reading (``nan`` without the smoother).
        S_test: the smoother weights :math:`\\hat{\\mathbf s}(x)` of the test rows (seeds, m, n)
            on the exact route; ``None`` on the probe route or without the smoother.
        runs: the underlying :class:`SeedRuns`.
    """

    stop_steps: np.ndarray
    reasons: list[str]
    train_mse: np.ndarray
    test_mse: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    p_train: np.ndarray
    p_test: np.ndarray
    p_train_se: np.ndarray | None
    p_test_se: np.ndarray | None
    closed_loop: Gap | None
    realised: Gap | None
    smoother_test_mse: np.ndarray
    S_test: np.ndarray | None
    runs: SeedRuns = field(repr=False)


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


def _smoother_readings(rec, Y) -> dict:
    """From the smoother's final record: the closed-loop prediction of each seed (seeds, rows),
    ``p`` with its standard errors, and the test rows' weights (exact route)."""
    check_record(rec)
    n = Y.shape[1]
    c = np.asarray(rec["c_closed_loop"], dtype=float)
    if "S" in rec:  # the exact route
        S = np.asarray(rec["S"], dtype=float)
        return {
            "prediction": np.einsum("srn,sn->sr", S, Y) + c,
            "p_train": np.array([effective_parameters(S_s[:n], n) for S_s in S]),
            "p_test": np.array([effective_parameters(S_s[n:], n) for S_s in S]),
            "p_train_se": None,
            "p_test_se": None,
            "S_test": S[:, n:],
        }
    # the probe route: seed s's labels are column s of SY (column 0 when shared)
    SY = np.asarray(rec["SY"], dtype=float)
    cols = np.arange(len(SY)) if SY.shape[2] > 1 else np.zeros(len(SY), int)
    return {
        "prediction": SY[np.arange(len(SY)), :, cols] + c,
        **{
            k: np.asarray(rec[k], dtype=float)
            for k in ("p_train", "p_test", "p_train_se", "p_test_se")
        },
        "S_test": None,
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
    realised: bool = False,
    batch_size: int | None = None,
    record_at: Sequence[int] | None = None,
    seed: int = 0,
    probes: int | None = None,
    probe_seed: int = 0,
) -> SmootherFit:
    r"""Train the seeds in ``params`` with squared loss under ``rule`` and read the end of training:
    the network's errors and, with ``smoother=True``, the telescoping smoother
    :math:`\tilde f(x) = \hat{\mathbf s}(x)\mathbf y + c(x)` (Eqs. 6-8 and 14-21, for the optimiser
    used) with its effective parameters

    .. math:: p^0_{\hat s} = \frac{n}{|\mathcal I_0|}\sum_{j\in\mathcal I_0}\|\hat{\mathbf s}(x^0_j)\|^2

    on the training rows and on the test rows (section 4.1, Eq. 8; the *Smoothers* chapter), and
    the gap of its closed-loop reading to the network; with ``realised=True`` also the gap of the
    realised reading (the realised-step telescoping model, tracked on the same rows).

    Args:
        model: the network.
        params: :math:`\theta_0` with a leading seed axis (see :func:`init_seeds`).
        optimizer: from :mod:`lensbox.engine.optim`.
        X_train, Y_train: training inputs (n, d) and each seed's labels (seeds, n) or shared (n,).
        X_test, y_test: test inputs (m, d) and clean labels (m,).
        rule: the :class:`StoppingRule`.
        smoother: track the smoother (costly: its state has a column per training row, or per
            probe); without it only the network is trained. One smoother tracker serves every
            seed (``S`` and the closed-loop offset never read the labels), given each seed's
            labels (:func:`~lensbox.engine.smoother.smoother_tracker`'s ``labels``).
        realised: also track the realised-step telescoping model and its gap (needs ``smoother``).
        batch_size, record_at, seed: as in :func:`train_seeds`.
        probes, probe_seed: ``None`` for the exact smoother; k for the probe route, whose ``p``
            are estimates from k random probes with standard errors ``p_*_se``
            (:func:`lensbox.engine.smoother.smoother_tracker`).

    Returns:
        A :class:`SmootherFit`; its ``runs`` keep the trackers' records: ``"network"`` (the
        network's predictions on the training rows, then the test rows), ``"smoother"`` and,
        with ``realised``, ``"telescoping"``.
    """
    if realised and not smoother:
        raise ArgumentError(
            "realised=True reads the realised reading of the smoother; it needs smoother=True."
        )
    check_rule(rule)
    X_train = as_matrix(X_train, "X_train")
    X_test = as_matrix(X_test, "X_test", n_features=X_train.shape[1])
    y_test = np.asarray(
        as_targets(y_test, "y_test", n_rows=X_test.shape[0]), dtype=float
    )
    Y = np.asarray(Y_train, dtype=float)
    seed_labels(Y, seed_count(params), X_train.shape[0], name="Y_train")
    X_R = jnp.concatenate([X_train, X_test.astype(X_train.dtype)])
    trackers = {"network": predictions_tracker(model, X_R)}
    if smoother:
        trackers["smoother"] = smoother_tracker(
            model,
            X_train,
            Y if Y.ndim == 1 else Y[0],
            X_test,
            optimizer,
            record_weights=probes is None,
            probes=probes,
            probe_seed=probe_seed,
            labels=Y[1:] if Y.ndim == 2 else None,
        )
    if realised:
        trackers["telescoping"] = telescoping_tracker(model, X_R)
    runs = train_seeds(
        model,
        params,
        optimizer,
        X_train,
        Y,
        rule=rule,
        batch_size=batch_size,
        trackers=trackers,
        record_at=record_at,
        seed=seed,
    )
    f = np.asarray(runs.final["network"], dtype=float)
    n_seeds, n = len(runs.stop_steps), X_train.shape[0]
    Y = np.broadcast_to(Y, (n_seeds, n)) if Y.ndim == 1 else Y
    nan = np.full(n_seeds, np.nan)
    readings = {"p_train": nan, "p_test": nan, "p_train_se": None, "p_test_se": None}
    closed_loop = realised_gap = S_test = None
    smoother_mse = nan
    if smoother:
        readings = _smoother_readings(runs.final["smoother"], Y)
        closed_loop = Gap.between(readings["prediction"], f)
        smoother_mse = np.mean((readings["prediction"][:, n:] - y_test) ** 2, axis=1)
        S_test = readings["S_test"]
    if realised:
        realised_gap = Gap.between(runs.final["telescoping"], f)
    return SmootherFit(
        stop_steps=runs.stop_steps,
        reasons=runs.reasons,
        **_network_errors(f, Y, y_test),
        p_train=readings["p_train"],
        p_test=readings["p_test"],
        p_train_se=readings["p_train_se"],
        p_test_se=readings["p_test_se"],
        closed_loop=closed_loop,
        realised=realised_gap,
        smoother_test_mse=smoother_mse,
        S_test=S_test,
        runs=runs,
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
        raise ShapeError(
            f"gap_mse and test_mse must have the same shape; got {gap_mse.shape} and {test_mse.shape}."
        )
    if np.any(test_mse < 0) or np.any(gap_mse < 0):
        raise ArgumentError(
            "gap_mse and test_mse are mean squared errors and cannot be negative; got "
            f"gap_mse {gap_mse.min()} and test_mse {test_mse.min()} at least."
        )
    return np.isfinite(gap_mse) & (gap_mse <= fraction * test_mse)


__all__: Sequence[str] = (
    "FRACTION",
    "Gap",
    "SmootherFit",
    "is_faithful",
    "smoother_fit",
)
