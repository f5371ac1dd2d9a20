import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lensbox.connectivity.barriers import (
    barrier,
    eq10_comparison,
    evaluate,
    gradient_change,
    interpolate,
    interpolation_curve,
    recompute_statistics,
)
from lensbox.connectivity.networks import get_layer, layer_names, residual_mlp, resnet


def _two_children(net, shape=(3, 3, 1), seed=0):
    p1, s1 = net.init(jax.random.PRNGKey(seed), shape)
    p2, s2 = net.init(jax.random.PRNGKey(seed + 1), shape)
    s2 = jax.tree_util.tree_map(lambda v: v * 1.5 + 0.1, s2)
    return (p1, s1), (p2, s2)


def test_interpolate_matches_a_python_loop(rng):
    net = residual_mlp(4, classes=3)
    (p1, _), (p2, _) = _two_children(net)
    alphas = [0.0, 0.3, 1.0]
    got = interpolate(p1, p2, alphas)
    for i, a in enumerate(alphas):
        want = jax.tree_util.tree_map(lambda u, v: a * u + (1 - a) * v, p1, p2)
        for g, w in zip(
            jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
        ):
            np.testing.assert_allclose(g[i], w, rtol=1e-14)
    with pytest.raises(ValueError, match="alphas"):
        interpolate(p1, p2, [0.5, 1.5])


def test_barrier_definitions_on_a_toy_curve():
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    loss = np.array([1.0, 1.6, 2.5, 2.2, 3.0])  # mix: 1.0, 1.5, 2.0, 2.5, 3.0
    assert float(barrier(loss, alphas)) == pytest.approx(0.5)
    assert float(barrier(loss, alphas, kind="midpoint")) == pytest.approx(0.5)
    acc = np.array([0.9, 0.88, 0.7, 0.95, 0.8])  # mix: 0.9, 0.875, 0.85, 0.825, 0.8
    assert float(barrier(acc, alphas, higher_is_better=True)) == pytest.approx(0.15)
    assert float(
        barrier(acc, alphas, higher_is_better=True, kind="midpoint")
    ) == pytest.approx(0.15)
    # A curve below the chord has a negative barrier; leading axes are runs.
    np.testing.assert_allclose(
        barrier(np.stack([loss, 4.0 - loss * 0 - alphas]), alphas), [0.5, 0.0]
    )
    with pytest.raises(ValueError, match="0.5"):
        barrier(loss[[0, 1, 4]], alphas[[0, 1, 4]], kind="midpoint")
    with pytest.raises(ValueError, match="contain 0 and 1"):
        barrier(loss[:3], alphas[:3])
    with pytest.raises(ValueError, match="kind"):
        barrier(loss, alphas, kind="mean")


def test_interpolation_curve_matches_a_loop_both_ways_of_treating_batchnorm(rng):
    net = residual_mlp(6, classes=3)
    c1, c2 = _two_children(net)
    X = jnp.asarray(rng.normal(size=(11, 3, 3, 1)))
    y = jnp.asarray(rng.integers(0, 3, size=11))
    Xs = jnp.asarray(rng.normal(size=(17, 3, 3, 1)))
    alphas = np.linspace(0, 1, 4)
    for mode in ("interpolate", "recompute"):
        loss, acc = interpolation_curve(
            net, c1, c2, X, y, alphas, bn=mode, X_stats=Xs, chunk=4
        )
        for i, a in enumerate(alphas):
            theta = jax.tree_util.tree_map(
                lambda u, v: a * u + (1 - a) * v, c1[0], c2[0]
            )
            stats = jax.tree_util.tree_map(
                lambda u, v: a * u + (1 - a) * v, c1[1], c2[1]
            )
            if mode == "recompute":
                stats = recompute_statistics(net, theta, stats, Xs)
            want = evaluate(net, theta, stats, X, y)
            np.testing.assert_allclose([loss[i], acc[i]], want, rtol=1e-10)
    with pytest.raises(ValueError, match="X_stats"):
        interpolation_curve(net, c1, c2, X, y, alphas, bn="recompute")
    with pytest.raises(ValueError, match="bn must be"):
        interpolation_curve(net, c1, c2, X, y, alphas, bn="keep")


def test_recomputed_statistics_are_those_of_the_inputs(rng):
    net = residual_mlp(5, classes=2)
    (p, s), _ = _two_children(net)
    Xs = jnp.asarray(rng.normal(size=(30, 3, 3, 1)))
    stats = recompute_statistics(net, p, s, Xs)
    first = np.asarray(Xs).reshape(30, -1) @ np.asarray(
        get_layer(p, "00_stem/dense")["w"]
    )
    np.testing.assert_allclose(
        stats["00_stem"]["bn"]["mean"], first.mean(0), rtol=1e-10
    )
    np.testing.assert_allclose(
        stats["00_stem"]["bn"]["var"], first.var(0, ddof=1), rtol=1e-10
    )


@pytest.mark.parametrize(
    "make",
    [lambda: residual_mlp(4, classes=3), lambda: resnet((2, 4), blocks=1, classes=3)],
)
def test_gradient_change_matches_explicit_per_example_gradients(make, rng):
    net = make()
    a, b = _two_children(net, shape=(4, 4, 1))
    X = jnp.asarray(rng.normal(size=(5, 4, 4, 1)))
    got = gradient_change(
        net, a, b, X, chunk=2
    )  # 5 rows in chunks of 2: the padding path
    sums = {name: 0.0 for name, _ in layer_names(a[0])}
    grad = jax.jit(jax.grad(lambda p, s, x, c: net.apply(p, s, x, False)[0][0, c]))
    for r in range(5):
        for c in range(3):
            grads = [grad(params, stats, X[r : r + 1], c) for params, stats in (a, b)]
            for name in sums:
                ga = jax.tree_util.tree_leaves(get_layer(grads[0], name))
                gb = jax.tree_util.tree_leaves(get_layer(grads[1], name))
                sums[name] += sum(float(jnp.sum((v - u) ** 2)) for u, v in zip(ga, gb))
    assert list(got) == list(sums)
    for name, total in sums.items():
        count = sum(
            leaf.size for leaf in jax.tree_util.tree_leaves(get_layer(a[0], name))
        )
        assert got[name] == pytest.approx(total / (5 * 3 * count), rel=1e-9)
    assert all(v > 0 for v in got.values())


def test_eq10_gaps_vanish_linearly_as_the_children_stay_close_to_the_spawn_point(rng):
    net = residual_mlp(6, classes=3)
    spawn_point, (q, _) = _two_children(net)
    (r, _), _ = _two_children(net, seed=7)
    X = jnp.asarray(rng.normal(size=(9, 3, 3, 1)))
    y = jnp.asarray(rng.integers(0, 3, size=9))
    Xs = jnp.asarray(rng.normal(size=(20, 3, 3, 1)))
    gaps = []
    for eps in (1e-3, 1e-4):
        kid = lambda d: (
            jax.tree_util.tree_map(lambda p, v: p + eps * v, spawn_point[0], d),
            spawn_point[1],
        )  # noqa: E731
        out = eq10_comparison(net, spawn_point, kid(q), kid(r), X, y, Xs)
        gaps.append([out["gap_wa_ens"], out["gap_lin_ens"], out["gap_lin_wa"]])
    gaps = np.array(gaps)
    # Second-order terms relative to first-order ones: a tenfold smaller step gives gaps at least
    # five times smaller (exactly ten times for a smooth network; ReLU kinks blur it), whereas a
    # first-order discrepancy would not shrink at all.
    assert np.all(gaps[1] / gaps[0] < 0.2)
    assert np.all(gaps[1] < 1e-2)


def test_measure_spawns_agrees_with_the_single_run_functions(rng):
    from lensbox.connectivity.barriers import measure_spawns
    from lensbox.engine.optim import sgd
    from lensbox.connectivity.spawning import (
        index,
        init_state,
        make_trainer,
        train_children,
        train_to_checkpoints,
    )

    X = jnp.asarray(rng.normal(size=(24, 2, 2, 1)))
    y = jnp.asarray(rng.integers(0, 3, size=24))
    net, opt = residual_mlp(4, classes=3), sgd(0.1, momentum=0.9)
    advance = make_trainer(net, opt, X, y, batch_size=6)
    inits = jax.random.split(jax.random.PRNGKey(0), 2)
    states = jax.vmap(lambda k: init_state(net, opt, k, (2, 2, 1)))(inits)
    parents = train_to_checkpoints(
        advance, states, [0, 1], [0, 2, 3, 5], progress=False
    )
    spawned, later = (
        index(parents, jnp.array([0, 1])),
        index(parents, jnp.array([2, 3])),
    )
    kids, interrupted = train_children(advance, spawned, 4, 3, 8, progress=False)
    assert (
        not interrupted
        and kids.step.shape == (2, 2, 4)
        and np.all(np.asarray(kids.step) == 8)
    )
    alphas = np.linspace(0, 1, 5)
    out = measure_spawns(net, spawned, later, kids, X[:10], y[:10], X, X[:7], alphas)
    assert out["curves"]["recompute"]["loss"].shape == (2, 2, 2, 5)
    c, s = 1, 0
    pick = lambda st, j: (
        index(index(index(st.params, c), s), j),
        index(index(index(st.bn_state, c), s), j),
    )  # noqa: E731
    loss, acc = interpolation_curve(
        net, pick(kids, 2), pick(kids, 3), X[:10], y[:10], alphas
    )
    np.testing.assert_allclose(
        out["curves"]["interpolate"]["loss"][c, s, 1], loss, rtol=1e-9
    )
    np.testing.assert_allclose(
        out["barriers"]["interpolate"]["error_max"][c, s, 1],
        barrier(acc, alphas, higher_is_better=True),
        rtol=1e-9,
    )
    one = lambda st: (index(index(st.params, c), s), index(index(st.bn_state, c), s))  # noqa: E731
    change = gradient_change(net, one(spawned), one(later), X[:7])
    np.testing.assert_allclose(
        out["gradient_change"][c, s], list(change.values()), rtol=1e-9
    )
    eq = eq10_comparison(
        net, one(spawned), pick(kids, 0), pick(kids, 1), X[:10], y[:10], X
    )
    assert out["eq10"]["gap_lin_ens"][c, s] == pytest.approx(
        float(eq["gap_lin_ens"]), rel=1e-9
    )
    np.testing.assert_allclose(out["child_accuracy"][c, s, 1], [acc[-1], acc[0]])
