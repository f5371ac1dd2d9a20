"""Tests of lensbox.engine.progress: every training loop counts its steps on one shared bar."""

import jax
import numpy as np

import lensbox
from lensbox.engine import seeds
from lensbox.engine.progress import shared_steps, step_bar
from fixtures import sign_task


class Bar:
    """What the loops need of a tqdm bar, recording what they did to it."""

    def __init__(self):
        self.total, self.n, self.updates = 0, 0, []

    def update(self, count):
        self.n += count
        self.updates.append(count)

    def refresh(self):
        pass


def test_outside_a_shared_block_a_loop_has_its_own_bar_only_when_asked():
    assert step_bar(100, False) is None
    own = step_bar(100, True)
    assert own.total == 100
    own.close()


def test_train_and_the_stopping_rule_loop_count_their_steps_on_the_shared_bar():
    X, y = sign_task(n=24, d=3)
    model = lensbox.mlp((8,))
    params = model.init(jax.random.PRNGKey(0), 3)
    bar = Bar()
    with shared_steps(bar):
        lensbox.train(
            model, params, lensbox.sgd(0.05), X, y, steps=70, steps_per_call=32,
            progress=False,
        )  # fmt: skip
        assert (bar.total, bar.n) == (70, 70) and len(bar.updates) == 3
        # a rule that stops every seed long before its cap: the unused steps are taken back
        rule = seeds.StoppingRule(max_epochs=10_000, patience=20, check_every=10)
        stacked = seeds.init_seeds(model, jax.random.split(jax.random.PRNGKey(1), 2), 3)
        runs = seeds.train_seeds(model, stacked, lensbox.sgd(0.5), X, y, rule=rule)
    ran = int(np.max(runs.stop_steps))
    assert ran < 10_000
    assert bar.n == 70 + ran and bar.total == bar.n
    before = bar.n
    lensbox.train(model, params, lensbox.sgd(0.05), X, y, steps=10, progress=False)
    assert bar.n == before  # outside the block the shared bar sees nothing
