r"""The telescoping model (Eq. 5 i) and the model linearised at initialisation (section 2.3).

A trained network is its initial prediction plus the sum of its per-step changes (Eq. 4, exact).
The telescoping model replaces each change by its first-order Taylor term at the previous
parameters, using the *realised* step of the real run:

.. math::
    \tilde f_{\theta_T}(x) = f_{\theta_0}(x) + \sum_{t=1}^T \nabla_\theta f_{\theta_{t-1}}(x)^\top
    \Delta\theta_t .

Each term is one Jacobian-vector product (``jax.jvp``), so no Jacobian is ever built and the model
works for any optimiser. The lazy baseline linearises once, at :math:`\theta_0`:

.. math:: f^{lin}_{\theta_t}(x) = f_{\theta_0}(x) + \nabla_\theta f_{\theta_0}(x)^\top (\theta_t - \theta_0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine.checks import as_inputs
from lensbox.errors import ArgumentError, ShapeError
from lensbox.engine.models import Apply, Model, apply_of
from lensbox.engine.training import (
    Tracker,
    TrainResult,
    TrainState,
    predictions_tracker,
    train,
)

Params = Any
tree_map = jax.tree_util.tree_map


def linearised_step(
    model: Model | Apply, params: Params, delta: Params, X
) -> jax.Array:
    r""":math:`\Delta\tilde f_t(X) = \nabla_\theta f_{\theta}(X)^\top \Delta\theta` (Eq. 2), by ``jax.jvp``."""
    apply = apply_of(model)
    return jax.jvp(lambda p: apply(p, X), (params,), (delta,))[1]


def first_order_error(
    model: Model | Apply, params: Params, delta: Params, X
) -> jax.Array:
    r"""The error of Eq. 2 for one step: :math:`f_{\theta+\Delta\theta}(X) - f_\theta(X) -
    \nabla f_\theta(X)^\top\Delta\theta`, which is :math:`O(\|\Delta\theta\|^2)`."""
    apply = apply_of(model)
    f0, df = jax.jvp(lambda p: apply(p, X), (params,), (delta,))
    return apply(tree_map(jnp.add, params, delta), X) - f0 - df


def telescoping_tracker(model: Model | Apply, X_eval) -> Tracker:
    r"""A :class:`~lensbox.engine.training.Tracker` accumulating :math:`\tilde f_{\theta_t}(X_{eval})`.

    The state starts at :math:`f_{\theta_0}(X_{eval})` and each step adds
    :math:`\nabla_\theta f_{\theta_{t-1}}(X_{eval})^\top\Delta\theta_t` with the realised step.
    """
    apply, X_eval = apply_of(model), as_inputs(X_eval, "X_eval")
    return Tracker(
        init=lambda params: apply(params, X_eval),
        update=lambda f_tilde, info: (
            f_tilde + linearised_step(apply, info.params_prev, info.delta, X_eval)
        ),
        record=lambda f_tilde, params: f_tilde,
    )


def kink_tracker(model: Model, X) -> Tracker:
    r"""Counts the kink crossings of a ReLU :func:`~lensbox.engine.models.mlp` on the rows ``X``:
    the (row, hidden unit) pairs whose pre-activation changes sign between :math:`\theta_{t-1}`
    and :math:`\theta_t`. There the network's Jacobian jumps, the first-order term of the step
    (Eq. 5) misses the most, and the tangent kernels of consecutive steps differ by a whole
    unit's contribution.

    Each record is ``{"crossings": pairs crossed, summed over the steps so far, "rows": rows with
    at least one crossing, summed over the steps so far}``; the difference of two records counts
    the crossings between them.
    """
    spec = getattr(model, "spec", None)
    if spec is None or getattr(spec, "activation", None) != "relu":
        raise ArgumentError(
            "kink_tracker needs a ReLU network made by lensbox.mlp (its kinks are where a "
            f"pre-activation changes sign); got {getattr(spec, 'activation', model)!r}."
        )
    X = as_inputs(X, "X")

    def signs(params):
        h, out = X, []
        for layer in params[:-1]:
            z = h @ layer["w"] + layer["b"]
            out.append(z > 0)
            h = jax.nn.relu(z)
        return jnp.concatenate(out, axis=1)  # rows x hidden units

    def init(params):
        zero = jnp.zeros((), jnp.result_type(int))
        return {"crossings": zero, "rows": zero}

    def update(state, info):
        changed = signs(info.params_prev) != signs(info.params)
        return {
            "crossings": state["crossings"]
            + jnp.sum(changed, dtype=state["crossings"].dtype),
            "rows": state["rows"]
            + jnp.sum(changed.any(axis=1), dtype=state["rows"].dtype),
        }

    return Tracker(init, update, lambda state, params: state)


def linearised_tracker(model: Model | Apply, X_eval) -> Tracker:
    r"""Records :math:`f^{lin}_{\theta_t}(X_{eval})`, the first-order expansion around
    :math:`\theta_0` evaluated at the real run's parameters (no per-step work)."""
    apply, X_eval = apply_of(model), as_inputs(X_eval, "X_eval")

    def record(params0, params):
        step = tree_map(jnp.subtract, params, params0)
        f0, df = jax.jvp(lambda p: apply(p, X_eval), (params0,), (step,))
        return f0 + df

    return Tracker(
        init=lambda params: params, update=lambda params0, info: params0, record=record
    )


def approximation_error(f, f_approx, axis: int | tuple[int, ...] = -1):
    r"""Mean absolute error :math:`\frac1m\sum_x |f(x) - \tilde f(x)|` over ``axis`` (section 2.5).

    Takes two arrays of predictions, not a run: for a :class:`TelescopeRun` use its
    ``telescoping_error`` and ``linearised_error`` (this function applied to ``run.network`` and
    ``run.telescoping`` or ``run.linearised``, per recorded step).

    Examples:
        >>> import numpy as np
        >>> from lensbox.engine.telescoping import approximation_error
        >>> f = np.array([[1.0, 2.0], [3.0, 5.0]])  # (records, rows)
        >>> approximation_error(f, f + [[0.1, -0.3], [0.0, 1.0]]).round(3).tolist()
        [0.2, 0.5]
    """
    return np.mean(np.abs(np.asarray(f) - np.asarray(f_approx)), axis=axis)


@dataclass
class TelescopeRun:
    """Predictions on the evaluation inputs at each recorded step.

    Attributes:
        record_steps: recorded steps (0 is the initialisation).
        network: :math:`f_{\\theta_t}(X_{eval})`, shape (records, m).
        telescoping: :math:`\\tilde f_{\\theta_t}(X_{eval})`.
        linearised: :math:`f^{lin}_{\\theta_t}(X_{eval})`.
        train: the underlying :class:`~lensbox.engine.training.TrainResult`.
    """

    record_steps: np.ndarray
    network: np.ndarray
    telescoping: np.ndarray
    linearised: np.ndarray
    train: TrainResult

    @property
    def telescoping_error(self) -> np.ndarray:
        """Mean absolute error of the telescoping model at each recorded step (over the rows, and
        the outputs when there are several)."""
        return approximation_error(
            self.network, self.telescoping, axis=self._per_record
        )

    @property
    def linearised_error(self) -> np.ndarray:
        """Mean absolute error of the linearised model at each recorded step."""
        return approximation_error(self.network, self.linearised, axis=self._per_record)

    @property
    def _per_record(self) -> tuple[int, ...]:
        return tuple(range(1, np.ndim(self.network)))


def telescope(
    model: Model | Apply,
    params: Params | TrainState,
    optimizer,
    X,
    y,
    X_eval=None,
    *,
    steps: int,
    record_at: Sequence[int] | None = None,
    **train_kwargs,
) -> TelescopeRun:
    r"""Train and track the network, the telescoping model and the linearised model on ``X_eval``.

    At each recorded step :math:`t` it keeps, on every row of ``X_eval``, the network
    :math:`f_{\theta_t}`, the telescoping model :math:`\tilde f_{\theta_t}` (Eq. 5 (i): the
    network at initialisation plus one first-order update per step, from the realised steps) and
    the model linearised at initialisation :math:`f^{lin}_{\theta_t}` (section 2.3).

    Args:
        model: a :class:`~lensbox.engine.models.Model` or an ``apply(params, X)`` function.
        params: :math:`\theta_0`, or a :class:`~lensbox.engine.training.TrainState` to continue.
        optimizer: a lensbox optimiser (:mod:`lensbox.engine.optim`) or any optax
            ``GradientTransformation``: only the realised steps are read.
        X, y: training inputs and targets, as in :func:`lensbox.train`.
        X_eval: the inputs on which the three models are tracked (an array or pytree with the
            per-row shape of ``X``); ``None`` tracks them on the training inputs ``X``, as
            :func:`lensbox.smooth` does.
        steps: number of optimisation steps T.
        record_at: the steps at which to record (in [0, T]); by default only steps 0 and T.
            :func:`lensbox.recording_steps` makes log- or evenly-spaced ones.
        **train_kwargs: the other arguments of :func:`lensbox.train`: ``batch_size`` (default
            ``None``: full batch), ``loss`` (default squared), ``seed`` (the batch order),
            ``progress``, ``trackers`` (more trackers, recorded in ``run.train.records``), ...

    Returns:
        A :class:`TelescopeRun`; ``run.telescoping_error`` and ``run.linearised_error`` give
        each model's mean absolute gap to the network at each recorded step.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> import lensbox
        >>> X = jnp.linspace(-1, 1, 16)[:, None]
        >>> y = jnp.sin(3 * X[:, 0])
        >>> X_test = jnp.linspace(-0.95, 0.95, 7)[:, None]
        >>> net = lensbox.mlp((32,))
        >>> params = net.init(jax.random.PRNGKey(0), 1)
        >>> run = lensbox.telescope(
        ...     net, params, lensbox.sgd(0.05), X, y, X_test,
        ...     steps=100, record_at=[0, 10, 100], progress=False,
        ... )
        >>> run.record_steps.tolist(), run.network.shape  # (records, test rows)
        ([0, 10, 100], (3, 7))

        At step 0 the telescoping model is the network itself; after training it still tracks
        the network far more closely than the model linearised once at initialisation.

        >>> bool(np.allclose(run.telescoping[0], run.network[0]))
        True
        >>> bool(run.telescoping_error[-1] < run.linearised_error[-1])
        True
    """
    X_eval = as_inputs(X if X_eval is None else X_eval, "X_eval")
    shapes = [
        (np.shape(a)[1:], np.shape(b)[1:])
        for a, b in zip(jax.tree_util.tree_leaves(X), jax.tree_util.tree_leaves(X_eval))
    ]
    for x_shape, eval_shape in shapes:
        if x_shape != eval_shape:
            raise ShapeError(
                f"X_eval rows have shape {eval_shape} but the rows of X have shape "
                f"{x_shape}; the model expects the latter."
            )
    trackers = {
        "network": predictions_tracker(model, X_eval),
        "telescoping": telescoping_tracker(model, X_eval),
        "linearised": linearised_tracker(model, X_eval),
        **train_kwargs.pop("trackers", {}),
    }
    result = train(
        model,
        params,
        optimizer,
        X,
        y,
        steps=steps,
        trackers=trackers,
        record_at=record_at,
        **train_kwargs,
    )
    r = result.records
    return TelescopeRun(
        result.record_steps,
        np.asarray(r["network"]),
        np.asarray(r["telescoping"]),
        np.asarray(r["linearised"]),
        result,
    )
