"""Networks as ``(init, apply)`` pairs over pytrees.

The paper's networks are fully-connected: one hidden layer for double descent, three linear layers
of width 200 for grokking and the approximation study, width 64 for tabular data. :func:`mlp`
builds all of them. Parameters are a list with one ``{"w": (fan_in, fan_out), "b": (fan_out,)}``
dict per linear layer, so ``params[l]["w"]`` is layer ``l``'s weight matrix.

With a single output (``out=1``, the paper's ``k = 1``) ``apply`` returns a vector of shape
``(n,)``; with ``out > 1`` it returns ``(n, out)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

Params = Any  # a pytree of arrays
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
}
OUTPUTS = ("identity", "sigmoid")
INITS = ("standard", "torch")


@dataclass(frozen=True)
class MLPSpec:
    """What an :func:`mlp` is made of; the structured kernels of :mod:`lensbox.kernels` read it.

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

    ``logits`` is the network before its output activation (equal to ``apply`` when the output is
    the identity); Eq. 13's sigmoid analysis and the structured kernels need it.
    """

    init: Callable[[jax.Array, int], Params]
    apply: Callable[[Params, jax.Array], jax.Array]
    logits: Callable[[Params, jax.Array], jax.Array]
    spec: MLPSpec


def mlp(
    widths: Sequence[int],
    *,
    out: int = 1,
    activation: str = "relu",
    output: str = "identity",
    init: str = "standard",
    alpha: float = 1.0,
) -> Model:
    """A fully-connected network ``x -> act(x W_1 + b_1) -> ... -> out_act(h W_L + b_L)``.

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
    """
    widths = tuple(int(w) for w in widths)
    if any(w < 1 for w in widths) or out < 1:
        raise ValueError(f"widths and out must be positive integers; got widths={widths}, out={out}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}.")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}.")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}; got {init!r}.")
    if not (alpha > 0):
        raise ValueError(f"alpha must be positive; got {alpha!r}.")
    spec = MLPSpec(widths, int(out), activation, output, init, float(alpha))
    act = ACTIVATIONS[activation]

    def init_fn(key: jax.Array, in_dim: int) -> Params:
        sizes = (int(in_dim), *widths, spec.out)
        keys = jax.random.split(key, 2 * (len(sizes) - 1))
        params = []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            kw, kb = keys[2 * layer], keys[2 * layer + 1]
            dtype = jnp.zeros(()).dtype  # float64 when x64 is enabled
            if init == "standard":
                gain = 2.0 if (layer < len(widths) and activation == "relu") else 1.0
                w = jax.random.normal(kw, (fan_in, fan_out), dtype) * jnp.sqrt(gain / fan_in)
                b = jnp.zeros((fan_out,), dtype)
            else:
                bound = 1.0 / jnp.sqrt(fan_in)
                w = jax.random.uniform(kw, (fan_in, fan_out), dtype, -bound, bound)
                b = jax.random.uniform(kb, (fan_out,), dtype, -bound, bound)
            params.append({"w": alpha * w, "b": alpha * b})
        return params

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


def count_parameters(params: Params) -> int:
    """Total number of scalar parameters ``p`` in a pytree."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))
