"""Case study 2 (paper section 4.2): gradient-boosted trees against networks on tabular data.

The *Boosting* chapter builds on these modules:

* :mod:`~lensbox.boosting.trees`: boosted trees as a telescoping sum of tree smoothers (Eq. 9),
  their kernel-weight norms and smoother weights (each tree's kernel is the leaf kernel of
  :mod:`lensbox.complexity.classical`);
* :mod:`~lensbox.boosting.irregular`: the irregular-test-input protocol (App. C.2): the split, the
  random searches, both models retrained and the kernel-norm ratios :math:`R(p)`.
"""

from lensbox._lazy import attach

__getattr__, __dir__, SUBMODULES = attach(__name__, __path__)
