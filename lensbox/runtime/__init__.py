"""The book runtime: what every chapter shares and no case study needs.

Modules, each importing only those above it (and the engine's statistics):

* :mod:`~lensbox.runtime.scale`: the ``LENSBOX_SCALE`` switch (``smoke``, ``book``, ``paper``),
  read in this one place;
* :mod:`~lensbox.runtime.claims`: the paper's findings as executed checks;
* :mod:`~lensbox.runtime.plotting`: the book's style, colours and figure helpers;
* :mod:`~lensbox.runtime.chapter`: what a chapter calls first (seeds, precision, style).
"""

from lensbox._lazy import attach

__getattr__, __dir__, SUBMODULES = attach(__name__, __path__)
