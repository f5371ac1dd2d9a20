"""Tests of benchmarks/bench.py: what it reports (keys and agreement between routes, never timings)."""

import pytest


_FAKE_NEURAL_TANGENTS = '''
"""Stand-in for neural-tangents' API (the real one needs JAX <= 0.4.30): explicit Jacobians."""
import enum
import jax
import jax.numpy as jnp

__version__ = "stand-in"


class NtkImplementation(enum.Enum):
    JACOBIAN_CONTRACTION = 1


def empirical_ntk_fn(f, trace_axes, vmap_axes, implementation):
    def flat_jacobian(x, params):
        J = jax.jacobian(f)(params, x)
        return jnp.concatenate(
            [j.reshape(x.shape[0], -1) for j in jax.tree_util.tree_leaves(J)], axis=1
        )

    return lambda x1, x2, params: flat_jacobian(x1, params) @ flat_jacobian(x2, params).T
'''


def test_bench_quick_reports_every_workload():
    """Smoke test of ``python -m benchmarks.bench --quick --json``: keys only, never timings."""
    import json

    from benchmarks import bench

    result = json.loads(json.dumps(bench.run(quick=True)))  # what --json prints
    assert "(a) kernel block" in bench.report(result)
    assert {
        "kernel_block",
        "sgd_smoother_step",
        "state_smoother_step",
        "telescoping_overhead",
    } <= set(result)
    block = result["kernel_block"]
    assert block["max_rel_diff"] < 1e-4  # both routes compute the same block
    # The reported ratios are the timings they are said to be made of.
    assert block["speedup"] == pytest.approx(block["generic_s"] / block["structured_s"])
    assert block["generic_over_neural_tangents"][0] == pytest.approx(
        block["generic_s"] / 0.41
    )
    step = result["sgd_smoother_step"]
    assert step["fraction_of_matmul"] == pytest.approx(
        step["gflops"] / step["matmul_gflops"]
    )
    states = result["state_smoother_step"]
    for (
        name
    ) in bench.STATE_NAMES:  # every optimiser: its fraction, and the routes agree
        assert states[name]["fraction_of_matmul"] == pytest.approx(
            states[name]["gflop"] / states[name]["seconds"] / states["matmul_gflops"]
        )
        assert states[name]["max_rel_diff_generic"] < 1e-4
    assert "AdamW (parameter route)" in bench.report(result)
    adam = result["adam_kernel_block"]
    assert adam["exact_max_rel_diff_generic"] < 1e-4
    assert adam["exact_speedup"] == pytest.approx(adam["generic_s"] / adam["exact_s"])
    for r in (1, 4):
        assert adam[f"rank_{r}_speedup"] == pytest.approx(
            adam["generic_s"] / adam[f"rank_{r}_s"]
        )
        assert 0 <= adam[f"rank_{r}_max_rel_diff"] < 1
    assert "(h) Adam-preconditioned kernel block" in bench.report(result)
    tele = result["telescoping_overhead"]
    assert (
        tele["agreement"] < 1e-4
    )  # the jvp tracker and the smoother's realised reading
    assert tele["tangent_over_forward_flops"] > 1
    for key in (k for k in tele if k.startswith("m=")):
        assert tele[key]["over_floor"] == pytest.approx(
            tele[key]["tracked_step_s"] / tele[key]["floor_step_s"]
        )
    assert any(k.startswith("m=") for k in tele)
    assert all(t > 0 for t in result["train_reuse"]["seconds"])
    assert "(e) three identical train calls" in bench.report(result)
    trees = result["tree_norms"]
    assert trees["ratio"] == pytest.approx(trees["dense_s"] / trees["leaf_counts_s"])
    assert trees["max_abs_diff"] < 1e-12 and "(f) tree kernel norms" in bench.report(
        result
    )
    probe = result["probe_smoother_step"]
    for k in (16, 32, 64):
        assert probe[f"ratio_{k}"] == pytest.approx(
            probe["exact_s"] / probe[f"probes_{k}_s"]
        )
        for rows in (
            "train",
            "test",
        ):  # a standard error from k probes: positive, finite
            assert 0 < probe[f"rel_se_{rows}_{k}"] < 10
    assert "(g) smoother step with momentum" in bench.report(result)


def test_bench_times_neural_tangents_in_another_interpreter(tmp_path, monkeypatch):
    """``--neural-tangents PYTHON``: the block's parameters and rows reach the other interpreter,
    its kernel comes back and is compared, and the ratio is made of the two measured times."""
    import sys

    from benchmarks import bench

    (tmp_path / "neural_tangents.py").write_text(_FAKE_NEURAL_TANGENTS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    block = bench.bench_kernel(
        d=5, width=7, n=6, m=4, batch=3, repeats=1, nt_python=sys.executable
    )
    assert block["neural_tangents_max_rel_diff"] < 1e-5
    assert block["neural_tangents_versions"].startswith("neural-tangents stand-in")
    assert block["generic_over_neural_tangents_measured"] == pytest.approx(
        block["generic_s"] / block["neural_tangents_s"]
    )
    assert "measured in this run" in bench._neural_tangents_line(block)


def test_bench_says_why_neural_tangents_could_not_run(tmp_path, monkeypatch):
    import sys

    from benchmarks import bench

    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # no neural_tangents here
    with pytest.raises(RuntimeError, match="No module named 'neural_tangents'"):
        bench.bench_kernel(
            d=3, width=4, n=4, m=2, batch=2, repeats=1, nt_python=sys.executable
        )
