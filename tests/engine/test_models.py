import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox import count_parameters, mlp


def test_mlp_shapes_and_parameter_count():
    model = mlp((200, 200))
    params = model.init(jax.random.PRNGKey(0), 64)
    assert [p["w"].shape for p in params] == [(64, 200), (200, 200), (200, 1)]
    assert count_parameters(params) == 64 * 200 + 200 + 200 * 200 + 200 + 201
    out = model.apply(params, jnp.ones((5, 64)))
    assert out.shape == (5,)
    multi = mlp((8,), out=3)
    assert multi.apply(
        multi.init(jax.random.PRNGKey(0), 4), jnp.ones((2, 4))
    ).shape == (2, 3)


def test_standard_init_variance_and_zero_bias():
    params = mlp((2000,)).init(jax.random.PRNGKey(1), 500)
    assert np.var(np.asarray(params[0]["w"])) == pytest.approx(2 / 500, rel=0.02)
    assert np.var(np.asarray(params[1]["w"])) == pytest.approx(1 / 2000, rel=0.1)
    assert np.all(np.asarray(params[0]["b"]) == 0)


def test_torch_init_bounds_and_alpha_scaling():
    key = jax.random.PRNGKey(2)
    base = mlp((300,), init="torch").init(key, 100)
    big = mlp((300,), init="torch", alpha=6.0).init(key, 100)
    bound = 1 / np.sqrt(100)
    w = np.asarray(base[0]["w"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(np.asarray(base[0]["b"])).max() <= bound
    for a, b in zip(jax.tree_util.tree_leaves(base), jax.tree_util.tree_leaves(big)):
        np.testing.assert_allclose(6.0 * np.asarray(a), np.asarray(b))


def test_sigmoid_output_and_logits():
    model = mlp((16,), output="sigmoid", activation="tanh")
    params = model.init(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    np.testing.assert_allclose(
        model.apply(params, x), jax.nn.sigmoid(model.logits(params, x))
    )
    assert model.spec.depth == 2 and model.spec.output == "sigmoid"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation": "gelu"}, "activation must be one of"),
        ({"output": "softmax"}, "output must be one of"),
        ({"init": "xavier"}, "init must be one of"),
        ({"alpha": 0.0}, "alpha must be positive"),
    ],
)
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(lensbox.ArgumentError, match=message):
        mlp((4,), **kwargs)


def test_bad_widths():
    with pytest.raises(lensbox.ArgumentError, match="positive integers"):
        mlp((4, 0))
    with pytest.raises(
        lensbox.ArgumentTypeError,
        match=r"widths must be a sequence .* \(4,\) for one hidden layer",
    ):
        mlp(4)
    with pytest.raises(lensbox.ArgumentError, match="positive integers"):
        mlp((4.5,))
