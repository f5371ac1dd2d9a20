"""Networks as ``(init, apply)`` pairs over pytrees.

The paper's networks are fully-connected: one hidden layer for double descent, three linear layers
of width 200 for grokking and the approximation study, width 64 for tabular data. :func:`mlp`
builds all of them (the grokking study's polynomial-regression model, Eq. 25, is in
:mod:`lensbox.complexity.grokking`). MLP
parameters are a list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` dict per linear
layer, so ``params[l]["w"]`` is layer ``l``'s weight matrix.

With a single output (``out=1``, the paper's ``k = 1``) ``apply`` returns a vector of shape
``(n,)``; with ``out > 1`` it returns ``(n, out)``.

Any other network enters lensbox as a :class:`Model` with only ``apply`` (and, if lensbox is to
initialise it, ``init``): :func:`as_model` wraps a bare ``apply(params, X)`` function, and
:mod:`lensbox.engine.adapters` wraps an Equinox module. ``X`` may then be any array with a leading row
axis (images ``(n, h, w, c)``) or a pytree of such arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from lensbox.engine.checks import is_integer
from lensbox.errors import ArgumentError, ArgumentTypeError, ShapeError

Params = Any  # a pytree of arrays
Apply = Callable[[Params, Any], jax.Array]


class Activation(NamedTuple):
    """A hidden activation :math:`h = a(z)` and its derivative written through ``z`` and ``h``
    (``derivative(z, h) = a'(z)``), which the structured kernels of :mod:`lensbox.engine.kernels` need."""

    function: Callable[[jax.Array], jax.Array]
    derivative: Callable[[jax.Array, jax.Array], jax.Array]


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(jax.nn.relu, lambda z, h: (z > 0).astype(z.dtype)),
    "tanh": Activation(jnp.tanh, lambda z, h: 1.0 - h * h),
    "sigmoid": Activation(jax.nn.sigmoid, lambda z, h: h * (1.0 - h)),
}
OUTPUTS = ("identity", "sigmoid")
INITS = ("standard", "torch")


@dataclass(frozen=True)
class MLPSpec:
    """What an :func:`mlp` is made of; the structured kernels of :mod:`lensbox.engine.kernels` read it.

    Attributes:
        widths: hidden-layer widths, in order.
        out: number of outputs.
        activation: hidden activation, one of ``relu``, ``tanh``, ``sigmoid``.
        output: ``identity`` or ``sigmoid`` applied to the last linear layer's output.
        init: ``standard`` or ``torch`` (see :func:`mlp`).
        alpha: scale multiplying every initial parameter.
    """

    widths: tuple[int, ...]
    out: int
    activation: str
    output: str
    init: str
    alpha: float

    @property
    def depth(self) -> int:
        """Number of linear layers."""
        return len(self.widths) + 1


class Model(NamedTuple):
    """A network: ``init(key, in_dim) -> params`` and ``apply(params, x) -> predictions``.

    ``apply`` returns ``(n,)`` for one output (the paper's :math:`k = 1`) or ``(n, k)``.
    ``logits`` is the network before its output activation (equal to ``apply`` when the output is
    the identity, and when it is ``None``); Eq. 13's sigmoid analysis needs it. ``spec`` describes
    lensbox's own architectures so that the structured kernels can read them; any other model
    leaves it ``None`` and uses the generic routes. ``init`` is ``None`` for a model whose
    parameters come from elsewhere (an adapter, a checkpoint).
    """

    init: Callable[[jax.Array, int], Params] | None
    apply: Apply
    logits: Apply | None = None
    spec: Any = None


def as_model(model: "Model | Apply", name: str = "model") -> Model:
    """A :class:`Model` from a Model or a bare ``apply(params, X)`` function (no init, no spec)."""
    if isinstance(model, Model):
        if not callable(model.apply):
            raise ArgumentTypeError(
                f"{name}.apply must be callable; got {type(model.apply).__name__}."
            )
        return model
    if callable(model):
        return Model(None, model, model, None)
    raise ArgumentTypeError(
        f"{name} must be a lensbox Model or an apply(params, X) function; "
        f"got {type(model).__name__}."
    )


def apply_of(model: "Model | Apply", name: str = "model") -> Apply:
    """The ``apply(params, X)`` function of a :class:`Model` or of a bare function."""
    return as_model(model, name).apply


def mlp(
    widths: Sequence[int],
    *,
    out: int = 1,
    activation: str = "relu",
    output: str = "identity",
    init: str = "standard",
    alpha: float = 1.0,
) -> Model:
    """A fully-connected network: ``h = act(h W_l + b_l)`` for each hidden layer, from ``h = x``,
    then ``out_act(h W_L + b_L)``.

    Args:
        widths: hidden widths, e.g. ``(200, 200)`` for the paper's 3-layer width-200 MLP, or
            ``(h,)`` for one hidden layer. An empty tuple gives a linear model.
        out: number of outputs; ``apply`` returns shape ``(n,)`` when it is 1.
        activation: ``relu`` (the paper's), ``tanh`` or ``sigmoid``.
        output: ``identity`` (the paper's default) or ``sigmoid`` (Eq. 13, Fig. 13).
        init: ``standard`` draws ``W ~ N(0, g / fan_in)`` with gain ``g = 2`` before a ReLU and 1
            otherwise, and zero biases. ``torch`` mimics PyTorch's ``nn.Linear`` default:
            ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, as in the Omnigrok runs.
        alpha: multiplies every initial weight and bias, as in the paper's large-initialisation
            grokking runs (alpha = 6 in Fig. 4).

    Returns:
        A :class:`Model`.

    Examples:
        One hidden layer of width 16 on 3 input features: a weight matrix per layer, and one
        prediction per row.

        >>> import jax, jax.numpy as jnp
        >>> import lensbox
        >>> net = lensbox.mlp((16,))
        >>> params = net.init(jax.random.PRNGKey(0), 3)
        >>> [layer["w"].shape for layer in params]
        [(3, 16), (16, 1)]
        >>> net.apply(params, jnp.ones((5, 3))).shape
        (5,)

        Several outputs give one column each; a sigmoid output maps into (0, 1).

        >>> net4 = lensbox.mlp((8, 8), out=4)
        >>> net4.apply(net4.init(jax.random.PRNGKey(0), 3), jnp.ones((5, 3))).shape
        (5, 4)
        >>> probs = lensbox.mlp((8,), output="sigmoid")
        >>> p = probs.apply(probs.init(jax.random.PRNGKey(0), 3), jnp.ones((5, 3)))
        >>> bool(jnp.all((p > 0) & (p < 1)))
        True
    """
    widths = _check_widths(widths)
    if not is_integer(out) or out < 1:
        raise ArgumentError(
            f"out must be a positive integer (the number of outputs k); got {out!r}."
        )
    if activation not in ACTIVATIONS:
        raise ArgumentError(
            f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}."
        )
    if output not in OUTPUTS:
        raise ArgumentError(f"output must be one of {OUTPUTS}; got {output!r}.")
    if init not in INITS:
        raise ArgumentError(f"init must be one of {INITS}; got {init!r}.")
    if not (alpha > 0):
        raise ArgumentError(f"alpha must be positive; got {alpha!r}.")
    spec = MLPSpec(widths, int(out), activation, output, init, float(alpha))
    act = ACTIVATIONS[activation].function

    def init_fn(key: jax.Array, in_dim: int) -> Params:
        return _init_layers(spec, key, int(in_dim))

    def logits_fn(params: Params, x: jax.Array) -> jax.Array:
        h = x
        for layer in params[:-1]:
            h = act(h @ layer["w"] + layer["b"])
        z = h @ params[-1]["w"] + params[-1]["b"]
        return z[:, 0] if spec.out == 1 else z

    def apply_fn(params: Params, x: jax.Array) -> jax.Array:
        z = logits_fn(params, x)
        return jax.nn.sigmoid(z) if output == "sigmoid" else z

    return Model(init_fn, apply_fn, logits_fn, spec)


def check_features(model: Model, params: Params, X, name: str) -> tuple[int, ...]:
    """Check that ``X`` fits ``params`` and return the shape of one row's prediction (``()`` for
    one output, ``(k,)`` for k).

    For lensbox's MLPs the first weight matrix says how many features a row must have; for any
    other model one abstract evaluation (``jax.eval_shape``, no computation) must succeed.

    Raises:
        ShapeError: naming ``name``, the shape expected and the shape that arrived.
    """
    if isinstance(model.spec, MLPSpec):
        expected = int(jnp.shape(params[0]["w"])[0])
        if jnp.ndim(X) != 2 or jnp.shape(X)[1] != expected:
            raise ShapeError(
                f"{name} must have {expected} features per row (the first layer's "
                f"fan-in in params), shape (n, {expected}); got shape {jnp.shape(X)}."
            )
    one = jax.tree_util.tree_map(lambda a: a[:1], X)
    try:
        out = jax.eval_shape(model.apply, params, one)
    except (TypeError, ValueError) as err:
        shapes = jax.tree_util.tree_map(lambda a: tuple(jnp.shape(a)), X)
        raise ShapeError(
            f"{name} (shapes {shapes}) does not fit the model's parameters: "
            f"apply(params, {name}) fails with: {err}"
        ) from None
    return tuple(out.shape[1:])


def _init_layers(spec: MLPSpec, key: jax.Array, in_dim: int) -> Params:
    """The initial ``[{"w", "b"}, ...]`` of an :func:`mlp` with this spec (see its ``init``)."""
    sizes = (in_dim, *spec.widths, spec.out)
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    dtype = jnp.zeros(()).dtype  # float64 when x64 is enabled
    params = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        kw, kb = keys[2 * layer], keys[2 * layer + 1]
        if spec.init == "standard":
            gain = (
                2.0 if (layer < len(spec.widths) and spec.activation == "relu") else 1.0
            )
            w = jax.random.normal(kw, (fan_in, fan_out), dtype) * jnp.sqrt(
                gain / fan_in
            )
            b = jnp.zeros((fan_out,), dtype)
        else:
            bound = 1.0 / jnp.sqrt(fan_in)
            w = jax.random.uniform(kw, (fan_in, fan_out), dtype, -bound, bound)
            b = jax.random.uniform(kb, (fan_out,), dtype, -bound, bound)
        params.append({"w": spec.alpha * w, "b": spec.alpha * b})
    return params


def _check_widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (int, float)) or not hasattr(widths, "__iter__"):
        raise ArgumentTypeError(
            f"widths must be a sequence of hidden widths, e.g. ({widths},) for one hidden layer of "
            f"width {widths}; got the number {widths!r}."
        )
    widths = tuple(widths)
    if any(not is_integer(w) or w < 1 for w in widths):
        raise ArgumentError(f"widths must be positive integers; got widths={widths}.")
    return tuple(int(w) for w in widths)


def count_parameters(params: Params) -> int:
    """Total number of scalar parameters ``p`` in a pytree.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import lensbox
        >>> params = lensbox.mlp((16,)).init(jax.random.PRNGKey(0), 3)
        >>> lensbox.count_parameters(params)  # (3 * 16 + 16) + (16 * 1 + 1)
        81
        >>> lensbox.count_parameters({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)})
        9
    """
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))
