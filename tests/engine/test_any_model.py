"""Any JAX model telescopes: image inputs, pytree inputs, k outputs, and an Equinox module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.engine.kernels import jacobian_tree, tangent_kernel


def _brute_kernel(apply, params, X_R, X_B):
    """K[r, b, i, j] = grad f_i(x_r) . grad f_j(x_b), by full Jacobians of the flattened parameters."""
    from jax.flatten_util import ravel_pytree

    theta, unravel = ravel_pytree(params)
    J_R = jax.jacrev(lambda t: apply(unravel(t), X_R))(theta)  # (R, [k,] p)
    J_B = jax.jacrev(lambda t: apply(unravel(t), X_B))(theta)
    if J_R.ndim == 2:
        return J_R @ J_B.T
    return jnp.einsum("rip,bjp->rbij", J_R, J_B)


def _conv_model():
    """A small convolutional network on (n, 6, 6, 2) images with 3 outputs."""

    def init(key, in_dim=None):
        k1, k2 = jax.random.split(key)
        return {
            "conv": 0.3 * jax.random.normal(k1, (3, 3, 2, 4)),
            "dense": 0.3 * jax.random.normal(k2, (4 * 4 * 4, 3)),
        }

    def apply(params, X):
        h = jax.lax.conv_general_dilated(
            X,
            params["conv"],
            (1, 1),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return jnp.tanh(h).reshape(X.shape[0], -1) @ params["dense"]

    return lensbox.Model(init, apply)


def test_kernel_of_an_image_model_with_three_outputs_matches_full_jacobians():
    model = _conv_model()
    params = model.init(jax.random.PRNGKey(0))
    X = jax.random.normal(jax.random.PRNGKey(1), (7, 6, 6, 2))
    ref = _brute_kernel(model.apply, params, X, X[:3])
    K = tangent_kernel(model, params, X, X[:3])
    assert K.shape == (7, 3, 3, 3)
    np.testing.assert_allclose(K, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        tangent_kernel(model, params, X, X[:3], outputs="diagonal"),
        jnp.einsum("rbii->rbi", ref),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        tangent_kernel(model, params, X, X[:3], outputs="trace"),
        jnp.einsum("rbii->rb", ref),
        rtol=1e-10,
        atol=1e-12,
    )
    # Chunking the tracked rows changes nothing.
    np.testing.assert_allclose(
        tangent_kernel(model, params, X, X[:3], rows_per_chunk=2),
        K,
        rtol=1e-12,
        atol=1e-14,
    )


def test_pytree_inputs_and_a_preconditioner():
    def apply(params, X):
        return jnp.tanh(X["a"] @ params["w"]) @ params["v"] + jnp.sum(
            X["b"] * params["u"], axis=1
        )

    params = {
        "w": jnp.ones((3, 4)) * 0.2,
        "v": jnp.arange(4.0) / 4,
        "u": jnp.array([0.5, -1.0]),
    }
    X = {
        "a": jax.random.normal(jax.random.PRNGKey(0), (5, 3)),
        "b": jax.random.normal(jax.random.PRNGKey(1), (5, 2)),
    }
    phi = jax.tree_util.tree_map(lambda p: 1.0 + jnp.abs(p), params)
    K = tangent_kernel(apply, params, X, X, preconditioner=phi)
    J = jacobian_tree(apply, params, X)
    ref = sum(
        (jr.reshape(5, -1) / f.reshape(-1)) @ jr.reshape(5, -1).T
        for jr, f in zip(jax.tree_util.tree_leaves(J), jax.tree_util.tree_leaves(phi))
    )
    np.testing.assert_allclose(K, ref, rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(np.asarray(K)) > -1e-10)  # a Gram matrix


def test_auto_on_a_multi_output_mlp_uses_jacobians_and_structured_says_why():
    model = lensbox.mlp((5,), out=3)
    params = model.init(jax.random.PRNGKey(0), 4)
    X = jax.random.normal(jax.random.PRNGKey(1), (6, 4))
    np.testing.assert_allclose(
        tangent_kernel(model, params, X, X),
        _brute_kernel(model.apply, params, X, X),
        rtol=1e-10,
        atol=1e-12,
    )
    with pytest.raises(lensbox.ArgumentError, match="supports one output .* k = 3"):
        tangent_kernel(model, params, X, X, method="structured")


def test_softmax_cross_entropy_training_telescopes_on_three_classes():
    model = lensbox.mlp((16,), out=3, activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 4)
    X = jax.random.normal(jax.random.PRNGKey(1), (30, 4))
    y = np.asarray(jnp.argmax(X[:, :3], axis=1))
    run = lensbox.telescope(
        model,
        params,
        lensbox.sgd(0.05),
        X,
        y,
        X[:8],
        steps=40,
        loss="softmax_cross_entropy",
        record_at=[0, 40],
    )
    assert run.network.shape == (2, 8, 3)
    assert run.train.losses[-1] < run.train.losses[0]
    # The telescoping model tracks the logits of every class far better than the lazy model.
    assert run.telescoping_error[-1] < 0.1 * run.linearised_error[-1]
    log_p = jax.nn.log_softmax(model.apply(params, X[:5]))
    np.testing.assert_allclose(
        lensbox.engine.training.softmax_cross_entropy(
            model.apply(params, X[:5]), y[:5]
        ),
        -log_p[np.arange(5), y[:5]],
        rtol=1e-12,
    )
    with pytest.raises(lensbox.ArgumentError, match=r"class labels in 0..2"):
        lensbox.train(
            model,
            params,
            lensbox.sgd(0.05),
            X,
            y + 1,
            steps=1,
            loss="softmax_cross_entropy",
        )


def test_an_equinox_model_telescopes_through_the_adapter():
    eqx = pytest.importorskip("equinox")
    module = eqx.nn.MLP(
        in_size=3,
        out_size=1,
        width_size=8,
        depth=2,
        activation=jnp.tanh,
        key=jax.random.PRNGKey(0),
    )
    model, params = lensbox.engine.adapters.from_equinox(module)
    X = jax.random.normal(jax.random.PRNGKey(1), (20, 3))
    y = jnp.sin(X[:, 0])
    np.testing.assert_allclose(
        model.apply(params, X), jax.vmap(module)(X)[:, 0], rtol=1e-12
    )
    K = tangent_kernel(model, params, X[:6], X[:4])
    np.testing.assert_allclose(
        K, _brute_kernel(model.apply, params, X[:6], X[:4]), rtol=1e-10
    )
    run = lensbox.telescope(
        model,
        params,
        lensbox.sgd(0.05),
        X,
        y,
        X[:10],
        steps=30,
        batch_size=5,
        record_at=[0, 10, 30],
    )
    assert run.train.losses[-5:].mean() < run.train.losses[:5].mean()
    # Eq. 5's first-order terms leave an error of second order in the steps, far below the lazy
    # model's, which ignores how the gradient changes along the way (section 2.3).
    assert run.telescoping_error[-1] < 0.1 * run.linearised_error[-1]
    with pytest.raises(lensbox.ArgumentTypeError, match="must be an equinox.Module"):
        lensbox.engine.adapters.from_equinox(lambda x: x)


def test_from_equinox_refuses_a_batched_flag_that_is_not_a_bool():
    eqx = pytest.importorskip("equinox")
    module = eqx.nn.Linear(2, 1, key=jax.random.PRNGKey(0))
    with pytest.raises(
        lensbox.ArgumentTypeError, match="batched must be True or False"
    ):
        lensbox.engine.adapters.from_equinox(module, batched="yes")
