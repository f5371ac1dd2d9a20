"""Every case study's experiment, registered by name, and what chapters call to read them.

``python -m lensbox.experiments list`` shows them; ``python -m lensbox.experiments run NAME
--scale long`` computes and stores the units a configuration still lacks (see
:mod:`lensbox.runtime.results` for the layout, the provenance and the rules). A chapter calls
:func:`results`, which reads a matching stored run or computes the current scale live, and prints
which.

This package sits above the case studies: it imports their experiments, nothing imports it but the
chapters.
"""

from lensbox.experiments.registry import REGISTRY, get, results

__all__ = ["REGISTRY", "get", "results"]
