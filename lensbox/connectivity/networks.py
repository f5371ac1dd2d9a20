r"""Residual convolutional networks with BatchNorm, as ``(init, apply)`` pairs over pytrees.

The linear-mode-connectivity study (paper section 4.3, Fig. 6; App. C.3) trains a
ResNet-20 on CIFAR-10: the CIFAR variant of He et al. (2016) in the form of Idelbayev's widely used
implementation. A 3x3 convolution with 16 channels, then three stages of three *basic blocks*
(two 3x3 convolutions, each followed by BatchNorm, ReLU after the first and after the residual sum)
with 16, 32 and 64 channels, the second and third stage starting with stride 2; shortcuts that
change shape subsample by 2 and pad the new channels with zeros ("option A", no parameters); global
average pooling and one linear layer to the 10 logits. Convolutions have no bias; weights are drawn
from He-normal (fan-in) as in that implementation, the linear bias from PyTorch's default uniform.

:func:`resnet` builds this family for any stage widths and block count: ``resnet()`` is ResNet-20
(6 x 3 + 2 = 20 weight layers); the book's small stand-in is a narrower, shallower member.

BatchNorm keeps state that is not a parameter (running means and variances), so a network here is
a :class:`BatchNormNetwork`:

* ``init(key, input_shape) -> (params, bn_state)``, ``input_shape = (height, width, channels)``;
* ``apply(params, bn_state, x, train, momentum=0.1) -> (logits, bn_state)``: in training
  (``train=True``) each BatchNorm normalises by the batch's mean and (biased) variance and returns
  running statistics updated as PyTorch does, ``r <- (1 - m) r + m s`` with the unbiased batch
  variance and momentum ``m`` (PyTorch's 0.1; ``m = 1`` returns the batch's own statistics); in
  evaluation (``train=False``) it normalises by the running statistics and returns the state
  unchanged.

``x`` has shape ``(n, height, width, channels)``; ``logits`` has shape ``(n, classes)``, the
pre-softmax outputs the paper differentiates in Fig. 6. Parameters are a dict of layers in depth
order (keys ``"00_stem"``, ``"01_stage1_block1"``, ..., ``"NN_head"``), each layer a dict of
sub-layers ``{"w"}`` (convolution), ``{"scale", "shift"}`` (BatchNorm) or ``{"w", "b"}`` (the
linear head). :func:`layer_names` lists them in depth order with their kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine.checks import as_count, check_finite
from lensbox.errors import ArgumentError, ArgumentTypeError, ShapeError

Params = Any
BN_MOMENTUM = 0.1  # PyTorch's default
BN_EPS = 1e-5
_SUBLAYER_ORDER = (
    "conv",
    "dense",
    "bn",
    "conv1",
    "dense1",
    "bn1",
    "conv2",
    "dense2",
    "bn2",
)


@dataclass(frozen=True)
class ResNetSpec:
    """What a :func:`resnet` is made of.

    Attributes:
        widths: channels of each stage; stage ``s > 0`` starts with stride 2.
        blocks: basic blocks per stage.
        classes: number of outputs.
    """

    widths: tuple[int, ...]
    blocks: int
    classes: int

    @property
    def depth(self) -> int:
        """Weight layers: the stem, two convolutions per block, and the head (20 for ResNet-20)."""
        return 2 + 2 * self.blocks * len(self.widths)


class BatchNormNetwork(NamedTuple):
    """A network with BatchNorm: ``init(key, input_shape)`` and ``apply(params, bn_state, x, train)``."""

    init: Callable[[jax.Array, Sequence[int]], tuple[Params, Params]]
    apply: Callable[..., tuple[jax.Array, Params]]
    spec: ResNetSpec


# ----------------------------------------------------------------------------------------------
# Layers


def conv(
    w: jax.Array, x: jax.Array, stride: int = 1, im2col: bool = False
) -> jax.Array:
    """A k x k convolution with PyTorch's symmetric padding ``k // 2``; NHWC input, HWIO weights.

    ``im2col=True`` computes the same numbers as one matrix product of the stacked shifted inputs
    (the k x k patches) with the reshaped weights: on XLA:CPU that was about 3x faster for the small
    networks of the book (and it stays fast under ``vmap``), while XLA's convolution is the right
    choice on a GPU.
    """
    pad = w.shape[0] // 2
    if im2col:
        k = w.shape[0]
        xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        h, wd = x.shape[1], x.shape[2]
        ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
        cols = [
            xp[
                :,
                i : i + stride * (ho - 1) + 1 : stride,
                j : j + stride * (wo - 1) + 1 : stride,
                :,
            ]
            for i in range(k)
            for j in range(k)
        ]
        return jnp.concatenate(cols, axis=-1) @ w.reshape(-1, w.shape[-1])
    return jax.lax.conv_general_dilated(
        x,
        w,
        (stride, stride),
        ((pad, pad), (pad, pad)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def batch_norm(
    p: Params, s: Params, x: jax.Array, train: bool, momentum: float = BN_MOMENTUM
) -> tuple[jax.Array, Params]:
    r"""BatchNorm over every axis but the last: :math:`\gamma (x - \mu)/\sqrt{\sigma^2 + \epsilon} + \beta`.

    ``p = {"scale": gamma, "shift": beta}``; ``s = {"mean", "var"}`` the running statistics, updated
    in training mode as ``(1 - momentum) s + momentum * batch statistic`` (``momentum = 1`` makes
    them the statistics of this batch).
    """
    check_momentum(momentum)
    axes = tuple(range(x.ndim - 1))
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        count = x.size // x.shape[-1]
        unbiased = var * count / max(count - 1, 1)
        s = {
            "mean": (1 - momentum) * s["mean"] + momentum * mean,
            "var": (1 - momentum) * s["var"] + momentum * unbiased,
        }
    else:
        mean, var = s["mean"], s["var"]
    return p["scale"] * (x - mean) * jax.lax.rsqrt(var + BN_EPS) + p["shift"], s


def _shortcut(x: jax.Array, out_channels: int, stride: int) -> jax.Array:
    """Option A: subsample by ``stride`` and zero-pad the new channels (no parameters)."""
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = x[:, ::stride, ::stride, :]
    extra = out_channels - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


# ----------------------------------------------------------------------------------------------
# The network


def _block_names(spec: ResNetSpec) -> list[tuple[str, int, int, int]]:
    """(name, in_channels, out_channels, stride) of every basic block, in depth order."""
    out, cin = [], spec.widths[0]
    for s, width in enumerate(spec.widths):
        for b in range(spec.blocks):
            stride = 2 if (s > 0 and b == 0) else 1
            out.append((f"stage{s + 1}_block{b + 1}", cin, width, stride))
            cin = width
    return [(f"{i + 1:02d}_{name}", a, c, st) for i, (name, a, c, st) in enumerate(out)]


def _he_conv(key, k: int, cin: int, cout: int) -> jax.Array:
    dtype = jnp.zeros(()).dtype
    return jax.random.normal(key, (k, k, cin, cout), dtype) * jnp.sqrt(
        2.0 / (k * k * cin)
    )


def _bn_init(c: int) -> tuple[Params, Params]:
    dtype = jnp.zeros(()).dtype
    return (
        {"scale": jnp.ones((c,), dtype), "shift": jnp.zeros((c,), dtype)},
        {"mean": jnp.zeros((c,), dtype), "var": jnp.ones((c,), dtype)},
    )


def _basic_block(
    op,
    p: Params,
    st: Params,
    h: jax.Array,
    cout: int,
    stride: int,
    train: bool,
    momentum: float,
):
    """``relu(bn2(op2(relu(bn1(op1(h))))) + shortcut(h))``; ``op`` is a convolution or a dense map."""
    names = ("conv1", "conv2") if "conv1" in p else ("dense1", "dense2")
    z, s1 = batch_norm(
        p["bn1"], st["bn1"], op(p[names[0]]["w"], h, stride), train, momentum
    )
    z, s2 = batch_norm(
        p["bn2"], st["bn2"], op(p[names[1]]["w"], jax.nn.relu(z), 1), train, momentum
    )
    return jax.nn.relu(z + _shortcut(h, cout, stride)), {"bn1": s1, "bn2": s2}


def _network(spec: ResNetSpec, kind: str, op, weight_init) -> BatchNormNetwork:
    """Stem (op, BatchNorm, ReLU), basic blocks, global pooling (for images), linear head."""
    names = _block_names(spec)
    head = f"{len(names) + 1:02d}_head"
    stem, sub1, sub2 = (kind, f"{kind}1", f"{kind}2")

    def init(key: jax.Array, input_shape: Sequence[int]) -> tuple[Params, Params]:
        if len(tuple(input_shape)) != 3:
            raise ArgumentError(
                f"input_shape must be (height, width, channels); got {tuple(input_shape)}."
            )
        keys = jax.random.split(key, 2 * len(names) + 3)
        bn_p, bn_s = _bn_init(spec.widths[0])
        params = {
            "00_stem": {
                stem: {"w": weight_init(keys[0], tuple(input_shape), spec.widths[0])},
                "bn": bn_p,
            }
        }
        state = {"00_stem": {"bn": bn_s}}
        for i, (name, cin, cout, _) in enumerate(names):
            (p1, s1), (p2, s2) = _bn_init(cout), _bn_init(cout)
            params[name] = {
                sub1: {"w": weight_init(keys[2 * i + 1], cin, cout)},
                "bn1": p1,
                sub2: {"w": weight_init(keys[2 * i + 2], cout, cout)},
                "bn2": p2,
            }
            state[name] = {"bn1": s1, "bn2": s2}
        fan_in, dtype = spec.widths[-1], jnp.zeros(()).dtype
        bound = 1.0 / jnp.sqrt(fan_in)
        params[head] = {
            "w": jax.random.normal(keys[-2], (fan_in, spec.classes), dtype)
            * jnp.sqrt(2.0 / fan_in),
            "b": jax.random.uniform(keys[-1], (spec.classes,), dtype, -bound, bound),
        }
        return params, state

    def apply(
        params: Params,
        bn_state: Params,
        x: jax.Array,
        train: bool = False,
        momentum: float = BN_MOMENTUM,
    ):
        if x.ndim != 4:
            raise ArgumentError(
                f"x must be images of shape (n, height, width, channels); got {x.shape}."
            )
        if kind == "dense":
            x = x.reshape(x.shape[0], -1)
        p0 = params["00_stem"]
        h, s = batch_norm(
            p0["bn"],
            bn_state["00_stem"]["bn"],
            op(p0[stem]["w"], x, 1),
            train,
            momentum,
        )
        new, h = {"00_stem": {"bn": s}}, jax.nn.relu(h)
        for name, _, cout, stride in names:
            h, new[name] = _basic_block(
                op, params[name], bn_state[name], h, cout, stride, train, momentum
            )
        pooled = jnp.mean(h, axis=(1, 2)) if kind == "conv" else h
        return pooled @ params[head]["w"] + params[head]["b"], new

    return BatchNormNetwork(init, apply, spec)


def resnet(
    widths: Sequence[int] = (16, 32, 64),
    blocks: int = 3,
    classes: int = 10,
    *,
    im2col: bool | None = None,
) -> BatchNormNetwork:
    """A CIFAR-style residual network with BatchNorm; the defaults are ResNet-20 (paper App. C.3).

    Args:
        widths: channels per stage (ResNet-20: ``(16, 32, 64)``); each stage after the first halves
            the spatial size.
        blocks: basic blocks per stage (ResNet-20: 3; depth ``6 * blocks + 2`` with three stages).
        classes: number of logits.
        im2col: compute convolutions as matrix products (see :func:`conv`); ``None`` chooses it on
            a CPU backend only.

    Returns:
        A :class:`BatchNormNetwork`.
    """
    spec = _check_spec(widths, blocks, classes)
    use = (jax.default_backend() == "cpu") if im2col is None else bool(im2col)

    def weight_init(key, cin, cout):
        cin = cin[-1] if isinstance(cin, tuple) else cin
        return _he_conv(key, 3, cin, cout)

    return _network(
        spec, "conv", lambda w, h, stride: conv(w, h, stride, use), weight_init
    )


def residual_mlp(
    width: int = 128, blocks: int = 1, classes: int = 10
) -> BatchNormNetwork:
    """The same residual design with dense layers in place of convolutions (the book's stand-in).

    Inputs ``(n, h, w, c)`` are flattened; a dense stem of ``width`` units, ``blocks`` basic blocks
    of two dense layers with BatchNorm and an identity shortcut, and a linear head. On this book's
    CPU a tiny convolutional ResNet cost about 50 times more per step than this network on 8x8
    digits (see the linear-mode-connectivity chapter), which is why the book scale uses it.
    """
    spec = _check_spec((width,), blocks, classes)

    def weight_init(key, cin, cout):
        cin = int(jnp.prod(jnp.asarray(cin))) if isinstance(cin, tuple) else cin
        return jax.random.normal(key, (cin, cout), jnp.zeros(()).dtype) * jnp.sqrt(
            2.0 / cin
        )

    return _network(spec, "dense", lambda w, h, stride: h @ w, weight_init)


def _check_spec(widths, blocks, classes) -> ResNetSpec:
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ArgumentTypeError(
            f"widths must be a sequence of channel counts; got {widths!r}."
        )
    widths = tuple(as_count(w, "widths", minimum=1) for w in widths)
    if not widths:
        raise ArgumentError(
            "widths must be a non-empty sequence of positive integers; got ()."
        )
    if any(not (a <= b <= 3 * a) for a, b in zip(widths, widths[1:])):
        raise ArgumentError(
            f"widths: each stage must keep or widen (at most 3x) the channels; got {widths}."
        )
    blocks = as_count(blocks, "blocks", minimum=1)
    return ResNetSpec(widths, blocks, as_count(classes, "classes", minimum=1))


def check_momentum(momentum) -> None:
    """BatchNorm's ``momentum`` must be a number in [0, 1] (PyTorch's convention: the weight of
    the batch statistic); outside it the running variance can turn negative. A value traced
    inside a compiled program is not checked (it is checked where it was given)."""
    if isinstance(momentum, jax.core.Tracer):
        return
    try:
        if isinstance(momentum, (bool, str)) or np.ndim(momentum) != 0:
            raise TypeError
        value = float(momentum)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"momentum must be a number in [0, 1]; got {momentum!r} ({type(momentum).__name__})."
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ArgumentError(
            f"momentum must lie in [0, 1] (the batch statistic's weight in the running "
            f"statistics); got {momentum!r}."
        )


def check_images(X, name: str = "X", *, allow_empty: bool = False) -> jax.Array:
    """``X`` as a finite batch of images ``(n, height, width, channels)``, a JAX array. A value
    traced inside a compiled program is returned unchecked (it is checked where it was given)."""
    if isinstance(X, jax.core.Tracer):
        return X
    arr = np.asarray(X)
    if arr.ndim != 4:
        raise ShapeError(
            f"{name} must be images (n, height, width, channels); got shape {arr.shape}."
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise ArgumentError(f"{name} has no images; at least one is needed.")
    check_finite(arr, name)
    return jnp.asarray(X)


def check_labels(net: BatchNormNetwork, y, n: int, name: str = "y") -> jax.Array:
    """``y`` as ``n`` integer class labels in ``[0, net.spec.classes)``, an ``int32`` JAX array;
    a float array is accepted when every entry is a whole number. Traced values pass unchecked."""
    if isinstance(y, jax.core.Tracer):
        return y.astype(jnp.int32)
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise ShapeError(
            f"{name} must hold one integer label per image, shape ({n},); got {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer) and (
        not np.issubdtype(labels.dtype, np.number)
        or not np.all(np.isfinite(labels))
        or np.any(labels != np.round(labels))
    ):
        raise ArgumentError(
            f"{name} must hold integer class labels; got values such as {labels[:3].tolist()}."
        )
    classes = net.spec.classes
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise ArgumentError(
            f"{name} must hold class labels in [0, {classes - 1}] (the network has {classes} "
            f"outputs); got labels from {labels.min()} to {labels.max()}."
        )
    return jnp.asarray(labels).astype(jnp.int32)


def layer_names(params: Params) -> list[tuple[str, str]]:
    """Every layer of a :func:`resnet`'s parameters in depth order, as ``(name, kind)``.

    ``name`` is ``"block/sub-layer"`` (``"00_stem/conv"``, ``"01_stage1_block1/bn1"``) or the
    head's key; ``kind`` is ``"conv"``, ``"dense"``, ``"batchnorm"`` or ``"linear"`` (the head). Fig. 6 reports the
    gradient change per layer with the BatchNorm parameters separate; these are those layers.
    """
    out = []
    for block in sorted(params):
        sub = params[block]
        if set(sub) == {"w", "b"}:
            out.append((block, "linear"))
            continue
        for key in [k for k in _SUBLAYER_ORDER if k in sub]:
            kind = (
                "batchnorm" if set(sub[key]) == {"scale", "shift"} else key.rstrip("12")
            )
            out.append((f"{block}/{key}", kind))
    return out


def get_layer(params: Params, name: str) -> Params:
    """The sub-tree of ``params`` for a layer named as in :func:`layer_names`."""
    node = params
    for part in name.split("/"):
        node = node[part]
    return node
