"""Tests of lensbox.engine.seeds: the stopping rule, seeds trained side by side, and the smoother summary."""

import jax
import numpy as np
import pytest
from fixtures import fixed_rule, sign_task

import lensbox
from lensbox.engine import seeds


def test_stopping_rule_validates_its_fields():
    with pytest.raises(lensbox.ArgumentError, match="multiples of check_every"):
        seeds.StoppingRule(max_epochs=100, patience=30, check_every=20)
    with pytest.raises(
        lensbox.ArgumentError, match="max_epochs must be a positive integer"
    ):
        seeds.StoppingRule(max_epochs=0)
    with pytest.raises(lensbox.ArgumentError, match="tolerance must be non-negative"):
        seeds.StoppingRule(max_epochs=100, patience=50, tolerance=-1.0)


def test_one_seed_matches_lensbox_train_step_for_step():
    X, y = sign_task()
    model = lensbox.mlp((7,))
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(1), 2), X.shape[1]
    )
    opt = lensbox.sgd(0.3, momentum=0.9)
    rule = fixed_rule(60, check_every=10)
    runs = seeds.train_seeds(model, params, opt, X, y, rule=rule, batch_size=4, seed=3)
    assert list(runs.reasons) == ["max_epochs", "max_epochs"]
    assert np.all(
        runs.stop_steps == 60 * 3
    )  # 12 rows in batches of 4: 3 steps an epoch
    for s in range(2):
        one = jax.tree_util.tree_map(lambda a: a[s], params)
        ref = lensbox.train(model, one, opt, X, y, steps=180, batch_size=4, seed=3)
        for a, b in zip(
            jax.tree_util.tree_leaves(ref.params),
            jax.tree_util.tree_leaves(
                jax.tree_util.tree_map(lambda a: a[s], runs.params)
            ),
        ):
            np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12
            )


def test_each_seed_stops_on_its_own_and_is_frozen():
    X, y = sign_task(n=16)
    X[:, 0] = (
        np.where(y > 0, 1.0, -1.0) + 0.1 * X[:, 0]
    )  # a margin: a linear fit gets every label
    model = lensbox.mlp(())
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 2), X.shape[1]
    )
    Y = np.stack([y, np.random.default_rng(5).integers(0, 2, size=16).astype(float)])
    rule = seeds.StoppingRule(
        max_epochs=4000, patience=200, check_every=20, tolerance=1e-6
    )
    runs = seeds.train_seeds(model, params, lensbox.sgd(1.0), X, Y, rule=rule)
    assert runs.reasons[0] == "accuracy" and runs.reasons[1] != "accuracy"
    assert runs.stop_steps[0] < runs.stop_steps[1] and runs.stop_steps[0] % 20 == 0
    # The seed that stopped first ends exactly where a run of that many steps ends.
    first = jax.tree_util.tree_map(lambda a: a[0], params)
    ref = lensbox.train(
        model, first, lensbox.sgd(1.0), X, y, steps=int(runs.stop_steps[0])
    )
    np.testing.assert_allclose(
        np.asarray(ref.params[0]["w"]), runs.params[0]["w"][0], rtol=1e-10
    )
    # Its logged training accuracy is frozen at 1 from then on.
    after = runs.check_steps >= runs.stop_steps[0]
    assert np.all(runs.train_accuracy[after, 0] == 1.0)


def test_stall_rule_compares_the_loss_patience_epochs_apart():
    X, y = sign_task()
    model = lensbox.mlp(())
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 1), X.shape[1]
    )
    Y = np.random.default_rng(2).integers(0, 2, size=len(y)).astype(float)
    rule = seeds.StoppingRule(
        max_epochs=20_000,
        patience=100,
        check_every=50,
        tolerance=1e-3,
        perfect_accuracy=False,
    )
    runs = seeds.train_seeds(model, params, lensbox.sgd(0.5), X, Y, rule=rule)
    assert runs.reasons == ["stalled"]
    k = int(np.flatnonzero(runs.check_steps == runs.stop_steps[0])[0])
    assert runs.train_loss[k - 2, 0] - runs.train_loss[k, 0] <= 1e-3
    assert runs.train_loss[k - 3, 0] - runs.train_loss[k - 1, 0] > 1e-3


def test_kernel_learning_rate_of_a_linear_model_is_n_over_lambda_max():
    X, _ = sign_task(n=10, d=4)
    model = lensbox.mlp(())
    params = model.init(jax.random.PRNGKey(0), 4)
    K = X @ X.T + 1.0  # gradient of x w + b is (x, 1)
    expected = 10 / np.linalg.eigvalsh(K)[-1]
    assert seeds.kernel_learning_rate(model, params, X) == pytest.approx(
        expected, rel=1e-10
    )
    stacked = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(0), 3), 4)
    assert seeds.kernel_learning_rate(
        model, stacked, X, stacked=True, fraction=0.5
    ) == pytest.approx(expected / 2, rel=1e-10)
    with pytest.raises(lensbox.ArgumentError, match="fraction must lie in"):
        seeds.kernel_learning_rate(model, params, X, fraction=2.5)


def test_train_seeds_rejects_labels_of_the_wrong_shape():
    X, y = sign_task()
    model = lensbox.mlp(())
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 2), X.shape[1]
    )
    rule = seeds.StoppingRule(max_epochs=100, patience=50, check_every=50)
    with pytest.raises(
        lensbox.ShapeError, match=r"Y must have shape \(seeds, n\) = \(2, 12\)"
    ):
        seeds.train_seeds(
            model, params, lensbox.sgd(0.1), X, np.stack([y, y, y]), rule=rule
        )


def test_a_diverging_seed_is_a_divergence_error_naming_the_check_step():
    X, y = sign_task()
    model = lensbox.mlp((4,))
    params = seeds.init_seeds(
        model, jax.random.split(jax.random.PRNGKey(0), 2), X.shape[1]
    )
    rule = fixed_rule(200, check_every=50)
    with pytest.raises(lensbox.DivergenceError, match="diverged by step 50") as caught:
        seeds.train_seeds(model, params, lensbox.sgd(1e6), X, 1e3 * y, rule=rule)
    assert caught.value.step == 50
