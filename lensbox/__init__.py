"""lensbox: the telescoping model of deep learning, in JAX.

A companion library to the book reproducing "Deep Learning Through A Telescoping Lens"
(Jeffares, Curth & van der Schaar, NeurIPS 2024). One module per idea of the paper, each loaded on
first use (``lensbox.data`` works without ``import lensbox.data``):

* :mod:`lensbox.runtime.scale`: the ``LENSBOX_SCALE`` switch, seeds, precision, style;
* :mod:`lensbox.engine.models`: networks as ``(init, apply)`` pairs, and :func:`as_model` for any other;
* :mod:`lensbox.engine.adapters`: Equinox modules as lensbox models;
* :mod:`lensbox.engine.optim`: optimisers with the paper's conventions made explicit;
* :mod:`lensbox.engine.training`: the training loop (:func:`train`) and trackers;
* :mod:`lensbox.engine.telescoping`: the telescoping model (Eq. 5, :func:`telescope`) and the linearised
  baseline;
* :mod:`lensbox.engine.kernels`: tangent-kernel blocks (structured for MLPs, generic for any model);
* :mod:`lensbox.engine.transforms`: the linear pieces every optimiser is made of (decay, momentum, bias
  correction, preconditioner, learning-rate schedule), shared by training and the smoother;
* :mod:`lensbox.engine.smoother`: the smoother form for squared loss and effective parameters;
* :mod:`lensbox.faithfulness`: both readings of the smoother against the network, and the bound;
* :mod:`lensbox.boosting`: boosted trees as a telescoping sum (Eq. 9) and their kernel norms;
* :mod:`lensbox.irregular`: the irregular-test-input protocol of the tabular case study;
* :mod:`lensbox.baselines`: classical smoothers (ridge, k-NN, tree) as smoother matrices;
* :mod:`lensbox.networks`, :mod:`lensbox.augment`, :mod:`lensbox.spawning` and
  :mod:`lensbox.connectivity`: the linear mode connectivity case study (ResNet-20 and a residual
  MLP with BatchNorm, augmentation, spawning children, barriers and gradient change);
* :mod:`lensbox.data`: the paper's data sets and their offline stand-ins;
* :mod:`lensbox.engine.seeds`: many seeds trained side by side with the paper's stopping rule;
* :mod:`lensbox.runtime.plotting`: the book's style and figure helpers; :mod:`lensbox.bench`: speed;
* :mod:`lensbox.errors`: the error types lensbox raises; :mod:`lensbox.runtime.claims`: the paper's
  claims checked by the book; :mod:`lensbox.engine.statistics`: means and standard errors over seeds.
"""

from __future__ import annotations


from lensbox._lazy import attach
from lensbox.errors import (
    ArgumentError,
    ArgumentTypeError,
    DivergenceError,
    LensboxError,
    NonFiniteError,
    ShapeError,
)

__version__ = "0.1.0"

# public name -> the module that defines it; loaded when first asked for.
_EXPORTS = {
    "Model": "engine.models",
    "as_model": "engine.models",
    "count_parameters": "engine.models",
    "mlp": "engine.models",
    "quadratic_network": "engine.models",
    "quadratic_tangent_kernel": "engine.models",
    "tangent_kernel": "engine.kernels",
    "layer_trace_shares": "engine.kernels",
    "adam": "engine.optim",
    "adamw": "engine.optim",
    "sgd": "engine.optim",
    "effective_parameters": "engine.smoother",
    "smooth": "engine.smoother",
    "smoother_tracker": "engine.smoother",
    "SmootherRun": "engine.smoother",
    "TelescopeRun": "engine.telescoping",
    "approximation_error": "engine.telescoping",
    "first_order_error": "engine.telescoping",
    "linearised_step": "engine.telescoping",
    "linearised_tracker": "engine.telescoping",
    "telescope": "engine.telescoping",
    "telescoping_tracker": "engine.telescoping",
    "BatchOrder": "engine.training",
    "StepInfo": "engine.training",
    "Tracker": "engine.training",
    "TrainResult": "engine.training",
    "TrainState": "engine.training",
    "parameters_tracker": "engine.training",
    "predictions_tracker": "engine.training",
    "recording_steps": "engine.training",
    "train": "engine.training",
    "mean_and_se": "engine.statistics",
    "ClaimError": "runtime.claims",
    "claim": "runtime.claims",
    "budget": "runtime.scale",
    "by_scale": "runtime.scale",
    "scale": "runtime.scale",
    "describe": "runtime.chapter",
    "setup": "runtime.chapter",
}

__all__ = sorted(
    [
        *_EXPORTS,
        "ArgumentError",
        "ArgumentTypeError",
        "DivergenceError",
        "LensboxError",
        "NonFiniteError",
        "ShapeError",
    ]
)


# Every public module and sub-package is found in the package (not typed by hand) and loaded
# on first access, so ``lensbox.engine.smoother`` works after a bare ``import lensbox``.
__getattr__, __dir__, SUBMODULES = attach(__name__, __path__, _EXPORTS)
