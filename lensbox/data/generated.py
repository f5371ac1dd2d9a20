"""Data sets that are generated rather than downloaded: the polynomial task and MNIST-1D.

Both are the paper's own data at every scale (``standin=False``): generating them is how their
authors define them.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from lensbox.data.dataset import Dataset, as_float
from lensbox.errors import ArgumentError

MNIST1D_SOURCE = "mnist1d package generator (Greydanus 2020), mnist1d.data.make_dataset"
MNIST1D_LICENCE = "Apache-2.0"
MNIST1D_DEFAULT_SEED = 42


def polynomial_task(
    d: int = 100, n_train: int = 550, n_test: int = 500, seed: int = 0
) -> Dataset:
    r"""The polynomial regression task of the paper's grokking study (Eq. 25, after KBGP24 §5).

    .. math::
        x \sim \mathcal N(0, \tfrac1d I_d), \qquad y(x) = \tfrac12 (\beta^\top x)^2 .

    The paper does not say how :math:`\beta` is drawn. We draw its direction uniformly (as
    :math:`g/\|g\|` with :math:`g \sim \mathcal N(0, I_d)`) and fix its norm to
    :math:`\|\beta\| = \sqrt d`, the ":math:`\|\beta\|^2 = D`" reading of the paper's App. C.1 and the
    norm that :math:`\beta \sim \mathcal N(0, I_d)` has on average. Then
    :math:`\beta^\top x \sim \mathcal N(0, 1)` exactly, so :math:`y \sim \tfrac12\chi^2_1` with
    mean :math:`\tfrac12` and variance :math:`\tfrac12` whatever the seed: the targets are
    :math:`O(1)`, and because the law of :math:`x` is rotation invariant every seed gives a
    statistically identical task (seeds change only which examples are drawn).

    The model's :math:`\epsilon` (:math:`\phi(h) = h + \tfrac\epsilon2 h^2`) is a parameter of the
    *model*, not of the data: the same task serves :math:`\epsilon \in \{0.05, 0.2, 0.5\}`.

    Args:
        d: input dimension (paper: 100).
        n_train, n_test: numbers of training and test examples (paper: 550 and 500).
        seed: draws :math:`\beta`, then the training inputs, then the test inputs.

    Returns:
        A :class:`Dataset` with ``meta["beta"]`` holding :math:`\beta`.
    """
    for value, name in ((d, "d"), (n_train, "n_train"), (n_test, "n_test")):
        if int(value) != value or value < 1:
            raise ArgumentError(f"{name} must be a positive integer; got {value!r}.")
    d, n_train, n_test = int(d), int(n_train), int(n_test)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(d)
    beta = np.sqrt(d) * g / np.linalg.norm(g)
    X_train = rng.standard_normal((n_train, d)) / np.sqrt(d)
    X_test = rng.standard_normal((n_test, d)) / np.sqrt(d)
    target = lambda X: 0.5 * (X @ beta) ** 2  # noqa: E731
    return Dataset(
        X_train=as_float(X_train),
        y_train=as_float(target(X_train)),
        X_test=as_float(X_test),
        y_test=as_float(target(X_test)),
        name="polynomial",
        source="generated: x ~ N(0, I/d), y = (beta^T x)^2 / 2 (Eq. 25; Kumar et al. 2024, sec. 5)",
        licence="generated here (no licence needed)",
        standin=False,
        notes=(
            f"d={d}, n_train={n_train}, n_test={n_test}. beta: uniform direction, norm sqrt(d) "
            "(the paper does not say how beta is drawn), so beta^T x ~ N(0, 1) and y has mean 1/2, "
            "variance 1/2. epsilon belongs to the model, not the data."
        ),
        meta={"beta": beta, "d": d},
    )


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(generator_seed: int):
    """All ten classes of MNIST-1D from the package's generator with its default arguments.

    ``make_dataset`` reseeds Python's and NumPy's global generators; we restore both so that
    loading data never changes a chapter's other random draws.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = generator_seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def mnist1d(classes: tuple[int, ...] = (0, 1), seed: int = 0) -> Dataset:
    """MNIST-1D (Greydanus 2020) restricted to ``classes``, generated locally.

    The package's generator with its default arguments (5000 signals of length 40, an 80/20
    train/test split, generator seed 42) makes the published MNIST-1D; ``seed=0`` reproduces it,
    and ``seed=s`` regenerates the same distribution with generator seed ``42 + s``. The download
    path of the package is never used. Inputs are the package's (globally centred, unit standard
    deviation); for two classes the labels become ``{0., 1.}`` with 1 for ``classes[1]``.
    """
    classes = tuple(int(c) for c in classes)
    if (
        len(classes) < 2
        or len(set(classes)) != len(classes)
        or not set(classes) <= set(range(10))
    ):
        raise ArgumentError(
            f"classes must be two or more distinct digits 0-9; got {classes!r}."
        )
    x, y, x_test, y_test = _mnist1d_arrays(MNIST1D_DEFAULT_SEED + int(seed))

    def pick(X, labels):
        keep = np.isin(labels, classes)
        mapped = np.searchsorted(np.array(sorted(classes)), labels[keep])
        order = np.argsort(classes)  # position in `classes` of each sorted class
        return as_float(X[keep]), as_float(order[mapped])

    X_train, y_train = pick(x, y)
    X_test, y_test = pick(x_test, y_test)
    name = "mnist1d_" + "v".join(str(c) for c in classes)
    return Dataset(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        name=name,
        source=MNIST1D_SOURCE,
        licence=MNIST1D_LICENCE,
        standin=False,
        notes=(
            f"classes {classes} of MNIST-1D (40-dimensional signals) from the package's default "
            f"generator arguments, generator seed {MNIST1D_DEFAULT_SEED + int(seed)}; "
            f"{len(y_train)} train / {len(y_test)} test after keeping these classes."
        ),
        meta={"classes": classes, "generator_seed": MNIST1D_DEFAULT_SEED + int(seed)},
    )
