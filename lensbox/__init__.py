"""lensbox: the telescoping model of deep learning, in JAX.

A companion library to the book reproducing "Deep Learning Through A Telescoping Lens"
(Jeffares, Curth & van der Schaar, NeurIPS 2024). Its packages are layers; each imports only
from the layers above it in this list (``tests/test_package.py`` checks it):

* :mod:`lensbox.errors`: the error types lensbox raises;
* :mod:`lensbox.engine`: networks and adapters, optimisers and their linear pieces, training, the
  telescoping model (Eq. 5), tangent kernels, the smoother and effective parameters, seeds trained
  side by side, statistics;
* :mod:`lensbox.runtime`: the book runtime: the ``LENSBOX_SCALE`` switch, the paper's claims as
  checks, plotting, and what a chapter calls first;
* :mod:`lensbox.data`: the paper's data sets and their offline stand-ins;
* the case studies, one package each: :mod:`lensbox.complexity` (section 4.1: classical smoothers,
  the grokking model, smoothers against networks), :mod:`lensbox.boosting` (section 4.2: boosted
  trees as Eq. 9, the irregular-input protocol) and :mod:`lensbox.connectivity` (section 4.3:
  networks with BatchNorm, augmentation, spawning, barriers).

The names most chapters use are available at the top (``lensbox.train``, ``lensbox.smooth``,
``lensbox.telescope``, ...), and every module is loaded on first use: ``lensbox.engine.smoother``
works after a bare ``import lensbox``. The speed benchmarks live beside the package, in
``benchmarks/`` (``python -m benchmarks.bench``).
"""

from __future__ import annotations


from lensbox._lazy import attach
from lensbox.errors import (
    ArgumentError,
    ArgumentTypeError,
    DataFileError,
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
    "quadratic_network": "complexity.grokking",
    "quadratic_tangent_kernel": "complexity.grokking",
    "tangent_kernel": "engine.kernels",
    "layer_trace_shares": "engine.kernels",
    "adam": "engine.optim",
    "adamw": "engine.optim",
    "sgd": "engine.optim",
    "effective_parameters": "engine.smoother",
    "smooth": "engine.smoother",
    "smoother_tracker": "engine.smoother",
    "sharpness_tracker": "engine.smoother",
    "growth_tracker": "engine.smoother",
    "stability_limit": "engine.smoother",
    "SmootherRun": "engine.smoother",
    "TelescopeRun": "engine.telescoping",
    "approximation_error": "engine.telescoping",
    "first_order_error": "engine.telescoping",
    "kink_tracker": "engine.telescoping",
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
    "check": "runtime.claims",
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
        "DataFileError",
        "DivergenceError",
        "LensboxError",
        "NonFiniteError",
        "ShapeError",
    ]
)


# Every public module and sub-package is found in the package (not typed by hand) and loaded
# on first access, so ``lensbox.engine.smoother`` works after a bare ``import lensbox``.
__getattr__, __dir__, SUBMODULES = attach(__name__, __path__, _EXPORTS)
