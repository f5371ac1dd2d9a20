"""lensbox: the telescoping model of deep learning, in JAX.

A companion library to the book reproducing "Deep Learning Through A Telescoping Lens"
(Jeffares, Curth & van der Schaar, NeurIPS 2024). One module per idea of the paper:

* :mod:`lensbox.config`: the ``LENSBOX_SCALE`` switch, seeds, precision, style;
* :mod:`lensbox.models`: networks as ``(init, apply)`` pairs;
* :mod:`lensbox.optim`: optimisers with the paper's conventions made explicit;
* :mod:`lensbox.train`: the training loop and trackers;
* :mod:`lensbox.telescope`: the telescoping model (Eq. 5) and the linearised baseline;
* :mod:`lensbox.kernels`: tangent-kernel blocks (structured for MLPs, generic for any model);
* :mod:`lensbox.smoother`: the smoother form for squared loss and effective parameters;
* :mod:`lensbox.data`: the paper's data sets and their offline stand-ins;
* :mod:`lensbox.sweeps`: many seeds trained side by side with the paper's stopping rule;
* :mod:`lensbox.plotting`: the book's style and figure helpers; :mod:`lensbox.bench`: speed.
"""

from lensbox.claims import ClaimError, claim
from lensbox.config import budget, by_scale, scale, setup
from lensbox.models import Model, count_parameters, mlp, quadratic_network, quadratic_tangent_kernel
from lensbox.kernels import tangent_kernel
from lensbox.optim import adam, adamw, sgd
from lensbox.smoother import effective_parameters, smooth, smoother_tracker
from lensbox.telescope import (
    approximation_error,
    first_order_error,
    linearised_step,
    linearised_tracker,
    telescope,
    telescoping_tracker,
)
from lensbox.train import DivergenceError, Tracker, TrainResult, recording_steps, train

__version__ = "0.1.0"

__all__ = [
    "ClaimError", "DivergenceError", "Model", "Tracker", "TrainResult", "adam", "adamw", "approximation_error",
    "budget", "by_scale", "claim", "count_parameters", "effective_parameters", "smooth", "smoother_tracker",
    "tangent_kernel", "first_order_error", "linearised_step", "linearised_tracker",
    "mlp", "quadratic_network", "quadratic_tangent_kernel", "recording_steps", "scale", "setup", "sgd", "telescope", "telescoping_tracker", "train",
]
