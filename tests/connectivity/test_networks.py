import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lensbox.connectivity.networks import (
    BN_MOMENTUM,
    batch_norm,
    conv,
    get_layer,
    layer_names,
    resnet,
    residual_mlp,
)


def _count(tree):
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(tree))


def test_resnet20_has_the_reference_size_and_twenty_weight_layers():
    net = resnet()
    params, state = net.init(jax.random.PRNGKey(0), (32, 32, 3))
    # 267,696 convolution weights + 2 x 688 BatchNorm channels + 64 x 10 + 10 in the head: the
    # 269,722 of the reference CIFAR-10 ResNet-20 (0.27M).
    assert _count(params) == 269_722
    kinds = [kind for _, kind in layer_names(params)]
    assert kinds.count("conv") + kinds.count("linear") == net.spec.depth == 20
    assert (
        kinds.count("batchnorm") == 19 and kinds[0] == "conv" and kinds[-1] == "linear"
    )
    assert _count(state) == 2 * 688
    logits, _ = net.apply(params, state, jnp.ones((2, 32, 32, 3)), False)
    assert logits.shape == (2, 10)


def _conv_reference(x, w, stride):
    """A direct loop: zero padding k // 2 on each side, as PyTorch's Conv2d(padding=1)."""
    k, pad = w.shape[0], w.shape[0] // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, wd, _ = x.shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, ho, wo, w.shape[-1]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("im2col", [False, True])
def test_convolution_matches_a_direct_loop(stride, im2col, rng):
    x, w = rng.normal(size=(2, 6, 6, 3)), rng.normal(size=(3, 3, 3, 4))
    got = conv(jnp.asarray(w), jnp.asarray(x), stride, im2col)
    np.testing.assert_allclose(
        got, _conv_reference(x, w, stride), rtol=1e-10, atol=1e-10
    )


def test_batch_norm_training_and_evaluation_modes(rng):
    x = jnp.asarray(rng.normal(2.0, 3.0, size=(7, 3, 3, 4)))
    p = {"scale": jnp.full((4,), 2.0), "shift": jnp.full((4,), -1.0)}
    s = {"mean": jnp.full((4,), 0.5), "var": jnp.full((4,), 4.0)}
    out, new = batch_norm(p, s, x, True)
    flat = np.asarray(x).reshape(-1, 4)
    # Training: normalised by the batch's own statistics (biased variance), then scaled and shifted.
    np.testing.assert_allclose(np.asarray(out).reshape(-1, 4).mean(0), -1.0, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(out).reshape(-1, 4).std(0),
        2.0 * np.sqrt(flat.var(0) / (flat.var(0) + 1e-5)),
        rtol=1e-10,
    )
    # Running statistics: PyTorch's update with the unbiased variance.
    np.testing.assert_allclose(
        new["mean"], (1 - BN_MOMENTUM) * 0.5 + BN_MOMENTUM * flat.mean(0), rtol=1e-12
    )
    np.testing.assert_allclose(
        new["var"],
        (1 - BN_MOMENTUM) * 4.0 + BN_MOMENTUM * flat.var(0, ddof=1),
        rtol=1e-12,
    )
    # Evaluation: the running statistics, state unchanged.
    out_eval, same = batch_norm(p, s, x, False)
    np.testing.assert_allclose(
        out_eval, 2.0 * (np.asarray(x) - 0.5) / np.sqrt(4.0 + 1e-5) - 1.0, rtol=1e-12
    )
    assert same is s
    # momentum 1: the batch's own statistics.
    _, own = batch_norm(p, s, x, True, 1.0)
    np.testing.assert_allclose(own["var"], flat.var(0, ddof=1), rtol=1e-12)


def test_training_mode_updates_every_running_statistic_and_evaluation_uses_them(rng):
    net = resnet((4, 8), blocks=1)
    params, state = net.init(jax.random.PRNGKey(1), (8, 8, 1))
    x = jnp.asarray(rng.normal(size=(5, 8, 8, 1)))
    _, new = net.apply(params, state, x, True)
    moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a != b)), state, new)
    assert all(jax.tree_util.tree_leaves(moved))
    a, _ = net.apply(params, state, x, False)
    b, _ = net.apply(params, new, x, False)
    assert not np.allclose(a, b)


def test_option_a_shortcut_pads_channels_with_zeros_and_subsamples():
    # With every convolution and the head zeroed and BatchNorm shifts at zero, the second stage
    # sees relu(0 + shortcut(h)): so its output channels added by the shortcut are zero.
    net = resnet((2, 6), blocks=1)
    params, state = net.init(jax.random.PRNGKey(0), (4, 4, 1))
    zero = jax.tree_util.tree_map(jnp.zeros_like, params["02_stage2_block1"])
    params = {**params, "02_stage2_block1": zero}
    head = params["03_head"]
    params["03_head"] = {"w": jnp.eye(6, 3), "b": jnp.zeros(3)}
    logits, _ = net.apply(params, state, jnp.ones((1, 4, 4, 1)), False)
    assert (
        float(logits[0, 0]) == 0.0 and float(logits[0, 2]) > 0.0
    )  # channel 0 padded, 2 carried
    assert head["w"].shape == (6, 10)


def test_residual_mlp_layers_and_shapes():
    net = residual_mlp(16, blocks=2, classes=3)
    params, state = net.init(jax.random.PRNGKey(0), (8, 8, 1))
    names = layer_names(params)
    assert [k for _, k in names] == ["dense", "batchnorm"] + [
        "dense",
        "batchnorm",
    ] * 4 + ["linear"]
    assert get_layer(params, "00_stem/dense")["w"].shape == (64, 16)
    logits, _ = net.apply(params, state, jnp.ones((4, 8, 8, 1)), True)
    assert logits.shape == (4, 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="widths"):
        resnet((16, 64))
    with pytest.raises(ValueError, match="blocks"):
        residual_mlp(8, blocks=0)
    net = resnet((4,), blocks=1)
    with pytest.raises(ValueError, match="input_shape"):
        net.init(jax.random.PRNGKey(0), (8, 8))
    params, state = net.init(jax.random.PRNGKey(0), (8, 8, 1))
    with pytest.raises(ValueError, match="x must be images"):
        net.apply(params, state, jnp.ones((3, 64)), False)
