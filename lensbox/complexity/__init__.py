"""Case study 1 (paper section 4.1): effective parameters, double descent and grokking.

The *Smoothers*, *Double descent* and *Grokking* chapters build on these modules, each importing
only the engine, the data and those above it:

* :mod:`~lensbox.complexity.classical`: ridge, k-NN and tree smoothers as smoother matrices, the
  baselines whose effective parameters are known;
* :mod:`~lensbox.complexity.grokking`: the polynomial-regression model of the grokking study
  (Eq. 25) and its closed-form tangent kernel, and the chapter's runs as a stored experiment;
* :mod:`~lensbox.complexity.double_descent`: the double-descent protocol (Fig. 3) and its main
  sweep as a stored experiment;
* :mod:`~lensbox.complexity.faithfulness`: seeds trained under the paper's stopping rule, read
  through the smoother at the end (:func:`~lensbox.complexity.faithfulness.smoother_fit`), both
  readings of the smoother against the network, and the book's bound.
"""

from lensbox._lazy import attach

__getattr__, __dir__, SUBMODULES = attach(__name__, __path__)
