"""The polynomial-regression grokking model (paper Eq. 25) and its closed-form tangent kernel."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.complexity.grokking import quadratic_network, quadratic_tangent_kernel
from lensbox.data import polynomial_task


@pytest.fixture(autouse=True)
def _x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _moved(params, key, scale=0.3):
    """Parameters away from initialisation, so the kernel is tested where phi' varies."""
    theta = params["theta"] + scale * jax.random.normal(key, params["theta"].shape)
    return {**params, "theta": theta}


def _jacobian_gram(model, params, X_R, X_B, phi=None):
    jac = lambda X: jax.jacrev(lambda p: model.apply(p, X))(params)["theta"].reshape(
        X.shape[0], -1
    )
    J_R, J_B = jac(X_R), jac(X_B)
    if phi is not None:
        J_R = J_R / phi["theta"].reshape(-1)
    return J_R @ J_B.T


@pytest.mark.parametrize("epsilon", [0.05, 0.5])
@pytest.mark.parametrize("centred", [True, False])
def test_closed_form_kernel_equals_jacobian_gram(epsilon, centred):
    model = quadratic_network(13, epsilon, centred=centred)
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    params = _moved(model.init(k[0], 6), k[1])
    X_R = jax.random.normal(k[2], (7, 6))
    X_B = jax.random.normal(k[3], (4, 6))
    expected = _jacobian_gram(model, params, X_R, X_B)
    got = quadratic_tangent_kernel(params, X_R, X_B, epsilon=epsilon)
    assert got.shape == (7, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_closed_form_kernel_with_adam_preconditioner():
    model = quadratic_network(9, 0.2)
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    params = _moved(model.init(k[0], 5), k[1])
    phi = jax.tree_util.tree_map(lambda a: 0.5 + jnp.abs(a), params)
    X = jax.random.normal(k[2], (6, 5))
    np.testing.assert_allclose(
        quadratic_tangent_kernel(params, X, X[:3], phi, epsilon=0.2),
        _jacobian_gram(model, params, X, X[:3], phi),
        rtol=1e-10,
        atol=1e-12,
    )


def test_kernel_agrees_with_lensbox_generic_tangent_kernel():
    from lensbox.engine.kernels import tangent_kernel

    model = quadratic_network(11, 0.3)
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    params = _moved(model.init(k[0], 4), k[1])
    X = jax.random.normal(k[2], (5, 4))
    np.testing.assert_allclose(
        quadratic_tangent_kernel(params, X, X, epsilon=0.3),
        tangent_kernel(model.apply, params, X, X, method="generic"),
        rtol=1e-10,
        atol=1e-12,
    )


def test_centring_makes_initial_prediction_zero_and_freezes_the_copy():
    model = quadratic_network(50, 0.2, centred=True)
    params = model.init(jax.random.PRNGKey(3), 8)
    X = jax.random.normal(jax.random.PRNGKey(4), (20, 8))
    np.testing.assert_array_equal(model.apply(params, X), np.zeros(20))
    raw = quadratic_network(50, 0.2, centred=False)
    assert np.abs(np.asarray(raw.apply({"theta": params["theta"]}, X))).max() > 0.01
    grads = jax.grad(lambda p: jnp.sum(model.apply(p, X) ** 2))(
        _moved(params, jax.random.PRNGKey(5))
    )
    assert (
        np.all(np.asarray(grads["theta_init"]) == 0)
        and np.abs(np.asarray(grads["theta"])).max() > 0
    )


def test_model_matches_equation_25():
    eps = 0.3
    model = quadratic_network(7, eps, centred=False)
    params = model.init(jax.random.PRNGKey(6), 3)
    X = np.asarray(jax.random.normal(jax.random.PRNGKey(7), (4, 3)))
    theta = np.asarray(params["theta"])
    h = X @ theta.T
    np.testing.assert_allclose(
        model.apply(params, X), np.mean(h + eps / 2 * h**2, axis=1), rtol=1e-12
    )
    assert theta.shape == (7, 3)


def test_closed_form_kernel_drives_the_smoother_like_the_generic_one():
    from lensbox.engine.smoother import smoother_tracker

    model = quadratic_network(20, 0.5)
    k = jax.random.split(jax.random.PRNGKey(8), 3)
    X = jax.random.normal(k[0], (12, 5)) / np.sqrt(5)
    y = 0.5 * (X @ jax.random.normal(k[1], (5,))) ** 2
    params = model.init(k[2], 5)
    opt = lensbox.sgd(40.0)
    runs = {}
    for name, fn in (
        ("closed", functools.partial(quadratic_tangent_kernel, epsilon=0.5)),
        ("generic", None),
    ):
        tracker = smoother_tracker(model, X[:8], y[:8], X[8:], opt, kernel_fn=fn)
        runs[name] = lensbox.train(
            model,
            params,
            opt,
            X[:8],
            y[:8],
            steps=15,
            trackers={"s": tracker},
            progress=False,
        ).records["s"]
    np.testing.assert_allclose(
        runs["closed"]["closed_loop"],
        runs["generic"]["closed_loop"],
        rtol=1e-9,
        atol=1e-12,
    )
    assert runs["closed"]["p_train"][-1] > 0


def test_validation():
    with pytest.raises(ValueError, match="width"):
        quadratic_network(0, 0.2)
    with pytest.raises(ValueError, match="epsilon"):
        quadratic_network(5, float("nan"))
    params = quadratic_network(5, 0.2).init(jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="columns"):
        quadratic_tangent_kernel(
            params, jnp.ones((2, 4)), jnp.ones((2, 3)), epsilon=0.2
        )


def test_the_chapters_runs_are_one_unit_each_tracked_as_the_chapter_states():
    from lensbox.complexity import grokking as G

    config = G.CONFIGS["book"]
    calls = G.unit_calls(config)
    poly, mnist = config["poly"], config["mnist"]
    assert len(calls) == (
        3 * poly["seeds"]
        + 3 * mnist["seeds"]
        + 3 * mnist["p_seeds"]
        + 2 * 2 * mnist["seeds"]
        + 2
    )
    tracked = {u for u, (_, _, kw) in calls.items() if kw.get("smoother", True)}
    # polynomial: every seed of epsilon 0.2, the first seed of the others
    assert {u for u in tracked if u.startswith("poly_")} == {
        "poly_0.2_seed0", "poly_0.2_seed1", "poly_0.2_seed2",
        "poly_0.05_seed0", "poly_0.5_seed0",
    }  # fmt: skip
    # MNIST: the main alpha's first seed for the whole run; every alpha's first p_seeds seeds for
    # p_steps, recorded every p_every steps
    p_units = {
        f"mnist-p_{a:g}_seed{s}"
        for a in (5.0, 6.0, 7.0)
        for s in range(mnist["p_seeds"])
    }
    assert {u for u in tracked if u.startswith("mnist")} == {"mnist_6_seed0"} | p_units
    assert calls["mnist-p_5_seed2"] == (
        "mnist",
        (5.0, 2),
        {"steps": mnist["p_steps"], "record_every": mnist["p_every"]},
    )
    # the control: the smoother on its first seed at the runs' sizes; the paper's sizes network-only
    assert {u for u in tracked if u.startswith("control")} == {
        "control_identity_seed0", "control_sigmoid_seed0",
    }  # fmt: skip
    paper = calls["control-paper_sigmoid_seed1"]
    assert paper[1] == (1.0, 1)
    assert paper[2]["sizes"] == {"width": 200, "batch": 200, "n_train": None}
    assert paper[2]["output"] == "sigmoid" and paper[2]["record_every"] == 1
    assert calls["approx_paper-rate"][2]["lr"] == 1e-4
    # arrange: every unit lands in exactly one group; mnist_full holds the main alpha's tracked seeds
    units = {u: {"name": u, **({"p_train": 0} if u in tracked else {})} for u in calls}
    groups = G.arrange(config, units)
    assert [r["name"] for r in groups["mnist_full"]] == ["mnist_6_seed0"]
    assert [r["name"] for r in groups["mnist_p"][7.0]] == [
        f"mnist-p_7_seed{s}" for s in range(mnist["p_seeds"])
    ]
    assert [r["name"] for r in groups["poly"][0.05]] == [
        f"poly_0.05_seed{s}" for s in range(poly["seeds"])
    ]
    placed = [
        r["name"]
        for key in ("poly", "mnist", "mnist_p", "control", "control_paper")
        for runs in groups[key].values()
        for r in runs
    ]
    placed += [r["name"] for r in groups["approx"].values()]
    assert sorted(placed) == sorted(calls)
    with pytest.raises(lensbox.ArgumentError, match="no unit"):
        G.run_unit(config, "poly_0.3_seed0")


def test_a_control_run_can_take_other_sizes_and_record_every_step():
    from lensbox.complexity import grokking as G

    config = G.CONFIGS["smoke"]
    run = G.mnist_run(config, 1.0, 0, smoother=False, steps=7, record_every=1)
    assert run["steps"].tolist() == list(range(8))
    assert run["n"] == config["mnist"]["n_train"]
    paper = G.mnist_run(
        config,
        1.0,
        0,
        smoother=False,
        steps=7,
        record_every=1,
        sizes={"width": 40, "batch": 200, "n_train": None},
    )
    # every training image of the data set, and another network: other initial predictions
    assert paper["n"] == len(G.mnist_task(config).dataset.y_train) > run["n"]
    assert paper["f0"] != run["f0"]
    with pytest.raises(lensbox.ArgumentError, match="sizes"):
        G.mnist_run(config, 1.0, 0, steps=2, sizes={"depth": 3})


def test_a_polynomial_run_records_the_centred_network_and_its_readings():
    """The centred network starts at zero (its first test MSE is the targets' mean square), the
    telescoping model is exact at step 0, training lowers the error, and tracking the smoother
    leaves the run itself unchanged."""
    from lensbox.complexity import grokking as G

    config = {
        "poly": dict(
            d=8, n_train=44, n_test=40, width=50, steps=60, seeds=1, p_rows=20
        ),
    }
    config["poly"]["lr"] = 2.0 * config["poly"]["width"]
    run = G.poly_run(config, 0.2, seed=0)
    data = polynomial_task(8, 44, 40, seed=0)
    assert run["n"] == 44 and len(run["steps"]) == len(run["train"]) == len(
        run["p_test"]
    )
    np.testing.assert_allclose(run["test"][0], np.mean(data.y_test**2), rtol=1e-12)
    # Step 0: both are the network's own prediction, up to the rounding of separately
    # compiled programs (the targets are of order 1).
    assert run["telescoping_error"][0] < 1e-12 and run["smoother_error"][0] < 1e-12
    assert run["train"][-1] < 0.5 * run["train"][0]
    without = G.poly_run(config, 0.2, seed=0, smoother=False)
    assert "p_train" not in without
    # The probe route (config "probes"): the same closed-loop prediction, p with standard errors.
    probed = G.poly_run({"poly": {**config["poly"], "probes": 16}}, 0.2, seed=0)
    np.testing.assert_allclose(
        probed["smoother_error"], run["smoother_error"], rtol=1e-8
    )
    assert "p_train_se" not in run and np.all(probed["p_train_se"][1:] > 0)
    late = slice(len(run["steps"]) // 2, None)
    assert np.all(
        np.abs(probed["p_train"] - run["p_train"])[late]
        < 5 * probed["p_train_se"][late]
    )
    np.testing.assert_allclose(without["test"], run["test"], rtol=1e-12)


def test_growth_runs_record_the_recursions_log_growth():
    from lensbox.complexity import grokking as G

    config = G.CONFIGS["smoke"]
    run = G.growth_run(config, 5.0, 0, start=20, stop=60, record_every=20)
    assert run["steps"].tolist() == [20, 40, 60]
    assert run["log_growth"][0] == 0.0 and np.all(np.isfinite(run["log_growth"]))
    frozen = G.frozen_growth(config, 5.0, 0, starts=[40, 20], horizon=10)
    assert frozen.shape == (2,) and np.all(np.isfinite(frozen))
    # frozen at step 20 for 10 steps is a different recursion from the run's own
    along = G.growth_run(config, 5.0, 0, start=20, stop=30, record_every=10)
    assert frozen[0] != pytest.approx(along["log_growth"][-1], rel=1e-9)
    with pytest.raises(lensbox.ArgumentError, match="start < stop"):
        G.growth_run(config, 5.0, 0, start=30, stop=30, record_every=10)
    with pytest.raises(lensbox.ArgumentError, match="horizon"):
        G.frozen_growth(config, 5.0, 0, starts=[20], horizon=0)
    # The kink crossings along the run only add up; each part frozen alone is a third recursion.
    assert run["crossings"][0] == 0 and np.all(np.diff(run["crossings"]) >= 0)
    parts = {
        f: G.frozen_growth(config, 5.0, 0, starts=[20], horizon=10, freeze=f)[0]
        for f in ("kernels", "statistics")
    }
    assert len({frozen[0], parts["kernels"], parts["statistics"]}) == 3
    with pytest.raises(lensbox.ArgumentError, match="freeze must be one of"):
        G.frozen_growth(config, 5.0, 0, starts=[20], horizon=10, freeze="params")
