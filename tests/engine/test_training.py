import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lensbox
from lensbox.engine.training import (
    BatchOrder,
    Tracker,
    predictions_tracker,
    recording_steps,
    train,
)
from lensbox.errors import DivergenceError


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
    return X, y


def test_batch_order_is_seeded_and_visits_every_row_once_per_epoch():
    a = BatchOrder(12, 4, seed=5).batches(1, 6)
    b = BatchOrder(12, 4, seed=5).batches(1, 6)
    np.testing.assert_array_equal(a, b)
    assert sorted(a[:3].ravel().tolist()) == list(range(12))
    assert sorted(a[3:].ravel().tolist()) == list(range(12))
    assert not np.array_equal(a[:3], a[3:])  # a fresh permutation each epoch
    # Asking for a later window gives the same batches as the full stream.
    np.testing.assert_array_equal(BatchOrder(12, 4, seed=5).batches(4, 3), a[3:])
    assert not np.array_equal(BatchOrder(12, 4, seed=6).batches(1, 3), a[:3])
    np.testing.assert_array_equal(
        BatchOrder(12, None, seed=0).batches(1, 2), np.tile(np.arange(12), (2, 1))
    )


def test_training_reduces_the_loss_and_records_where_asked():
    X, y = _data()
    model = lensbox.mlp((16,))
    params = model.init(jax.random.PRNGKey(0), 3)
    counter = Tracker(
        lambda p: jnp.zeros((), jnp.int32), lambda s, info: s + 1, lambda s, p: s
    )
    res = train(
        model,
        params,
        lensbox.sgd(0.1),
        X,
        y,
        steps=300,
        batch_size=10,
        trackers={"count": counter},
        record_at=[0, 7, 100, 300],
        steps_per_call=64,
    )
    assert res.steps_done == 300 and res.losses.shape == (300,)
    assert res.losses[-20:].mean() < 0.5 * res.losses[:5].mean()
    np.testing.assert_array_equal(res.record_steps, [0, 7, 100, 300])
    np.testing.assert_array_equal(res.records["count"], [0, 7, 100, 300])


def test_tracker_sees_the_realised_step_and_batch():
    X, y = _data(n=8)
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(1), 3)

    def update(state, info):
        moved = jax.tree_util.tree_map(
            lambda a, b, d: jnp.max(jnp.abs(b - a - d)),
            info.params_prev,
            info.params,
            info.delta,
        )
        return jnp.maximum(state, jnp.max(jnp.stack(jax.tree_util.tree_leaves(moved))))

    check = Tracker(lambda p: jnp.zeros(()), update, lambda s, p: s)
    res = train(
        model,
        params,
        lensbox.adamw(0.01),
        X,
        y,
        steps=20,
        batch_size=4,
        trackers={"c": check},
    )
    assert float(res.records["c"][-1]) < 1e-12


def test_recording_steps():
    np.testing.assert_array_equal(recording_steps(10, every=4), [0, 4, 8, 10])
    log = recording_steps(1000, log=10)
    assert log[0] == 0 and log[-1] == 1000 and np.all(np.diff(log) > 0)


def test_divergence_names_the_step_and_keeps_the_partial_result():
    X, y = _data()
    model = lensbox.mlp((32,))
    params = model.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(DivergenceError, match=r"diverged at step \d+ of 500") as err:
        train(
            model,
            params,
            lensbox.sgd(50.0),
            X,
            y,
            steps=500,
            record_at=range(0, 501, 1),
            steps_per_call=1,
        )
    e = err.value
    assert 1 <= e.step <= 500
    assert e.partial.steps_done == e.step - 1
    assert np.all(np.isfinite(e.partial.losses))
    assert e.partial.record_steps[-1] == e.step - 1


@pytest.mark.parametrize(
    "X, y, error, message",
    [
        (
            np.ones(5),
            np.ones(5),
            lensbox.ShapeError,
            r"X must have 2 features per row .* got shape \(5,\)",
        ),
        (
            np.ones((5, 3)),
            np.ones(5),
            lensbox.ShapeError,
            r"X must have 2 features per row .* got shape \(5, 3\)",
        ),
        (
            np.ones((5, 2)),
            np.ones(4),
            lensbox.ShapeError,
            "y has 4 entries but the inputs have 5 rows",
        ),
        (
            np.ones((5, 2)),
            np.ones((5, 3)),
            lensbox.ShapeError,
            r"y has shape \(5, 3\) but the model has one output",
        ),
        (np.ones((0, 2)), np.ones(0), lensbox.ArgumentError, "X has no rows"),
        (
            np.array([[1.0, np.nan]] * 3),
            np.ones(3),
            lensbox.NonFiniteError,
            "X contains 3 non-finite",
        ),
        (
            np.ones((3, 2)),
            np.array([1.0, np.inf, 0.0]),
            lensbox.NonFiniteError,
            "y contains 1 non-finite",
        ),
    ],
)
def test_bad_data_is_a_clear_error(X, y, error, message):
    model = lensbox.mlp((4,))
    with pytest.raises(error, match=message):
        train(
            model, model.init(jax.random.PRNGKey(0), 2), lensbox.sgd(0.1), X, y, steps=1
        )


def test_bad_batch_size_and_loss():
    X, y = _data(n=6)
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    with pytest.raises(lensbox.ArgumentError, match="batch_size must lie in"):
        train(model, params, lensbox.sgd(0.1), X, y, steps=1, batch_size=7)
    with pytest.raises(lensbox.ArgumentError, match="loss must be one of"):
        train(model, params, lensbox.sgd(0.1), X, y, steps=1, loss="hinge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 2.5}, r"steps must be an integer; got 2.5 \(float\)"),
        ({"steps": 10.0}, r"steps must be an integer; got 10.0 \(float\)"),
        ({"steps": 2, "batch_size": 2.0}, r"batch_size must be an integer; got 2.0"),
        ({"steps": 4, "record_at": [0, 1.5, 4]}, "record_at must hold integers"),
    ],
)
def test_counts_are_never_rounded(kwargs, message):
    X, y = _data(n=6)
    model = lensbox.mlp((4,))
    with pytest.raises(lensbox.ArgumentTypeError, match=message):
        train(
            model,
            model.init(jax.random.PRNGKey(0), 3),
            lensbox.sgd(0.1),
            X,
            y,
            **kwargs,
        )


def test_an_optimiser_given_by_name_is_a_clear_error():
    X, y = _data(n=6)
    model = lensbox.mlp((4,))
    with pytest.raises(
        lensbox.ArgumentTypeError,
        match=r"got the string 'adam' \(build it with lensbox.adam\(learning_rate",
    ):
        train(model, model.init(jax.random.PRNGKey(0), 3), "adam", X, y, steps=1)


def test_nan_initial_parameters_are_not_called_divergence():
    X, y = _data(n=6)
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    params[0]["w"] = params[0]["w"].at[0, 0].set(jnp.nan)
    with pytest.raises(
        lensbox.NonFiniteError, match="initial params contains 1 non-finite value"
    ):
        train(model, params, lensbox.sgd(0.1), X, y, steps=3)


def test_recording_steps_rejects_a_zero_interval():
    with pytest.raises(lensbox.ArgumentError, match="every must be at least 1; got 0"):
        recording_steps(10, every=0)
    with pytest.raises(lensbox.ArgumentTypeError, match="steps must be an integer"):
        recording_steps(10.5, every=2)


def test_interrupt_returns_what_was_done(monkeypatch):
    X, y = _data()
    model = lensbox.mlp((4,))
    params = model.init(jax.random.PRNGKey(0), 3)
    calls = {"n": 0}
    original = BatchOrder.batches

    def interrupted_after_two_chunks(self, first, count):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, first, count)

    monkeypatch.setattr(BatchOrder, "batches", interrupted_after_two_chunks)
    res = train(
        model,
        params,
        lensbox.sgd(0.05),
        X,
        y,
        steps=100,
        steps_per_call=10,
        trackers={"f": predictions_tracker(model.apply, X[:3])},
        record_at=range(0, 101, 10),
    )
    assert res.interrupted and res.steps_done == 20
    np.testing.assert_array_equal(res.record_steps, [0, 10, 20])
    assert np.all(np.isfinite(res.losses))


def test_a_resumed_run_equals_the_uninterrupted_run():
    X, y = _data()
    model = lensbox.mlp((8,))
    params = model.init(jax.random.PRNGKey(0), 3)
    opt = lensbox.adam(0.01)
    whole = train(model, params, opt, X, y, steps=20, batch_size=8, seed=4)
    first = train(model, params, opt, X, y, steps=12, batch_size=8, seed=4)
    rest = train(
        model,
        first.state,
        opt,
        X,
        y,
        steps=8,
        batch_size=8,
        seed=4,
        record_at=[12, 16, 20],
        trackers={"theta": lensbox.parameters_tracker},
    )
    assert first.state.step == 12 and rest.state.step == 20 and rest.start_step == 12
    np.testing.assert_array_equal(rest.record_steps, [12, 16, 20])
    np.testing.assert_allclose(
        np.concatenate([first.losses, rest.losses]), whole.losses, rtol=0, atol=0
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(rest.params), jax.tree_util.tree_leaves(whole.params)
    ):
        np.testing.assert_array_equal(a, b)
    # Adam's moments and step count were carried over, not restarted.
    assert int(rest.opt_state.count) == 20
    # The parameters tracker recorded theta at the branch point and at the end.
    for a, b in zip(
        jax.tree_util.tree_leaves(rest.records["theta"]),
        jax.tree_util.tree_leaves(first.params),
    ):
        np.testing.assert_array_equal(a[0], b)
    with pytest.raises(
        lensbox.ArgumentError, match=r"record_at must lie in \[12, 20\]"
    ):
        train(model, first.state, opt, X, y, steps=8, record_at=[5])


def test_branches_from_one_checkpoint_share_its_state_and_differ_by_data_order():
    X, y = _data()
    model = lensbox.mlp((8,))
    parent = train(
        model,
        model.init(jax.random.PRNGKey(0), 3),
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=5,
        batch_size=10,
    )
    a = train(
        model,
        parent.state,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=5,
        batch_size=10,
        seed=1,
    )
    b = train(
        model,
        parent.state,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=5,
        batch_size=10,
        seed=2,
    )
    reversed_order = BatchOrder(40, 10, permutation=lambda epoch: np.arange(40)[::-1])
    c = train(
        model,
        parent.state,
        lensbox.sgd(0.05, momentum=0.9),
        X,
        y,
        steps=5,
        order=reversed_order,
    )
    assert a.losses[0] != b.losses[0] or not np.array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(
        reversed_order.batches(1, 1)[0], np.arange(39, 29, -1)
    )
    assert c.steps_done == 5 and np.all(np.isfinite(c.losses))
    with pytest.raises(
        lensbox.ArgumentError,
        match=r"permutation\(0\) must return a permutation of range\(40\)",
    ):
        BatchOrder(40, 10, permutation=lambda epoch: np.zeros(40, int)).batches(1, 1)


def test_the_compiled_step_is_built_once_per_model_optimiser_loss_and_trackers():
    X, y = _data()
    traces = {"n": 0}

    def apply(params, X):
        traces["n"] += 1  # runs only while JAX traces the function
        return X @ params["w"]

    params = {"w": jnp.zeros(3)}
    opt = lensbox.sgd(0.1)
    for _ in range(3):
        train(apply, params, opt, X, y, steps=10)
    first = traces["n"]
    train(
        apply, params, opt, X + 1.0, y, steps=10
    )  # new data of the same shape: no new trace
    assert traces["n"] == first
    train(
        apply, params, lensbox.sgd(0.2), X, y, steps=10
    )  # another optimiser: a new program
    assert traces["n"] > first


def test_compiled_programs_are_built_once_per_key_and_the_cache_is_bounded():
    from lensbox.engine import training

    built = []

    def build():
        built.append(1)
        return object()

    first = training.cached_program(("test program", 1), build)
    assert training.cached_program(("test program", 1), build) is first
    assert len(built) == 1
    # an unhashable key is built every time, without caching
    training.cached_program(("test program", [1]), build)
    training.cached_program(("test program", [1]), build)
    assert len(built) == 3
    for i in range(training._COMPILED_MAX + 5):
        training.cached_program(("test program", "fill", i), build)
    assert len(training._COMPILED) == training._COMPILED_MAX
    assert ("test program", 1) not in training._COMPILED  # the least recently used left
