"""Case study 3 (paper section 4.3): linear mode connectivity and weight averaging.

The *Mode connectivity* chapter builds on these modules, each importing only those above it and
the engine:

* :mod:`~lensbox.connectivity.networks`: ResNet-20 and a residual MLP with BatchNorm;
* :mod:`~lensbox.connectivity.augment`: random crops and flips of image batches;
* :mod:`~lensbox.connectivity.spawning`: training that stops at step :math:`t'` and spawns two
  children;
* :mod:`~lensbox.connectivity.barriers`: interpolation curves, barriers, gradient change and Eq. 10.
* :mod:`~lensbox.connectivity.experiment`: the experiment's three arms as stored units (the
  configurations per scale, :func:`~lensbox.connectivity.experiment.run_arm`).
"""

from lensbox._lazy import attach

__getattr__, __dir__, SUBMODULES = attach(__name__, __path__)
