"""The engine: any network, any of the paper's optimisers, and the telescoping model of its training.

Everything the case studies build on, and nothing specific to one of them. Modules, each importing
only those above it:

* :mod:`~lensbox.engine.checks`: argument checks shared by every public function;
* :mod:`~lensbox.engine.models`: networks as ``(init, apply)`` pairs, and
  :func:`~lensbox.engine.models.as_model` for any other;
* :mod:`~lensbox.engine.adapters`: Equinox modules as lensbox models;
* :mod:`~lensbox.engine.transforms`: the linear pieces every optimiser is made of (decay,
  momentum, bias correction, preconditioner, learning-rate schedule);
* :mod:`~lensbox.engine.optim`: optimisers with the paper's conventions made explicit;
* :mod:`~lensbox.engine.training`: the training loop (:func:`~lensbox.engine.training.train`) and
  trackers;
* :mod:`~lensbox.engine.telescoping`: the telescoping model (Eq. 5) and the linearised baseline;
* :mod:`~lensbox.engine.kernels`: tangent-kernel blocks (structured for MLPs, generic for any
  model);
* :mod:`~lensbox.engine.smoother`: the smoother form for squared loss and effective parameters;
* :mod:`~lensbox.engine.devices`: runs side by side, sharded over the machine's devices;
* :mod:`~lensbox.engine.seeds`: many seeds trained side by side under the paper's stopping rule;
* :mod:`~lensbox.engine.statistics`: means and standard errors over seeds.
"""

from lensbox._lazy import attach

__getattr__, __dir__, SUBMODULES = attach(__name__, __path__)
