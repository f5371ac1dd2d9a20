"""Tangent-kernel blocks: structured against generic routes, and the Eq. 3 identity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import lensbox
from lensbox.engine import optim
from lensbox.engine.kernels import (
    jacobian_rows,
    jacobian_times,
    jacobian_transpose_times,
    tangent_kernel,
)
from lensbox.engine.telescoping import linearised_step

jax.config.update("jax_enable_x64", True)

X_R = jax.random.normal(jax.random.PRNGKey(10), (7, 5))
X_B = jax.random.normal(jax.random.PRNGKey(11), (4, 5))


def _phi(params, seed=3):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree,
        [
            0.2 + jax.random.uniform(k, leaf.shape, leaf.dtype)
            for k, leaf in zip(keys, leaves)
        ],
    )


@pytest.mark.parametrize(
    "activation,output,widths",
    [
        ("relu", "identity", (6,)),
        ("relu", "sigmoid", (6, 3)),
        ("relu", "identity", (4, 5, 3)),
        ("tanh", "sigmoid", (6,)),
        ("tanh", "identity", (6, 3)),
        ("sigmoid", "identity", (6,)),
        ("sigmoid", "sigmoid", (4, 5, 3)),
        ("relu", "identity", ()),
    ],
)
def test_structured_kernel_matches_generic(activation, output, widths):
    model = lensbox.mlp(widths, activation=activation, output=output, init="torch")
    params = model.init(jax.random.PRNGKey(len(widths)), 5)
    for phi in (None, _phi(params)):
        K_s = tangent_kernel(
            model, params, X_R, X_B, preconditioner=phi, method="structured"
        )
        K_g = tangent_kernel(model.apply, params, X_R, X_B, preconditioner=phi)
        np.testing.assert_allclose(K_s, K_g, rtol=1e-10, atol=1e-12)
        assert np.abs(K_s).max() > 1e-3


@pytest.mark.parametrize(
    "activation,output,widths",
    [
        ("relu", "identity", (4, 5, 3)),
        ("tanh", "sigmoid", (8,)),
        ("relu", "identity", ()),
    ],
)
@pytest.mark.parametrize("method", ["structured", "generic"])
def test_jacobian_products_equal_the_jacobian_rows(activation, output, widths, method):
    # (4, 5, 3) on 5 inputs has layers that narrow and widen, so both GEMM orders run.
    model = lensbox.mlp(widths, activation=activation, output=output, init="torch")
    params = model.init(jax.random.PRNGKey(1), 5)
    J = np.asarray(jacobian_rows(model.apply, params, X_R))
    for c in (1, 3, 9):
        M = jax.random.normal(jax.random.PRNGKey(c), (J.shape[1], c))
        V = jax.random.normal(jax.random.PRNGKey(c + 1), (X_R.shape[0], c))
        JM = jacobian_times(model, params, X_R, M, method=method)
        JtV = jacobian_transpose_times(model, params, X_R, V, method=method)
        assert JM.shape == (X_R.shape[0], c) and JtV.shape == (J.shape[1], c)
        np.testing.assert_allclose(JM, J @ np.asarray(M), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(JtV, J.T @ np.asarray(V), rtol=1e-10, atol=1e-12)
        assert np.abs(JtV).max() > 1e-3
    with pytest.raises(lensbox.ShapeError, match="one row per p"):
        jacobian_times(model, params, X_R, np.ones(J.shape[1]), method=method)
    with pytest.raises(lensbox.ShapeError, match="one row per rows of X"):
        jacobian_transpose_times(model, params, X_R, np.ones((2, 1)), method=method)


def test_generic_kernel_is_gradient_inner_product():
    model = lensbox.mlp((3,), activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(0), 5)
    grad = lambda x: ravel_pytree(
        jax.grad(lambda p: model.apply(p, x[None])[0])(params)
    )[0]
    phi = _phi(params)
    inv = 1 / ravel_pytree(phi)[0]
    expected = np.array([[grad(a) @ (inv * grad(b)) for b in X_B] for a in X_R])
    np.testing.assert_allclose(
        tangent_kernel(model, params, X_R, X_B, preconditioner=phi),
        expected,
        rtol=1e-10,
    )
    J = jacobian_rows(model, params, X_R)
    np.testing.assert_allclose(J, np.stack([grad(a) for a in X_R]), rtol=1e-12)


def test_adam_preconditioner_from_a_real_state():
    model = lensbox.mlp((8, 8), activation="relu")
    params = model.init(jax.random.PRNGKey(0), 5)
    y = jnp.sin(X_R[:, 0])
    opt = optim.adam(1e-2)
    result = lensbox.train(model, params, opt, X_R, y, steps=3)
    phi = optim.preconditioner(result.opt_state, opt.config)
    K_s = tangent_kernel(model, result.params, X_R, X_B, preconditioner=phi)
    K_g = tangent_kernel(model.apply, result.params, X_R, X_B, preconditioner=phi)
    np.testing.assert_allclose(K_s, K_g, rtol=1e-9)


def test_cross_temporal_kernel_matches_generic():
    model = lensbox.mlp((6, 4), activation="tanh")
    p_t = model.init(jax.random.PRNGKey(0), 5)
    p_k = model.init(jax.random.PRNGKey(1), 5)
    K_s = tangent_kernel(model, p_t, X_R, X_B, params_B=p_k)
    K_g = jacobian_rows(model.apply, p_t, X_R) @ jacobian_rows(model.apply, p_k, X_B).T
    np.testing.assert_allclose(K_s, K_g, rtol=1e-10)


@pytest.mark.parametrize("batch_size", [None, 3])
def test_sgd_kernel_increment_equals_jvp_increment(batch_size):
    """Eq. 3 as an identity: -gamma sum_i K_t(x, x_i) g_it equals grad f(x)^T Delta theta_t."""
    model = lensbox.mlp((10, 10), activation="relu")
    params = model.init(jax.random.PRNGKey(0), 5)
    X = jax.random.normal(jax.random.PRNGKey(1), (9, 5))
    y = jnp.cos(X[:, 1])
    lr = 0.05
    idx = jnp.arange(9) if batch_size is None else jnp.array([1, 4, 7])

    def objective(p):
        return jnp.mean(0.5 * (model.apply(p, X[idx]) - y[idx]) ** 2)

    delta = jax.tree_util.tree_map(lambda g: -lr * g, jax.grad(objective)(params))
    jvp_increment = linearised_step(model.apply, params, delta, X_R)
    g = model.apply(params, X[idx]) - y[idx]  # dl/df for l = (f - y)^2 / 2
    K = tangent_kernel(model, params, X_R, X[idx]) / idx.shape[0]
    np.testing.assert_allclose(-lr * K @ g, jvp_increment, rtol=1e-10, atol=1e-14)


def test_sigmoid_output_reweights_logit_kernel():
    """Eq. 13: K^sigma = sigma'(g(x)) sigma'(g(x_i)) K^g."""
    model = lensbox.mlp((6,), output="sigmoid", init="torch")
    params = model.init(jax.random.PRNGKey(0), 5)
    K = tangent_kernel(model, params, X_R, X_B)
    K_g = tangent_kernel(model.logits, params, X_R, X_B)
    sR, sB = model.apply(params, X_R), model.apply(params, X_B)
    np.testing.assert_allclose(
        K, np.outer(sR * (1 - sR), sB * (1 - sB)) * K_g, rtol=1e-10
    )


def test_bad_inputs():
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 5)
    with pytest.raises(lensbox.ArgumentError, match="method must be one of"):
        tangent_kernel(model, params, X_R, X_B, method="fast")
    with pytest.raises(
        lensbox.ArgumentError, match="needs a lensbox.engine.models.mlp"
    ):
        tangent_kernel(model.apply, params, X_R, X_B, method="structured")
    with pytest.raises(lensbox.ShapeError, match="X_B must have 5 features per row"):
        tangent_kernel(model, params, X_R, X_B[:, :3])
    with pytest.raises(lensbox.ShapeError, match="shaped like params"):
        tangent_kernel(model, params, X_R, X_B, preconditioner=[1.0])
    with pytest.raises(lensbox.ArgumentTypeError, match="lensbox Model or an apply"):
        tangent_kernel(3, params, X_R, X_B)


def _truncated(inv, rank):
    U, s, Vt = np.linalg.svd(np.asarray(inv), full_matrices=False)
    return (U[:, :rank] * s[:rank]) @ Vt[:rank]


@pytest.mark.parametrize("widths", [(6,), (7, 6, 3)])
@pytest.mark.parametrize("rank", [1, 2])
def test_low_rank_preconditioner_equals_the_jacobian_route_on_the_truncated_phi(
    widths, rank
):
    # rank=r is the exact kernel of the preconditioner whose weights' 1/phi are truncated to
    # rank r (biases and blocks of smaller side <= r untouched): checked against Jacobians.
    model = lensbox.mlp(widths, activation="tanh", init="torch")
    params = model.init(jax.random.PRNGKey(2), 5)
    phi = _phi(params, seed=7)
    truncated = [
        {
            "w": 1.0 / _truncated(1.0 / layer["w"], rank)
            if rank < min(layer["w"].shape)
            else layer["w"],
            "b": layer["b"],
        }
        for layer in phi
    ]
    K_r = tangent_kernel(
        model, params, X_R, X_B, preconditioner=phi, method="structured", rank=rank
    )
    K_g = tangent_kernel(model.apply, params, X_R, X_B, preconditioner=truncated)
    np.testing.assert_allclose(K_r, K_g, rtol=1e-9, atol=1e-12)
    K_exact = tangent_kernel(model, params, X_R, X_B, preconditioner=phi)
    assert (
        np.abs(np.asarray(K_r) - np.asarray(K_exact)).max() > 1e-6
    )  # an approximation


def test_low_rank_preconditioner_is_exact_when_one_over_phi_has_that_rank():
    model = lensbox.mlp((8, 6), activation="relu", init="torch")
    params = model.init(jax.random.PRNGKey(4), 5)
    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    phi = [  # 1/phi_W = u v^T (rank one, positive) on every weight
        {
            "w": 1.0
            / jnp.outer(
                0.5 + jax.random.uniform(keys[i], (layer["w"].shape[0],)),
                0.5 + jax.random.uniform(keys[i + 1], (layer["w"].shape[1],)),
            ),
            "b": 1.0 + jnp.abs(layer["b"]),
        }
        for i, layer in enumerate(params)
    ]
    K_1 = tangent_kernel(model, params, X_R, X_B, preconditioner=phi, rank=1)
    K_g = tangent_kernel(model.apply, params, X_R, X_B, preconditioner=phi)
    np.testing.assert_allclose(K_1, K_g, rtol=1e-9, atol=1e-12)


def test_rank_needs_a_preconditioner_and_the_structured_route():
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 5)
    phi = _phi(params)
    with pytest.raises(lensbox.ArgumentError, match="needs preconditioner=phi"):
        tangent_kernel(model, params, X_R, X_B, rank=2)
    with pytest.raises(lensbox.ArgumentError, match="the route here is 'generic'"):
        tangent_kernel(model.apply, params, X_R, X_B, preconditioner=phi, rank=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(
            lensbox.ArgumentError, match="rank must be a positive integer"
        ):
            tangent_kernel(model, params, X_R, X_B, preconditioner=phi, rank=bad)


def test_a_nan_row_is_an_error_not_nan_entries():
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    with pytest.raises(lensbox.NonFiniteError, match="X_R contains 1 non-finite value"):
        tangent_kernel(model, params, X, np.ones((2, 3)))
    with pytest.raises(lensbox.NonFiniteError, match="X_B contains 1 non-finite value"):
        tangent_kernel(model.apply, params, np.ones((2, 3)), X)


def test_layer_trace_shares_split_the_trace_by_layer():
    model = lensbox.mlp((6, 5))
    params = model.init(jax.random.PRNGKey(0), 4)
    X = jax.random.normal(jax.random.PRNGKey(1), (9, 4))
    phi = jax.tree_util.tree_map(lambda p: 1.0 + p * p, params)
    for precond in (None, phi):
        shares = lensbox.layer_trace_shares(model, params, X, precond)
        # Brute force: squared Jacobian entries of each layer, divided by phi, summed over rows.
        J = jax.vmap(
            jax.grad(lambda p, x: model.apply(p, x[None])[0]), in_axes=(None, 0)
        )(params, X)
        scale = (
            phi
            if precond is not None
            else jax.tree_util.tree_map(jnp.ones_like, params)
        )
        parts = np.array(
            [
                sum(
                    float(jnp.sum(j * j / s))
                    for j, s in zip(
                        jax.tree_util.tree_leaves(J[l]),
                        jax.tree_util.tree_leaves(scale[l]),
                    )
                )
                for l in range(3)
            ]
        )
        np.testing.assert_allclose(shares, parts / parts.sum(), rtol=1e-10)
