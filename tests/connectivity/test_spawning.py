import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lensbox.connectivity.networks import residual_mlp
from lensbox.engine.optim import apply_updates, sgd
from lensbox.connectivity.spawning import (
    data_key,
    index,
    init_state,
    make_trainer,
    spawn,
    stack,
    train_many,
)
from lensbox.engine.training import BatchOrder, softmax_cross_entropy


def _setup(rng, n=24, lr=0.05, boundaries=(), augment=None):
    X = jnp.asarray(rng.normal(size=(n, 2, 2, 1)))
    y = jnp.asarray(rng.integers(0, 3, size=n))
    net = residual_mlp(5, blocks=1, classes=3)
    opt = sgd(lr, momentum=0.9, weight_decay=1e-3, decay_at=boundaries)
    advance = make_trainer(net, opt, X, y, batch_size=5, augment=augment)
    return net, opt, X, y, advance


def _close(a, b, **kw):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(u, v, **kw)


def test_seeds_name_distinct_streams_and_one_integer_is_a_one_word_seed():
    first = BatchOrder(23, 5, (4, 0)).batches(1, 8)
    assert len(set(first[:4].ravel().tolist())) == 20  # each epoch: 20 distinct rows
    assert not np.array_equal(first, BatchOrder(23, 5, (4, 1)).batches(1, 8))
    np.testing.assert_array_equal(
        BatchOrder(23, 5, 4).batches(3, 6), BatchOrder(23, 5, (4,)).batches(3, 6)
    )
    assert not np.array_equal(data_key((4, 0)), data_key((4, 1)))
    np.testing.assert_array_equal(data_key(4), jax.random.PRNGKey(4))
    with pytest.raises(ValueError, match="seed"):
        BatchOrder(23, 5, ())


def test_trainer_matches_a_python_loop_with_the_step_schedule(rng):
    net, opt, X, y, advance = _setup(rng, boundaries=(2, 4))
    state = init_state(net, opt, jax.random.PRNGKey(1), (2, 2, 1))
    got = advance(state, 2, 6)
    plain = sgd(0.05, momentum=0.9, weight_decay=1e-3)
    params, bn, os_ = state.params, state.bn_state, plain.init(state.params)
    for s in range(6):
        rows = BatchOrder(24, 5, 2).batches(s + 1, 1)[0]  # lensbox's one batch order

        def loss(p):
            logits, new = net.apply(p, bn, X[rows], True)
            return jnp.mean(softmax_cross_entropy(logits, y[rows])), new

        grads, bn = jax.grad(loss, has_aux=True)(params)
        # the step schedule by hand: the plain optimiser's step, divided by ten after steps 2 and 4
        delta, os_ = plain.update(grads, os_, params)
        lr_scale = 10.0 ** -sum(s >= b for b in (2, 4))
        params = apply_updates(
            params, jax.tree_util.tree_map(lambda d: lr_scale * d, delta)
        )
    _close(got.params, params, rtol=1e-10, atol=1e-12)
    _close(got.bn_state, bn, rtol=1e-10, atol=1e-12)
    assert int(got.step) == 6


def test_resume_equals_the_uninterrupted_run_and_a_new_seed_changes_the_order(rng):
    from lensbox.connectivity.augment import augment

    aug = lambda k, x: augment(k, x, pad=1, flip=True)  # noqa: E731
    net, opt, X, y, advance = _setup(rng, boundaries=(7,), augment=aug)
    state = init_state(net, opt, jax.random.PRNGKey(1), (2, 2, 1))
    whole = advance(state, (5, 0), 12)
    half = advance(state, (5, 0), 5)
    resumed = advance(half, (5, 0), 12)
    _close(whole, resumed, rtol=1e-12, atol=1e-13)
    other = advance(half, (5, 1), 12)
    assert not np.allclose(other.params["02_head"]["w"], whole.params["02_head"]["w"])


def test_train_many_runs_states_side_by_side_to_their_own_stops(rng):
    net, opt, X, y, advance = _setup(rng)
    states = jax.vmap(lambda k: init_state(net, opt, k, (2, 2, 1)))(
        jax.random.split(jax.random.PRNGKey(0), 3)
    )
    keys = [(9, 0), (9, 1), 10]
    out, interrupted = train_many(
        advance, states, keys, [4, 9, 0], chunk=3, progress=False
    )
    assert not interrupted
    np.testing.assert_array_equal(out.step, [4, 9, 0])
    for i, stop in enumerate([4, 9, 0]):
        _close(
            index(out, i),
            advance(index(states, i), keys[i], stop),
            rtol=1e-10,
            atol=1e-12,
        )
    with pytest.raises(ValueError, match="stops"):
        train_many(advance, states, keys, [1, 2], progress=False)
    with pytest.raises(ValueError, match="one data seed per run"):
        train_many(advance, states, keys[:2], [1, 2, 3], progress=False)


def test_children_share_everything_but_the_data_order(rng):
    net, opt, X, y, advance = _setup(rng)
    parent = advance(init_state(net, opt, jax.random.PRNGKey(0), (2, 2, 1)), 1, 7)
    parents = stack([parent, parent])
    kids = spawn(parents, 3)
    assert kids.step.shape == (2, 3)
    _close(
        index(index(kids, 1), 2), parent, rtol=0, atol=0
    )  # momentum buffer and BN state too
    assert jax.tree_util.tree_leaves(parent.opt_state.traces)[
        0
    ].any()  # a non-zero momentum buffer
    with pytest.raises(ValueError, match="n_children"):
        spawn(parents, 0)


def test_bad_input_is_named(rng):
    net = residual_mlp(4)
    with pytest.raises(ValueError, match="X must be images"):
        make_trainer(net, sgd(0.1), jnp.ones((6, 4)), jnp.zeros(6), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        make_trainer(net, sgd(0.1), jnp.ones((6, 2, 2, 1)), jnp.zeros(6), batch_size=7)
    with pytest.raises(ValueError, match="y must hold"):
        make_trainer(net, sgd(0.1), jnp.ones((6, 2, 2, 1)), jnp.zeros(5), batch_size=2)


def test_train_many_counts_its_steps_on_a_shared_bar(rng):
    from lensbox.engine.progress import shared_steps

    class Bar:
        total = n = 0

        def update(self, count):
            self.n += count

        def refresh(self):
            pass

    net, opt, X, y, advance = _setup(rng)
    states = jax.vmap(lambda k: init_state(net, opt, k, (2, 2, 1)))(
        jax.random.split(jax.random.PRNGKey(0), 2)
    )
    keys = [9, 10]
    bar = Bar()
    with shared_steps(bar):  # progress=False: the shared bar counts all the same
        train_many(advance, states, keys, [4, 9], chunk=3, progress=False)
    assert (bar.total, bar.n) == (9, 9)
