"""Tests of lensbox.boosting.irregular: App. C.2's irregularity protocol and its metrics."""

import jax
import numpy as np
import pytest

import lensbox
from lensbox.boosting import irregular as irr


def _table(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ np.diag([3.0, 1.0, 0.5][:d])
    return X, X[:, 0] + 0.1 * rng.standard_normal(n)


def test_irregularity_is_distance_to_median_on_first_component():
    rng = np.random.default_rng(0)
    t = rng.standard_normal(201)
    X = np.column_stack([t, 2 * t]) + 1e-9 * rng.standard_normal(
        (201, 2)
    )  # a line: PC1 is the line
    score = irr.irregularity(X)
    z = (t - t.mean()) / t.std()
    assert np.allclose(score, np.abs(z - np.median(z)) * np.sqrt(2), atol=1e-6)
    assert np.allclose(
        irr.irregularity(-X), score
    )  # the sign of the component does not matter


def test_split_pools_mixtures_and_disjointness():
    X, y = _table()
    split = irr.irregular_split(X, y, n_train=300, n_val=60, n_test=120, seed=3)
    score = irr.irregularity(X)
    top = set(np.argsort(-score)[:60].tolist())
    lookup = {tuple(row): i for i, row in enumerate(X)}
    eval_ids = [lookup[tuple(r)] for r in split.X_eval]
    train_ids = [lookup[tuple(r)] for r in split.X_train]
    assert not set(eval_ids) & set(train_ids) and not set(train_ids) & top
    assert all((i in top) == flag for i, flag in zip(eval_ids, split.irregular))
    assert split.n_fit == 240 and len(split.y_train) == 300
    for p, idx in split.mixtures.items():
        assert len(idx) == 120 and len(set(idx.tolist())) == 120
        assert np.isclose(split.irregular[idx].mean(), p, atol=1 / 120)


def test_split_refuses_impossible_sizes():
    X, y = _table(n=100)
    with pytest.raises(ValueError, match="not enough rows"):
        irr.irregular_split(
            X, y, n_train=50, n_val=10, n_test=60
        )  # needs 30 irregular, has 10
    with pytest.raises(ValueError, match="y must hold one target per row of X"):
        irr.irregular_split(X, y[:-1], n_train=50, n_val=10, n_test=10)


def test_normalised_max_norm_and_relative_gap():
    test = np.array([[1.0, 4.0], [3.0, 2.0]])
    train = np.array([[2.0, 1.0], [1.0, 2.0]])
    assert irr.normalised_max_norm(test, train) == pytest.approx((3 + 4) / (2 + 2))
    with pytest.raises(ValueError, match="same T"):
        irr.normalised_max_norm(test, train[:, :1])
    gap = irr.relative_gap([2.0, 3.0, 5.0], [1.0, 1.0, 2.0])
    assert np.allclose(gap, [1.0, 2.0, 3.0])
    mean, se = lensbox.mean_and_se([[1.0, 2.0], [3.0, 6.0]])
    assert np.allclose(mean, [2.0, 4.0]) and np.allclose(se, [1.0, 2.0])


def test_search_space_draws():
    rng = np.random.default_rng(0)
    draws = [irr.sample_gbt(rng) for _ in range(2000)]
    trees = np.array([d["n_estimators"] for d in draws])
    assert trees.min() >= 10 and trees.max() <= 1000
    depths = [d["max_depth"] for d in draws]
    assert abs(depths.count(3) / 2000 - 0.6) < 0.05
    assert abs(np.median(np.log10([d["learning_rate"] for d in draws])) + 2) < 0.15
    rates = [irr.sample_nn_lr(rng) for _ in range(500)]
    assert 1e-5 <= min(rates) and max(rates) <= 1e-2


def test_kernel_norm_tracker_matches_jacobians():
    model = lensbox.mlp((5, 4))
    params = model.init(jax.random.PRNGKey(0), 3)
    rng = np.random.default_rng(1)
    X_rows, X_train = rng.standard_normal((7, 3)), rng.standard_normal((9, 3))
    tracker = irr.kernel_norm_tracker(
        model, X_rows, X_train, chunk=3
    )  # 7 rows: padded chunks
    got = np.asarray(tracker.record(tracker.init(params), params))
    jac = jax.jacrev(lambda p, X: model.apply(p, X))
    flat = lambda X: np.concatenate(
        [
            np.asarray(a).reshape(len(X), -1)
            for a in jax.tree_util.tree_leaves(jac(params, X))
        ],
        1,
    )
    K = flat(X_rows) @ flat(X_train).T / 9
    assert np.allclose(got, np.linalg.norm(K, axis=1), rtol=1e-10)


def test_run_seed_tree_ratio_is_bounded_and_shapes():
    X, y = _table(n=500)
    res = irr.run_seed(
        X,
        y,
        n_train=200,
        n_val=50,
        n_test=80,
        steps=30,
        search_runs=1,
        checkpoints=3,
        max_estimators=20,
        seed=0,
    )
    assert res.mse_nn.shape == res.R_gbt.shape == (len(irr.PROPORTIONS),)
    assert np.all(
        res.R_gbt <= 1 + 1e-12
    )  # tree norms are bounded by the smallest training leaf
    assert res.nn_train.shape == (200, 3) and res.gbt_eval.shape[0] == 80 + 40
    assert res.sizes == {"n_train": 200, "n_val": 50, "n_test": 80}
    mix = res.irregular.size == res.y_eval.size == res.pred_eval["gbt"].size
    assert mix and res.mse_linear.shape == (len(irr.PROPORTIONS),)
    # the stored predictions give the stored MSEs (p = 0: the regular test rows only)
    assert np.isclose(
        np.mean((res.pred_eval["gbt"][:80] - res.y_eval[:80]) ** 2), res.mse_gbt[0]
    )
    assert np.isclose(
        np.mean((res.pred_eval["linear"][:80] - res.y_eval[:80]) ** 2),
        res.mse_linear[0],
    )
    summary = irr.summarise([res, res])
    assert np.allclose(summary["gap"][0][0], 1.0) and np.allclose(
        summary["R_nn"][1], 0.0
    )


def test_txhousing_standin_offline():
    from lensbox.data.tabular import load_txhousing

    data = load_txhousing(seed=0)
    # year, month, sales, volume, listings, inventory and date: every numerical column with at
    # least 10 distinct values besides the target (the benchmark's rule)
    assert data.standin and data.X_train.shape[1] == 7
    assert data.n_train + data.n_test == 7126
    assert abs(data.y_train.mean()) < 1e-10  # standardised log target


def test_fit_sizes_shrinks_in_order():
    # a big table keeps what was asked
    assert irr.fit_sizes(50_000, n_train=1500, n_val=400, n_test=600) == {
        "n_train": 1500,
        "n_val": 400,
        "n_test": 600,
    }
    # 1,728 rows: a pool of 173 fills test sets of 346 at p = 0.5; 1,555 - 346 regular rows train
    got = irr.fit_sizes(1728, n_train=1500, n_val=400, n_test=600)
    assert got == {"n_train": 1209, "n_val": 400, "n_test": 346}
    assert irr.fit_sizes(1728, n_train=1500, n_val=2000, n_test=600)["n_val"] == 403
    assert irr.fit_sizes(1000, n_train=None, n_val=400, n_test=600) == {
        "n_train": None,
        "n_val": 233,
        "n_test": 200,
    }
    # the sizes it gives are ones irregular_split accepts
    X, y = _table(n=1000)
    split = irr.irregular_split(
        X, y, **irr.fit_sizes(1000, n_train=5000, n_val=400, n_test=600)
    )
    assert len(split.y_train) == 700 and split.n_fit == 700 - 233


def test_linear_fit_extrapolates_a_line():
    X = np.linspace(0, 1, 50)[:, None]
    predict = irr.linear_fit(X, 3 * X[:, 0] - 1)
    assert np.allclose(predict(np.array([[10.0]])), 29.0)
    with pytest.raises(irr.ShapeError):
        irr.linear_fit(X, np.ones(3))


def test_stand_ins_are_what_the_rule_chooses():
    from lensbox.data import tabular

    screen = tabular.screen_stand_ins()
    chosen = {
        r["verdict"].removeprefix("stand-in ")
        for r in screen
        if r["verdict"].startswith("stand-in ")
    }
    assert chosen == set(tabular.STAND_INS)
    # every table the rule looks at is accounted for, and the near misses are there by size
    small = {r["item"] for r in screen if r["verdict"].startswith("fewer than")}
    assert {"GrinnellHouses", "Sacramento", "Boston"} <= small
    for name in tabular.STAND_INS:
        X, y, names = tabular.stand_in_arrays(name)
        assert len(y) >= tabular.STAND_IN_MIN_ROWS and X.shape[1] >= 4 and np.all(y > 0)
    with pytest.raises(tabular.ArgumentError, match="no stand-in"):
        tabular.stand_in_arrays("houses")
