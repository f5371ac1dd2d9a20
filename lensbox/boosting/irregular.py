r"""Boosted trees against a network on irregular test inputs: the protocol of the paper's App. C.2
(section 4.3, Figs. 5 and 14).

1. **Irregularity** (:func:`irregularity`): standardise the inputs, project them on the first
   principal component, take each row's absolute distance to the median projection. The top
   ``fraction`` (10 %) form the pool of irregular rows; the rest are regular.
2. **Split** (:func:`irregular_split`): regular rows give a training set (with a validation part
   for the search) and regular test rows; test *mixtures* of ``n_test`` rows hold a share ``p`` of
   irregular rows, for each ``p`` in ``proportions``.
3. **Models**: scikit-learn's ``GradientBoostingRegressor`` (squared loss) and the paper's MLP
   (three hidden layers of width 64, ReLU, batch 128, Adam), each tuned by random search over the
   Grinsztajn et al. (2022) search spaces on the validation rows, then retrained on all training rows.
4. **Metrics**: the normalised maximum kernel-weight norm (:func:`normalised_max_norm`)

   .. math:: R(p) = \frac{\frac1T\sum_t \max_{j \in \mathcal I^p_{test}} \|\mathbf k_t(x_j)\|_2}
       {\frac1T\sum_t \max_{i \in \mathcal I_{train}} \|\mathbf k_t(x_i)\|_2}

   and the relative MSE gap :math:`(MSE^p_{NN} - MSE^p_{GBT}) / (MSE^0_{NN} - MSE^0_{GBT})`
   (:func:`relative_gap`).

For the trees :math:`\mathbf k_t` is tree :math:`t`'s leaf kernel (:func:`lensbox.boosting.trees.kernel_norms`).
For the network, :func:`kernel_norm_tracker` records at checkpoints :math:`\theta_t` the tangent-kernel
row against the whole training set, :math:`\mathbf k_t(x) = \frac1n[\nabla_\theta f_{\theta_t}(x)^\top
\nabla_\theta f_{\theta_t}(x_i)]_{i=1}^n`: the weights a full-batch gradient step would put on each
training residual (Eq. 3 with :math:`B_t` the whole set and without :math:`\gamma_t`, which cancels
in :math:`R`). The network side uses only ``lensbox.mlp``, ``lensbox.adam``, ``lensbox.train`` with a
``lensbox.Tracker``, ``lensbox.tangent_kernel`` and ``lensbox.DivergenceError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.boosting import trees
from lensbox.engine.kernels import tangent_kernel
from lensbox.engine.models import mlp
from lensbox.engine.optim import adam
from lensbox.engine.statistics import mean_and_se
from lensbox.engine.training import Tracker, train
from lensbox.engine.checks import as_count, as_matrix, check_finite
from lensbox.errors import ArgumentError, ArgumentTypeError, DivergenceError, ShapeError

PROPORTIONS = (0.0, 0.125, 0.25, 0.375, 0.5)
IRREGULAR_FRACTION = 0.1
WIDTHS = (64, 64, 64)
BATCH = 128
GBT_DEPTHS = (None, 2, 3, 4, 5)
GBT_DEPTH_PROBS = (0.1, 0.1, 0.6, 0.1, 0.1)


def irregularity(X) -> np.ndarray:
    """App. C.2's irregularity score: the absolute distance of each row's projection on the first
    principal component of the standardised inputs to the median projection."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ArgumentError(
            f"X must be a 2-D array with at least 2 rows; got shape {X.shape}."
        )
    sd = X.std(0)
    Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    direction = np.linalg.svd(Z, full_matrices=False)[2][0]
    proj = Z @ direction
    return np.abs(proj - np.median(proj))


@dataclass(frozen=True)
class IrregularSplit:
    """Training rows (the first ``n_fit`` rows for the search, the rest validation), the evaluation
    rows (regular test rows then irregular ones) and, per proportion ``p``, the indices into the
    evaluation rows of the test mixture."""

    X_train: np.ndarray
    y_train: np.ndarray
    n_fit: int
    X_eval: np.ndarray
    y_eval: np.ndarray
    irregular: np.ndarray  # bool per evaluation row
    mixtures: dict[float, np.ndarray] = field(repr=False)


def irregular_split(
    X,
    y,
    *,
    n_train: int | None,
    n_val: int,
    n_test: int,
    proportions=PROPORTIONS,
    fraction: float = IRREGULAR_FRACTION,
    seed: int = 0,
) -> IrregularSplit:
    """Split ``(X, y)`` by App. C.2's protocol (module docstring). ``n_train`` counts all training
    rows, validation included (``None``: every regular row not used for testing)."""
    X = np.asarray(as_matrix(X, "X"), dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ShapeError(
            f"y must hold one target per row of X, shape ({X.shape[0]},); got {y.shape}."
        )
    check_finite(y, "y")
    n_test, n_val = (
        as_count(n_test, "n_test", minimum=1),
        as_count(n_val, "n_val", minimum=1),
    )
    n_train = None if n_train is None else as_count(n_train, "n_train", minimum=2)
    seed = as_count(seed, "seed")
    if (
        not (0 < fraction < 1)
        or not proportions
        or min(proportions) != 0
        or max(proportions) > 1
    ):
        raise ArgumentError(
            f"fraction must lie in (0, 1) and proportions in [0, 1] starting at 0; got "
            f"fraction={fraction}, proportions={proportions}."
        )
    rng = np.random.default_rng(seed)
    score = irregularity(X)
    n_irr = int(round(fraction * len(y)))
    order = np.argsort(-score, kind="stable")
    irr, reg = rng.permutation(order[:n_irr]), rng.permutation(order[n_irr:])
    k_max = int(round(max(proportions) * n_test))
    n_train = len(reg) - n_test if n_train is None else n_train
    if k_max > len(irr) or n_test + n_train > len(reg) or not (0 < n_val < n_train):
        raise ArgumentError(
            f"not enough rows: {len(reg)} regular and {len(irr)} irregular; asked for n_test="
            f"{n_test} (up to {k_max} irregular), n_train={n_train} with n_val={n_val} (0 < n_val < n_train)."
        )
    test_rows, train_rows = reg[:n_test], reg[n_test : n_test + n_train]
    eval_rows = np.concatenate([test_rows, irr[:k_max]])
    mixtures = {
        float(p): np.concatenate(
            [
                np.arange(n_test - round(p * n_test)),
                n_test + np.arange(round(p * n_test)),
            ]
        )
        for p in proportions
    }
    return IrregularSplit(
        X[train_rows],
        y[train_rows],
        n_train - n_val,
        X[eval_rows],
        y[eval_rows],
        np.arange(len(eval_rows)) >= n_test,
        mixtures,
    )


def fit_sizes(
    n_rows: int,
    *,
    n_train: int | None,
    n_val: int,
    n_test: int,
    proportions=PROPORTIONS,
    fraction: float = IRREGULAR_FRACTION,
) -> dict[str, int | None]:
    """The sizes :func:`irregular_split` can take from a table of ``n_rows`` rows, at most those asked.

    A small table shrinks them in this order: the test sets, to the most the irregular pool can
    fill at the largest ``p`` (``pool / max(p)`` rows); the training rows, to the regular rows left
    (``None`` stays ``None``: all of them); the validation rows, to a third of the training rows.
    """
    n_rows = as_count(n_rows, "n_rows", minimum=2)
    n_irr = int(round(fraction * n_rows))
    top = max(proportions)
    n_test = min(n_test, int(n_irr / top)) if top > 0 else n_test
    n_reg = n_rows - n_irr
    if n_train is not None:
        n_train = min(n_train, n_reg - n_test)
    rows = n_reg - n_test if n_train is None else n_train
    return {"n_train": n_train, "n_val": min(n_val, rows // 3), "n_test": n_test}


def normalised_max_norm(test_norms, train_norms) -> float:
    r""":math:`R(p)`: the mean over kernels ``t`` of the largest test-row norm over the same for the
    training rows. Both arrays are ``(rows, T)``, one column per tree or checkpoint."""
    test_norms, train_norms = np.asarray(test_norms), np.asarray(train_norms)
    if (
        test_norms.ndim != 2
        or train_norms.ndim != 2
        or test_norms.shape[1] != train_norms.shape[1]
    ):
        raise ArgumentError(
            f"test_norms and train_norms must be (rows, T) with the same T; got "
            f"{test_norms.shape} and {train_norms.shape}."
        )
    return float(test_norms.max(0).mean() / train_norms.max(0).mean())


def relative_gap(mse_nn, mse_gbt) -> np.ndarray:
    r"""The relative MSE gap :math:`(MSE^p_{NN} - MSE^p_{GBT}) / (MSE^0_{NN} - MSE^0_{GBT})` by
    ``p`` (entry 0 is ``p = 0``; last axis is ``p``)."""
    mse_nn, mse_gbt = np.asarray(mse_nn, dtype=float), np.asarray(mse_gbt, dtype=float)
    if mse_nn.shape != mse_gbt.shape or mse_nn.ndim == 0 or mse_nn.shape[-1] == 0:
        raise ShapeError(
            "mse_nn and mse_gbt must have the same shape, with p on a non-empty last axis; "
            f"got {mse_nn.shape} and {mse_gbt.shape}."
        )
    diff = mse_nn - mse_gbt  # NaN stays NaN: a diverged network's MSE (train_network)
    if np.any(diff[..., 0] == 0):
        raise ArgumentError(
            "mse_nn and mse_gbt are equal at p = 0 (entry 0), so the relative gap divides by zero."
        )
    return diff / diff[..., :1]


# ----------------------------------------------------------------------------------------------
# Gradient-boosted trees


def sample_gbt(rng: np.random.Generator, max_estimators: int = 1000) -> dict:
    """One draw from Grinsztajn et al.'s GBT search space (paper App. C.2): learning rate
    LogNormal(log 0.01, log 10), trees LogUniformInt[10.5, 1000.5] (capped at ``max_estimators``),
    depth in (None, 2, 3, 4, 5) with probabilities (0.1, 0.1, 0.6, 0.1, 0.1)."""
    lr = float(np.exp(rng.normal(np.log(0.01), np.log(10.0))))
    n_trees = int(round(np.exp(rng.uniform(np.log(10.5), np.log(1000.5)))))
    depth = GBT_DEPTHS[rng.choice(len(GBT_DEPTHS), p=GBT_DEPTH_PROBS)]
    return {
        "learning_rate": lr,
        "n_estimators": min(n_trees, max_estimators),
        "max_depth": depth,
    }


def fit_gbt(X, y, params: dict, seed: int = 0):
    """A squared-loss ``GradientBoostingRegressor`` with ``subsample=1`` (so Eq. 9 is exact)."""
    from sklearn.ensemble import GradientBoostingRegressor

    fixed = {"loss", "subsample", "random_state"}
    allowed = set(GradientBoostingRegressor().get_params()) - fixed
    if not isinstance(params, dict):
        raise ArgumentTypeError(f"params must be a dict of settings; got {params!r}.")
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ArgumentError(
            f"params holds {unknown}, which fit_gbt does not take (loss, subsample and "
            f"random_state are fixed; it takes {', '.join(sorted(allowed))})."
        )
    return GradientBoostingRegressor(
        loss="squared_error", subsample=1.0, random_state=seed, **params
    ).fit(X, y)


def search_gbt(
    split: IrregularSplit, runs: int, seed: int = 0, max_estimators: int = 1000
):
    """Random search on the validation rows; returns ``(best params, validation MSEs)``."""
    runs = as_count(runs, "runs", minimum=1)
    max_estimators = as_count(max_estimators, "max_estimators", minimum=1)
    rng = np.random.default_rng([seed, 1])
    Xf, yf = split.X_train[: split.n_fit], split.y_train[: split.n_fit]
    Xv, yv = split.X_train[split.n_fit :], split.y_train[split.n_fit :]
    tried, scores = [], []
    for _ in range(runs):
        params = sample_gbt(rng, max_estimators)
        pred = fit_gbt(Xf, yf, params, seed).predict(Xv)
        score = float(np.mean((pred - yv) ** 2))
        tried.append(params)
        scores.append(score if np.isfinite(score) else np.inf)
    return tried[int(np.argmin(scores))], np.asarray(scores)


# ----------------------------------------------------------------------------------------------
# The network


def sample_nn_lr(rng: np.random.Generator) -> float:
    """Grinsztajn et al.'s MLP learning rate: LogUniform[1e-5, 1e-2]."""
    return float(np.exp(rng.uniform(np.log(1e-5), np.log(1e-2))))


def kernel_norm_tracker(model, X_rows, X_train, *, chunk: int = 512):
    r"""A ``lensbox.Tracker`` recording :math:`\|\mathbf k_t(x)\|_2` for every row of ``X_rows``,
    with :math:`\mathbf k_t(x) = \frac1n[\nabla f_{\theta_t}(x)^\top\nabla f_{\theta_t}(x_i)]_{i\le n}`
    over all ``n`` rows of ``X_train`` (``lensbox.tangent_kernel``, rows in chunks of ``chunk``)."""
    X_train = as_matrix(X_train, "X_train")
    X_rows = as_matrix(X_rows, "X_rows", n_features=X_train.shape[1])
    rows, n = X_rows.shape[0], X_train.shape[0]
    chunk = max(1, min(as_count(chunk, "chunk", minimum=1), rows))
    pad = -rows % chunk
    chunks = jnp.concatenate([X_rows, jnp.zeros((pad, X_rows.shape[1]), X_rows.dtype)])
    chunks = chunks.reshape(-1, chunk, X_rows.shape[1])

    def record(state, params):
        def norms(xc):
            return jnp.linalg.norm(tangent_kernel(model, params, xc, X_train), axis=1)

        return jax.lax.map(norms, chunks).reshape(-1)[:rows] / n

    return Tracker(lambda params: (), lambda state, info: state, record)


def train_network(
    X,
    y,
    learning_rate: float,
    *,
    steps: int,
    seed: int = 0,
    X_rows=None,
    checkpoints: int = 8,
):
    """Train the paper's MLP with Adam, batch 128, for ``steps`` steps.

    Returns ``(predict, norms)``: ``predict(X)`` of the trained network and, when ``X_rows`` is
    given, the kernel-weight norms ``(rows, checkpoints)`` at ``checkpoints`` evenly spaced
    parameters :math:`\\theta_0, \\dots` (else ``None``). A diverged run predicts ``nan``.
    """
    X = as_matrix(X, "X")
    steps = as_count(steps, "steps", minimum=1)
    checkpoints = as_count(checkpoints, "checkpoints", minimum=1)
    model = mlp(WIDTHS)
    params = model.init(jax.random.PRNGKey(seed), X.shape[1])
    record_at = np.unique(np.linspace(0, steps, checkpoints + 1).astype(int)[:-1])
    trackers = (
        {} if X_rows is None else {"norms": kernel_norm_tracker(model, X_rows, X)}
    )
    try:
        res = train(
            model,
            params,
            adam(learning_rate),
            X,
            y,
            steps=steps,
            batch_size=min(BATCH, len(y)),
            seed=seed,
            trackers=trackers,
            record_at=record_at,
            progress=False,
        )
    except DivergenceError:
        return (lambda Z: np.full(len(Z), np.nan)), None
    trained = res.params
    norms = None if X_rows is None else np.asarray(res.records["norms"]).T
    return (lambda Z: np.asarray(model.apply(trained, Z))), norms


def search_network(split: IrregularSplit, runs: int, *, steps: int, seed: int = 0):
    """Random search of the learning rate on the validation rows; ``(best lr, validation MSEs)``."""
    runs = as_count(runs, "runs", minimum=1)
    rng = np.random.default_rng([seed, 2])
    Xf, yf = split.X_train[: split.n_fit], split.y_train[: split.n_fit]
    Xv, yv = split.X_train[split.n_fit :], split.y_train[split.n_fit :]
    rates, scores = [], []
    for _ in range(runs):
        lr = sample_nn_lr(rng)
        predict, _ = train_network(Xf, yf, lr, steps=steps, seed=seed)
        score = float(np.mean((predict(Xv) - yv) ** 2))
        rates.append(lr)
        scores.append(score if np.isfinite(score) else np.inf)
    return rates[int(np.argmin(scores))], np.asarray(scores)


def linear_fit(X, y):
    """Ordinary least squares with an intercept on ``(X, y)``; returns ``predict(Z)``. A diagnostic
    for the chapter: a model that extrapolates linearly, where a tree predicts a constant."""
    X = np.asarray(as_matrix(X, "X"), dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ShapeError(
            f"y must hold one target per row of X, ({X.shape[0]},); got {y.shape}."
        )
    coef = np.linalg.lstsq(np.column_stack([X, np.ones(len(y))]), y, rcond=None)[0]
    return lambda Z: np.asarray(Z, dtype=np.float64) @ coef[:-1] + coef[-1]


# ----------------------------------------------------------------------------------------------
# One seed of the experiment


@dataclass
class SeedResult:
    """One seed: per proportion ``p`` (in order) the MSEs and :math:`R(p)` of both models, and the
    raw norms for figures (``*_eval``: ``(eval rows, T)``; ``*_train``: ``(n, T)``).

    ``mse_linear`` is a diagnostic, not part of the paper's protocol: the MSE by ``p`` of ordinary
    least squares fitted to the training rows, which extrapolates linearly (a tree cannot);
    ``sizes`` are the split's sizes (``n_train``, ``n_val``, ``n_test``); ``y_eval`` and
    ``pred_eval`` (``"nn"``, ``"gbt"``, ``"linear"``) the evaluation rows' targets and predictions,
    in the order of ``irregular``."""

    proportions: np.ndarray
    mse_nn: np.ndarray
    mse_gbt: np.ndarray
    R_nn: np.ndarray
    R_gbt: np.ndarray
    nn_eval: np.ndarray
    nn_train: np.ndarray
    gbt_eval: np.ndarray
    gbt_train: np.ndarray
    irregular: np.ndarray
    best: dict[str, Any]
    mse_linear: np.ndarray
    sizes: dict[str, Any]
    y_eval: np.ndarray
    pred_eval: dict[str, np.ndarray]


def run_seed(
    X,
    y,
    *,
    n_train,
    n_val,
    n_test,
    steps,
    search_runs,
    checkpoints=8,
    proportions=PROPORTIONS,
    max_estimators=1000,
    seed=0,
) -> SeedResult:
    """The whole protocol for one seed: split, search both models (``search_runs`` random draws
    each, as the paper gives both), retrain, measure."""
    split = irregular_split(
        X,
        y,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        proportions=proportions,
        seed=seed,
    )
    gbt_params, _ = search_gbt(split, search_runs, seed, max_estimators)
    gbt = fit_gbt(split.X_train, split.y_train, gbt_params, seed)
    lr, _ = search_network(split, search_runs, steps=steps, seed=seed)
    rows = np.concatenate([split.X_train, split.X_eval])
    predict, norms = train_network(
        split.X_train,
        split.y_train,
        lr,
        steps=steps,
        seed=seed,
        X_rows=rows,
        checkpoints=checkpoints,
    )
    n = len(split.y_train)
    if norms is None:  # the retrained network diverged: no kernel to measure
        norms = np.full((len(rows), checkpoints), np.nan)
    g_eval, g_train = (
        trees.kernel_norms(gbt, split.X_eval),
        trees.kernel_norms(gbt, split.X_train),
    )
    p_nn, p_gbt = predict(split.X_eval), gbt.predict(split.X_eval)
    p_lin = linear_fit(split.X_train, split.y_train)(split.X_eval)
    out = {k: [] for k in ("mse_nn", "mse_gbt", "R_nn", "R_gbt", "mse_linear")}
    for p in proportions:
        idx = split.mixtures[float(p)]
        out["mse_nn"].append(np.mean((p_nn[idx] - split.y_eval[idx]) ** 2))
        out["mse_gbt"].append(np.mean((p_gbt[idx] - split.y_eval[idx]) ** 2))
        out["R_nn"].append(normalised_max_norm(norms[n:][idx], norms[:n]))
        out["R_gbt"].append(normalised_max_norm(g_eval[idx], g_train))
        out["mse_linear"].append(np.mean((p_lin[idx] - split.y_eval[idx]) ** 2))
    return SeedResult(
        np.asarray(proportions, float),
        *(np.asarray(out[k]) for k in ("mse_nn", "mse_gbt", "R_nn", "R_gbt")),
        norms[n:],
        norms[:n],
        g_eval,
        g_train,
        split.irregular,
        {"gbt": gbt_params, "nn_learning_rate": lr},
        np.asarray(out["mse_linear"]),
        {"n_train": n, "n_val": n_val, "n_test": n_test},
        split.y_eval,
        {"nn": np.asarray(p_nn), "gbt": np.asarray(p_gbt), "linear": p_lin},
    )


def summarise(results: list[SeedResult]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and standard error over seeds, by ``p``, of both MSEs, both :math:`R(p)` and the
    relative gap (computed per seed, then averaged)."""
    stack = {
        k: np.stack([getattr(r, k) for r in results])
        for k in ("mse_nn", "mse_gbt", "R_nn", "R_gbt")
    }
    stack["gap"] = relative_gap(stack["mse_nn"], stack["mse_gbt"])
    return {k: mean_and_se(v) for k, v in stack.items()}
