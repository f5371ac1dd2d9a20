"""lensbox: the telescoping model of deep learning, in JAX.

A companion library to the book reproducing "Deep Learning Through A Telescoping Lens"
(Jeffares, Curth & van der Schaar, NeurIPS 2024). One module per idea of the paper, each loaded on
first use (``lensbox.data`` works without ``import lensbox.data``):

* :mod:`lensbox.config`: the ``LENSBOX_SCALE`` switch, seeds, precision, style;
* :mod:`lensbox.models`: networks as ``(init, apply)`` pairs, and :func:`as_model` for any other;
* :mod:`lensbox.adapters`: Equinox modules as lensbox models;
* :mod:`lensbox.optim`: optimisers with the paper's conventions made explicit;
* :mod:`lensbox.training`: the training loop (:func:`train`) and trackers;
* :mod:`lensbox.telescoping`: the telescoping model (Eq. 5, :func:`telescope`) and the linearised
  baseline;
* :mod:`lensbox.kernels`: tangent-kernel blocks (structured for MLPs, generic for any model);
* :mod:`lensbox.transforms`: the linear pieces every optimiser is made of (decay, momentum, bias
  correction, preconditioner, learning-rate schedule), shared by training and the smoother;
* :mod:`lensbox.smoother`: the smoother form for squared loss and effective parameters;
* :mod:`lensbox.faithfulness`: both readings of the smoother against the network, and the bound;
* :mod:`lensbox.boosting`: boosted trees as a telescoping sum (Eq. 9) and their kernel norms;
* :mod:`lensbox.irregular`: the irregular-test-input protocol of the tabular case study;
* :mod:`lensbox.baselines`: classical smoothers (ridge, k-NN, tree) as smoother matrices;
* :mod:`lensbox.networks`, :mod:`lensbox.augment`, :mod:`lensbox.spawning` and
  :mod:`lensbox.connectivity`: the linear mode connectivity case study (ResNet-20 and a residual
  MLP with BatchNorm, augmentation, spawning children, barriers and gradient change);
* :mod:`lensbox.data`: the paper's data sets and their offline stand-ins;
* :mod:`lensbox.sweeps`: many seeds trained side by side with the paper's stopping rule;
* :mod:`lensbox.plotting`: the book's style and figure helpers; :mod:`lensbox.bench`: speed;
* :mod:`lensbox.errors`: the error types lensbox raises; :mod:`lensbox.claims`: the paper's
  claims checked by the book; :mod:`lensbox.statistics`: means and standard errors over seeds.
"""

from __future__ import annotations

import importlib
import pkgutil

from lensbox.config import budget, by_scale, scale, setup
from lensbox.errors import (
    ArgumentError,
    ArgumentTypeError,
    DivergenceError,
    LensboxError,
    NonFiniteError,
    ShapeError,
)

__version__ = "0.1.0"

# Every public submodule, found in the package itself (not typed by hand): each is loaded on
# first access, so ``lensbox.spawning`` works after a bare ``import lensbox``.
SUBMODULES = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
)

# public name -> the module that defines it; loaded when first asked for.
_EXPORTS = {
    "Model": "models",
    "as_model": "models",
    "count_parameters": "models",
    "mlp": "models",
    "quadratic_network": "models",
    "quadratic_tangent_kernel": "models",
    "tangent_kernel": "kernels",
    "layer_trace_shares": "kernels",
    "adam": "optim",
    "adamw": "optim",
    "sgd": "optim",
    "effective_parameters": "smoother",
    "smooth": "smoother",
    "smoother_tracker": "smoother",
    "SmootherRun": "smoother",
    "TelescopeRun": "telescoping",
    "approximation_error": "telescoping",
    "first_order_error": "telescoping",
    "linearised_step": "telescoping",
    "linearised_tracker": "telescoping",
    "telescope": "telescoping",
    "telescoping_tracker": "telescoping",
    "BatchOrder": "training",
    "StepInfo": "training",
    "Tracker": "training",
    "TrainResult": "training",
    "TrainState": "training",
    "parameters_tracker": "training",
    "predictions_tracker": "training",
    "recording_steps": "training",
    "train": "training",
    "mean_and_se": "statistics",
    "ClaimError": "claims",
    "claim": "claims",
}

__all__ = sorted(
    [
        *_EXPORTS,
        "budget",
        "by_scale",
        "scale",
        "setup",
        "ArgumentError",
        "ArgumentTypeError",
        "DivergenceError",
        "LensboxError",
        "NonFiniteError",
        "ShapeError",
    ]
)


def __getattr__(name: str):
    """Load a submodule, or the module defining a public name, on first access (PEP 562)."""
    if name in SUBMODULES:
        return importlib.import_module(f"lensbox.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"lensbox.{_EXPORTS[name]}"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'lensbox' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *SUBMODULES, *_EXPORTS})
