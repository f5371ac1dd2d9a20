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

:func:`faithful_fit` trains seeds side by side (as :func:`lensbox.engine.seeds.smoother_fit`) and
measures both gaps to the network, :math:`|\hat{\mathbf s}\mathbf y + c - f|` and
:math:`|\tilde f - f|`. :func:`is_faithful` applies the book's bound, fixed before any run from one
principle: the smoother describes the network when it differs from the network by at most a tenth
of the network's own test error (root mean square), i.e. its mean squared gap is at most
``fraction = 0.01`` of the network's test MSE. Then the smoother's test MSE lies within about
:math:`\pm 20\,\%` of the network's, by the triangle inequality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lensbox.errors import ArgumentError
from lensbox.engine.models import Model
from lensbox.engine.optim import Optimizer
from lensbox.engine.seeds import (
    SeedRuns,
    StoppingRule,
    _network_errors,
    _smoother_summary,
    tracked_seeds,
)

#: The bound's principle: mean squared gap at most this fraction of the network's test MSE.
FRACTION = 0.01


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
        S_test: smoother weights of the test rows (seeds, m, n).
        runs: the :class:`~lensbox.engine.seeds.SeedRuns`.
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
    S_test: np.ndarray
    runs: SeedRuns = field(repr=False)


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
) -> FaithfulFit:
    """Train the seeds in ``params`` (leading seed axis) with squared loss under ``rule``, tracking
    the smoother (closed loop) and the realised-step telescoping model on the training and test
    rows; see the module docstring.

    Args:
        model, params, optimizer: as in :func:`lensbox.engine.seeds.smoother_fit`.
        X_train, Y_train: (n, d) inputs and each seed's labels (S, n), or shared labels (n,).
        X_test, y_test: (m, d) test inputs and clean labels (m,).
        rule, batch_size, seed: as in :func:`lensbox.engine.seeds.train_seeds`.
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
        S_test=summary.S[:, n:],
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
        raise ArgumentError(
            f"gap_mse and test_mse must have the same shape; got {gap_mse.shape} and {test_mse.shape}."
        )
    return np.isfinite(gap_mse) & (gap_mse <= fraction * test_mse)


__all__: Sequence[str] = ("FRACTION", "FaithfulFit", "faithful_fit", "is_faithful")
