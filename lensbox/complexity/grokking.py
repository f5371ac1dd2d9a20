r"""The grokking study (paper section 4.1, Figs. 4, 11-13; App. C.1): its two experiments, and
their runs as stored units.

**The polynomial task** (Eq. 25, after Kumar et al. 2024). :func:`quadratic_network` is a
one-hidden-layer network with the activation :math:`\phi(h) = h + \frac\epsilon2 h^2`, and
:func:`quadratic_tangent_kernel` its closed-form tangent kernel; :func:`poly_run` trains it on the
paper's polynomial task (:func:`lensbox.data.polynomial_task`) and tracks its smoother.

**MNIST with a large initialisation** (after Omnigrok). :func:`mnist_run` trains a three-layer
MLP, PyTorch's initialisation times :math:`\alpha`, with AdamW on MNIST 3 vs 5 (the offline
stand-in below ``paper`` scale) and tracks its smoother.

:data:`EXPERIMENT` is the *Grokking* chapter's every run, one training run per unit
(:func:`unit_calls`); ``python -m lensbox.experiments run grokking`` stores them and the chapter
reads them through :func:`lensbox.experiments.results`, regrouped by :func:`arrange`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.data import Dataset, balanced_subsample, identity, load, polynomial_task
from lensbox.engine.checks import as_count, as_counts, is_integer
from lensbox.engine.models import Model, Params, mlp
from lensbox.engine.optim import adamw, sgd
from lensbox.engine.smoother import (
    growth_tracker,
    sharpness_tracker,
    smoother_tracker,
    stability_limit,
)
from lensbox.engine.telescoping import kink_tracker, telescoping_tracker
from lensbox.engine.training import predictions_tracker, recording_steps, train
from lensbox.errors import ArgumentError, ShapeError
from lensbox.runtime.results import Experiment


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


# ---------------------------------------------------------------------------------------------
# The chapter's runs

#: Fig. 11's task alignments; Fig. 4 shows 0.2.
EPSILONS: tuple[float, ...] = (0.05, 0.2, 0.5)
#: Fig. 12's initial scales; the paper's main run is 6 (5 at ``smoke``, see the configurations).
ALPHAS: tuple[float, ...] = (5.0, 6.0, 7.0)
#: The control's outputs at the standard initialisation (Figs. 4.3 and 13).
CONTROL_OUTPUTS: tuple[str, ...] = ("identity", "sigmoid")
#: The learning rates of the approximation check: Omnigrok's and the paper's (ten times smaller).
APPROX_RATES: dict[str, float] = {"Omnigrok rate": 1e-3, "paper rate": 1e-4}


def _poly(**sizes) -> dict[str, Any]:
    # Kumar et al.'s learning rate is the width, on the mean squared error; on lensbox's loss
    # 0.5 (y - f)^2 that is twice the width.
    return {**sizes, "lr": 2.0 * sizes["width"]}


_POLY = {
    "smoke": _poly(
        d=16, n_train=88, n_test=80, width=100, steps=120, seeds=1, p_rows=40
    ),
    "book": _poly(
        d=40, n_train=220, n_test=200, width=500, steps=2000, seeds=3, p_rows=200
    ),
    "paper": _poly(
        d=100, n_train=550, n_test=500, width=500, steps=100_000, seeds=5, p_rows=500
    ),
}
# MNIST sizes. p_steps, p_seeds: how long and on how many seeds every alpha's smoother runs for
# Fig. 12's p curves (the main alpha's first smoother_seeds seeds also carry it for the whole run).
_MNIST = {
    "smoke": dict(
        width=30,
        n_train=60,
        p_rows=40,
        steps=100,
        control_steps=40,
        seeds=1,
        smoother_seeds=1,
        p_steps=100,
        p_seeds=1,
        approx_steps=60,
    ),
    "book": dict(
        width=30,
        n_train=100,
        p_rows=50,
        steps=30_000,
        control_steps=1000,
        seeds=3,
        smoother_seeds=1,
        p_steps=6000,
        p_seeds=3,
        approx_steps=1000,
    ),
    "paper": dict(
        width=200,
        n_train=None,
        p_rows=None,
        steps=100_000,
        control_steps=1000,
        seeds=4,
        smoother_seeds=4,
        p_steps=100_000,
        p_seeds=4,
        approx_steps=5000,
    ),
}
# The optimiser's choices: the paper's learning rate 1e-4 with its 100-step warm-up (10 at smoke);
# the paper's five batches an epoch (200 of its 1000 images): 20 of the book's 100, full batch at
# smoke. Recording: the p curves of Fig. 12 every p_every steps, the standard-initialisation
# control every control_every steps (both resolve the steps the chapter's claims compare).
# control_paper: the network-only control runs at the paper's settings as far as the data allow
# (width 200, batches of 200, every training image the data set has), at every scale: the network
# alone costs seconds.
_MNIST_OPT = {
    "smoke": dict(lr=1e-4, warmup=10, batch=None),
    "book": dict(lr=1e-4, warmup=100, batch=20),
    "paper": dict(lr=1e-4, warmup=100, batch=200),
}
_MNIST_RECORD = {
    "p_every": 20,
    "control_every": 1,
    "control_paper": {"width": 200, "batch": 200, "n_train": None},
}
_MAIN_ALPHA = {"smoke": 5.0, "book": 6.0, "paper": 6.0}


def _config(sizes: str, choices: str) -> dict[str, Any]:
    # probes: None for the exact smoother; k for the probe route (lensbox.smoother_tracker), at
    # paper scale on MNIST, whose every training image is a column of the exact smoother.
    return {
        "data": "mnist_3v5",
        "epsilons": list(EPSILONS),
        "alphas": list(ALPHAS),
        "main_alpha": _MAIN_ALPHA[choices],
        "poly": {**_POLY[sizes], "probes": None},
        "mnist": {
            **_MNIST[sizes],
            **_MNIST_OPT[choices],
            **_MNIST_RECORD,
            "probes": 32 if choices == "paper" else None,
        },
    }


CONFIGS = {s: _config(s, s) for s in ("smoke", "book", "paper")}
# The stored long run: the polynomial task at the paper's sizes and length (d = 100, n = 550,
# 10^5 steps, 5 seeds; where the book's 2,000 steps leave the late p gap unresolved), MNIST at the
# book's sizes with the paper's 4 seeds.
CONFIGS["long"] = _config("book", "book")
CONFIGS["long"]["poly"] = {**_POLY["paper"], "probes": None}
CONFIGS["long"]["mnist"]["seeds"] = 4
CONFIGS["long"]["mnist"]["p_seeds"] = 4
#: The paper's choices at smoke sizes, for the tests' override ``LENSBOX_PAPER_BUDGET=smoke``.
PAPER_SMOKE = _config("smoke", "paper")


def _p_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``p_train``, ``p_test`` of a smoother record, with their standard errors on the probe route."""
    keys = ("p_train", "p_test", "p_train_se", "p_test_se")
    return {k: record[k] for k in keys if k in record}


def poly_run(
    config: Mapping[str, Any], epsilon: float, seed: int, *, smoother: bool = True
) -> dict[str, Any]:
    """One run of the polynomial task: Eq. 25's network (width ``config["poly"]["width"]``,
    initialised from ``PRNGKey(100 + seed)``) trained by full-batch gradient descent on
    ``polynomial_task(..., seed=seed)``.

    Returns the recorded steps, ``n``, the training and test mean squared errors at each recorded
    step and, with ``smoother``, :math:`p^{train}`, :math:`p^{test}` (on the first ``p_rows``
    test inputs) and the mean absolute gap between the network and its closed-loop smoother
    (``smoother_error``) and its realised-step telescoping model (``telescoping_error``).
    """
    c = config["poly"]
    data = polynomial_task(c["d"], c["n_train"], c["n_test"], seed=seed)
    X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    model = quadratic_network(c["width"], epsilon, centred=True)
    params = model.init(jax.random.PRNGKey(100 + seed), c["d"])
    opt = sgd(c["lr"])  # full-batch gradient descent
    X_p = X_test[: c["p_rows"]]
    trackers: dict[str, Any] = {
        "train": predictions_tracker(model.apply, X),
        "test": predictions_tracker(model.apply, X_test),
    }
    if smoother:
        kernel = functools.partial(quadratic_tangent_kernel, epsilon=epsilon)
        trackers["smoother"] = smoother_tracker(
            model, X, y, X_p, opt, kernel_fn=kernel, probes=c.get("probes")
        )
        trackers["telescoping"] = telescoping_tracker(model, X_p)
    res = train(
        model,
        params,
        opt,
        X,
        y,
        steps=c["steps"],
        record_at=recording_steps(c["steps"], log=60),
        trackers=trackers,
        progress=False,
    )
    r = res.records
    out = {
        "steps": res.record_steps,
        "n": len(y),
        "train": np.mean((r["train"] - y) ** 2, axis=1),
        "test": np.mean((r["test"] - y_test) ** 2, axis=1),
    }
    if smoother:
        net = r["test"][:, : c["p_rows"]]
        out.update(
            **_p_record(r["smoother"]),
            smoother_error=np.mean(
                np.abs(r["smoother"]["closed_loop"][:, len(y) :] - net), axis=1
            ),
            telescoping_error=np.mean(np.abs(r["telescoping"] - net), axis=1),
        )
    return out


class MnistTask(NamedTuple):
    """The MNIST experiment's data: ``n_train`` class-balanced training images (all of them for
    ``None``), every test image, and how many test rows the smoother tracks."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    p_rows: int
    dataset: Dataset


def mnist_task(config: Mapping[str, Any]) -> MnistTask:
    """The data of the MNIST experiment of ``config`` (see :class:`MnistTask`)."""
    c = config["mnist"]
    ds = load(config["data"], seed=0)
    if c["n_train"] is None:
        X, y = ds.X_train, ds.y_train
    else:
        X, y = balanced_subsample(ds.X_train, ds.y_train, c["n_train"], seed=0)
    p_rows = len(ds.y_test) if c["p_rows"] is None else c["p_rows"]
    return MnistTask(X, y, ds.X_test, ds.y_test, p_rows, ds)


def _mnist_setup(
    config: Mapping[str, Any],
    alpha: float,
    seed: int,
    *,
    output: str = "identity",
    lr: float | None = None,
    warmup: int | None = None,
    sizes: Mapping[str, Any] | None = None,
):
    """``(config, task, model, params, optimiser, batch)`` of one MNIST run (see
    :func:`mnist_run`); ``config`` with ``sizes`` applied, ``batch`` ``None`` for full batch."""
    if sizes:
        unknown = set(sizes) - {"width", "batch", "n_train"}
        if unknown:
            raise ArgumentError(
                f"sizes may set width, batch and n_train; got {sorted(unknown)}."
            )
        config = {**config, "mnist": {**config["mnist"], **sizes}}
    c = config["mnist"]
    task = mnist_task(config)
    model = mlp((c["width"], c["width"]), init="torch", alpha=alpha, output=output)
    params = model.init(jax.random.PRNGKey(200 + seed), task.X.shape[1])
    opt = adamw(
        c["lr"] if lr is None else lr,
        b2=0.99,
        weight_decay=0.1,
        warmup_steps=c["warmup"] if warmup is None else warmup,
    )
    batch = None if c["batch"] is None or c["batch"] >= len(task.y) else c["batch"]
    return config, task, model, params, opt, batch


def _growth_setup(config: Mapping[str, Any], alpha: float, seed: int):
    """``(task, model, params, optimiser, fit)`` of one MNIST run, ``fit(state, steps, **kw)``
    continuing it (:func:`lensbox.engine.training.train`) in the run's own batch order."""
    _, task, model, params, opt, batch = _mnist_setup(config, alpha, seed)

    def fit(state, steps, **kwargs):
        return train(
            model,
            state,
            opt,
            task.X,
            task.y,
            steps=steps,
            batch_size=batch,
            seed=seed,
            progress=False,
            **kwargs,
        )

    return task, model, params, opt, fit


def growth_run(
    config: Mapping[str, Any],
    alpha: float,
    seed: int,
    *,
    start: int,
    stop: int,
    record_every: int,
) -> dict[str, np.ndarray]:
    """How much the closed-loop smoother's recursion amplifies a disturbance along one MNIST run
    (:func:`lensbox.engine.smoother.growth_tracker`): the run is trained to step ``start``, then
    on to ``stop`` with the tracker, which records its summed log growth every ``record_every``
    steps, beside the kink crossings on the training rows
    (:func:`lensbox.engine.telescoping.kink_tracker`) and the step's batch sharpness
    (:func:`lensbox.engine.smoother.sharpness_tracker`).

    Returns ``{"steps": ..., "log_growth": ... (0 at start), "crossings": ... (the kink crossings
    since start), "sharpness": ... (of the recorded step)}``.
    """
    task, model, params, opt, fit = _growth_setup(config, alpha, seed)
    start, stop = int(start), int(stop)
    record_every = as_count(record_every, "record_every", minimum=1)
    if not 0 <= start < stop:
        raise ArgumentError(f"need 0 <= start < stop; got start={start}, stop={stop}.")
    state = fit(params, start).state if start else params
    res = fit(
        state,
        stop - start,
        trackers={
            "growth": growth_tracker(model, task.X, opt),
            "kinks": kink_tracker(model, task.X),
            "sharpness": sharpness_tracker(model, task.X, opt),
        },
        record_at=sorted({*range(start, stop + 1, record_every), stop}),
    )
    return {
        "steps": np.asarray(res.record_steps),
        "log_growth": np.asarray(res.records["growth"]),
        "crossings": np.asarray(res.records["kinks"]["crossings"]),
        "sharpness": np.asarray(res.records["sharpness"]["sharpness"]),
    }


#: What :func:`frozen_growth` can hold fixed.
FREEZE = ("both", "kernels", "statistics")


def frozen_growth(
    config: Mapping[str, Any],
    alpha: float,
    seed: int,
    *,
    starts: Sequence[int],
    horizon: int,
    freeze: str = "both",
) -> np.ndarray:
    """The same recursion as :func:`growth_run`, frozen at each of ``starts``: the kernels and the
    optimiser's statistics of that step held while the batches follow the run (one kernel
    switching between batches). ``freeze="kernels"`` holds the Jacobians only (Adam's statistics
    follow the run), ``"statistics"`` Adam's statistics only. Returns its summed log growth after
    ``horizon`` steps, one value per start (sorted); the run is trained once, from start to
    start."""
    if freeze not in FREEZE:
        raise ArgumentError(f"freeze must be one of {FREEZE}; got {freeze!r}.")
    task, model, state, opt, fit = _growth_setup(config, alpha, seed)
    horizon = as_count(horizon, "horizon", minimum=1)
    out, done = [], 0
    for start in as_counts(starts, "starts", minimum=1):  # sorted, unique
        state = fit(state, int(start) - done).state
        done = int(start)
        frozen = growth_tracker(
            model,
            task.X,
            opt,
            frozen_at=(
                state.params if freeze != "statistics" else None,
                state.opt_state if freeze != "kernels" else None,
            ),
        )
        res = fit(
            state, horizon, trackers={"growth": frozen}, record_at=[done + horizon]
        )
        out.append(float(np.asarray(res.records["growth"])[-1]))
    return np.asarray(out)


def mnist_run(
    config: Mapping[str, Any],
    alpha: float,
    seed: int,
    *,
    output: str = "identity",
    smoother: bool = True,
    steps: int | None = None,
    lr: float | None = None,
    warmup: int | None = None,
    record_every: int | None = None,
    sizes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One run of the MNIST experiment: Omnigrok's MLP (three linear layers of width
    ``config["mnist"]["width"]``, PyTorch's initialisation times ``alpha``, initialised from
    ``PRNGKey(200 + seed)``) trained with AdamW (:math:`\\beta_2 = 0.99`, weight decay 0.1) on the
    squared loss; ``steps``, ``lr`` and ``warmup`` default to the configuration's, and ``sizes``
    (``width``, ``batch``, ``n_train``) replaces its sizes. The run is recorded at 50 log-spaced
    steps, or every ``record_every`` steps.

    Returns the recorded steps, ``n``, the training and test misclassification rates (threshold
    0.5), the test MSE, the mean :math:`|f_0(x)|` on the test set, the gap between the network and
    its realised-step telescoping model on the first ``p_rows`` test inputs and, with
    ``smoother``, :math:`p^{train}`, :math:`p^{test}` and the closed-loop smoother's gap; with the
    exact smoother (no ``probes``) also the step-scaled sharpness of the smoother's recursion, its
    running maximum and the optimiser's stability limit (:func:`~lensbox.engine.smoother.stability_limit`).
    """
    config, task, model, params, opt, batch = _mnist_setup(
        config, alpha, seed, output=output, lr=lr, warmup=warmup, sizes=sizes
    )
    c = config["mnist"]
    X, y, X_test, y_test = task.X, task.y, task.X_test, task.y_test
    steps = c["steps"] if steps is None else steps
    X_p = X_test[: task.p_rows]
    trackers: dict[str, Any] = {
        "train": predictions_tracker(model.apply, X),
        "test": predictions_tracker(model.apply, X_test),
        "telescoping": telescoping_tracker(model, X_p),
    }
    # With the exact smoother, also the step-scaled sharpness of its recursion on the training
    # rows (lensbox.engine.smoother.sharpness_tracker: an n x n kernel a step).
    exact = smoother and c.get("probes") is None
    if smoother:
        trackers["smoother"] = smoother_tracker(
            model, X, y, X_p, opt, probes=c.get("probes")
        )
    if exact:
        trackers["sharpness"] = sharpness_tracker(model, X, opt)
    res = train(
        model,
        params,
        opt,
        X,
        y,
        steps=steps,
        batch_size=batch,
        seed=seed,
        record_at=recording_steps(
            steps, every=record_every, log=None if record_every else 50
        ),
        trackers=trackers,
        progress=False,
    )
    r = res.records
    net = r["test"][:, : task.p_rows]
    out = {
        "steps": res.record_steps,
        "n": len(y),
        "train": np.mean((r["train"] > 0.5) != y, axis=1),
        "test": np.mean((r["test"] > 0.5) != y_test, axis=1),
        "test_mse": np.mean((r["test"] - y_test) ** 2, axis=1),
        "f0": float(np.mean(np.abs(r["test"][0]))),
        "telescoping_error": np.mean(np.abs(r["telescoping"] - net), axis=1),
        "telescoping_mse": np.mean((r["telescoping"] - net) ** 2, axis=1),
    }
    if smoother:
        closed = r["smoother"]["closed_loop"][:, len(y) :] - net
        out.update(
            **_p_record(r["smoother"]),
            smoother_error=np.mean(np.abs(closed), axis=1),
            smoother_mse=np.mean(closed**2, axis=1),
        )
    if exact:
        out.update(
            sharpness=np.asarray(r["sharpness"]["sharpness"]),
            max_sharpness=np.asarray(r["sharpness"]["max_sharpness"]),
            stability_limit=stability_limit(opt),
        )
    return out


def unit_calls(
    config: Mapping[str, Any],
) -> dict[str, tuple[str, tuple, dict[str, Any]]]:
    """Every run of the chapter, by unit name (:func:`unit_name`), as ``(function, args, keyword
    args)``:

    * ``poly_E_seedS``: the polynomial task at :math:`\\epsilon = E`, the smoother tracked at
      :math:`\\epsilon = 0.2` and on every :math:`\\epsilon`'s first seed;
    * ``mnist_A_seedS``: the large initialisation :math:`\\alpha = A`, the smoother tracked on the
      main :math:`\\alpha`'s first ``smoother_seeds`` seeds for the whole run;
    * ``mnist-p_A_seedS``: the smoother of every :math:`\\alpha` on its first ``p_seeds`` seeds
      for ``p_steps`` steps, recorded every ``p_every`` steps (Fig. 12's p curves);
    * ``control_OUTPUT_seedS``: :math:`\\alpha = 1` with and without a sigmoid output, recorded
      every ``control_every`` steps;
    * ``control-paper_OUTPUT_seedS``: the same, network only, at the paper's sizes as far as the
      data allow (``control_paper``);
    * ``approx_NAME``: the main :math:`\\alpha` at each of :data:`APPROX_RATES` for
      ``approx_steps`` steps, without the smoother.
    """
    c = config["mnist"]
    main = config["main_alpha"]
    calls: dict[str, tuple[str, tuple, dict[str, Any]]] = {}
    for eps in config["epsilons"]:
        for seed in range(config["poly"]["seeds"]):
            calls[unit_name("poly", eps, seed)] = (
                "poly",
                (eps, seed),
                {"smoother": eps == 0.2 or seed == 0},
            )
    for a in config["alphas"]:
        for seed in range(c["seeds"]):
            calls[unit_name("mnist", a, seed)] = (
                "mnist",
                (a, seed),
                {"smoother": a == main and seed < c["smoother_seeds"]},
            )
    for a in config["alphas"]:
        for seed in range(c["p_seeds"]):
            calls[unit_name("mnist-p", a, seed)] = (
                "mnist",
                (a, seed),
                {"steps": c["p_steps"], "record_every": c["p_every"]},
            )
    for out in CONTROL_OUTPUTS:
        for seed in range(c["seeds"]):
            calls[unit_name("control", out, seed)] = (
                "mnist",
                (1.0, seed),
                {
                    "output": out,
                    "steps": c["control_steps"],
                    "smoother": seed < c["smoother_seeds"],
                    "record_every": c["control_every"],
                },
            )
            calls[unit_name("control-paper", out, seed)] = (
                "mnist",
                (1.0, seed),
                {
                    "output": out,
                    "steps": c["control_steps"],
                    "smoother": False,
                    "record_every": c["control_every"],
                    "sizes": c["control_paper"],
                },
            )
    for name, lr in APPROX_RATES.items():
        calls[unit_name("approx", name)] = (
            "mnist",
            (main, 0),
            {"smoother": False, "steps": c["approx_steps"], "lr": lr, "warmup": 100},
        )
    return calls


def unit_name(group: str, setting: float | str, seed: int | None = None) -> str:
    """A unit's name (also its file name): ``GROUP_SETTING`` or ``GROUP_SETTING_seedS``, the
    setting written with ``g`` for a number and with ``-`` for spaces in a name."""
    text = f"{setting:g}" if isinstance(setting, float) else str(setting)
    name = f"{group}_{text.replace(' ', '-')}"
    return name if seed is None else f"{name}_seed{seed}"


def run_unit(config: Mapping[str, Any], unit: str) -> dict[str, Any]:
    """One run of the chapter (see :func:`unit_calls`)."""
    calls = unit_calls(config)
    if unit not in calls:
        raise ArgumentError(f"grokking has no unit {unit!r}; its units: {list(calls)}.")
    kind, args, kwargs = calls[unit]
    return (poly_run if kind == "poly" else mnist_run)(config, *args, **kwargs)


def arrange(config: Mapping[str, Any], units: Mapping[str, Any]) -> dict[str, Any]:
    """The units regrouped as the chapter draws them: ``poly[eps]``, ``mnist[alpha]``,
    ``control[output]`` and ``control_paper[output]`` (lists over seeds); ``mnist_p[alpha]``, the
    shorter runs with the smoother of each :math:`\\alpha` (a list over seeds); ``mnist_full``,
    the main :math:`\\alpha`'s runs with the smoother for the whole run; and ``approx[name]``."""
    c, main = config["mnist"], config["main_alpha"]
    mnist = {
        a: [units[unit_name("mnist", a, s)] for s in range(c["seeds"])]
        for a in config["alphas"]
    }
    return {
        "poly": {
            eps: [
                units[unit_name("poly", eps, s)] for s in range(config["poly"]["seeds"])
            ]
            for eps in config["epsilons"]
        },
        "mnist": mnist,
        "mnist_p": {
            a: [units[unit_name("mnist-p", a, s)] for s in range(c["p_seeds"])]
            for a in config["alphas"]
        },
        "mnist_full": [r for r in mnist[main] if "p_train" in r],
        "control": {
            out: [units[unit_name("control", out, s)] for s in range(c["seeds"])]
            for out in CONTROL_OUTPUTS
        },
        "control_paper": {
            out: [units[unit_name("control-paper", out, s)] for s in range(c["seeds"])]
            for out in CONTROL_OUTPUTS
        },
        "approx": {name: units[unit_name("approx", name)] for name in APPROX_RATES},
    }


def _unit_seeds(config: Mapping[str, Any], unit: str) -> list[int]:
    """A run's seeds: the polynomial task's data seed and initialisation key, or the MNIST
    network's initialisation key and its order of mini-batches."""
    kind, args, _ = unit_calls(config)[unit]
    seed = args[1]
    return [seed, 100 + seed] if kind == "poly" else [200 + seed, seed]


EXPERIMENT = Experiment(
    name="grokking",
    description="polynomial and MNIST grokking runs with their effective parameters "
    "(section 4.1, Figs. 4, 11-13)",
    configs=CONFIGS,
    units=lambda config: list(unit_calls(config)),
    run_unit=run_unit,
    seeds=_unit_seeds,
    paper_smoke=PAPER_SMOKE,
    data=lambda config, scale: {config["data"]: identity(config["data"], scale)},
)
