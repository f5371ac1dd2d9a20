"""lensbox: the telescoping model of deep learning, in JAX.

A companion library to the book reproducing "Deep Learning Through A Telescoping Lens"
(Jeffares, Curth & van der Schaar, NeurIPS 2024). One module per idea of the paper:

* :mod:`lensbox.config`: the ``LENSBOX_SCALE`` switch, seeds, precision, style;
* :mod:`lensbox.models`: networks as ``(init, apply)`` pairs;
* :mod:`lensbox.optim`: optimisers with the paper's conventions made explicit;
* :mod:`lensbox.train`: the training loop and trackers;
* :mod:`lensbox.telescope`: the telescoping model (Eq. 5) and the linearised baseline.
"""

from lensbox.config import by_scale, scale, setup
from lensbox.models import Model, count_parameters, mlp
from lensbox.optim import adam, adamw, sgd
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
    "DivergenceError", "Model", "Tracker", "TrainResult", "adam", "adamw", "approximation_error",
    "by_scale", "count_parameters", "first_order_error", "linearised_step", "linearised_tracker",
    "mlp", "recording_steps", "scale", "setup", "sgd", "telescope", "telescoping_tracker", "train",
]
