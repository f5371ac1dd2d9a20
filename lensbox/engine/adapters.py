"""Models from other JAX libraries as lensbox models: here, Equinox modules.

lensbox needs only ``apply(params, X)`` with the trainable arrays in a pytree ``params`` (section 2
of the paper: the telescoping model needs :math:`f_\\theta(x)` and its gradient in :math:`\\theta`,
nothing about the architecture). An Equinox module holds its arrays and its structure together;
:func:`from_equinox` splits them with ``equinox.partition`` and puts them back together inside
``apply``. Equinox is an optional dependency (``pip install equinox``); the *Telescoping any JAX
model* chapter shows the adapter at work.
"""

from __future__ import annotations

from typing import Any

import jax

from lensbox.errors import ArgumentTypeError
from lensbox.engine.models import Model

Params = Any


def from_equinox(module, *, batched: bool = False) -> tuple[Model, Params]:
    """Split an Equinox module into a lensbox :class:`~lensbox.engine.models.Model` and its parameters.

    Args:
        module: an ``equinox.Module`` mapping one example to its prediction (the Equinox
            convention; ``batched=True`` if it already maps a batch).
        batched: whether ``module`` takes a whole batch ``(n, ...)`` itself. Otherwise ``apply``
            maps it over the rows with ``jax.vmap``.

    Returns:
        ``(model, params)``: ``model.apply(params, X)`` gives the predictions, shape ``(n,)`` when
        the module returns a scalar or a length-1 vector per example (the paper's k = 1) and
        ``(n, k)`` for k outputs; ``params`` holds the module's floating-point arrays (everything
        ``equinox.is_inexact_array`` accepts), the rest stays fixed. ``model.init`` is ``None``:
        the module was initialised when it was built.
    """
    try:
        import equinox as eqx
    except ImportError as err:  # pragma: no cover - equinox is in the test extra
        raise ImportError("from_equinox needs Equinox: pip install equinox") from err
    if not isinstance(module, eqx.Module):
        raise ArgumentTypeError(
            f"module must be an equinox.Module; got {type(module).__name__}."
        )
    if not isinstance(batched, bool):
        raise ArgumentTypeError(f"batched must be True or False; got {batched!r}.")
    params, static = eqx.partition(module, eqx.is_inexact_array)

    def apply(p: Params, X) -> jax.Array:
        net = eqx.combine(p, static)
        out = net(X) if batched else jax.vmap(net)(X)
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    return Model(None, apply, apply, None), params
