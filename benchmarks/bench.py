"""Speed of the kernel engine, measured (not asserted): ``python -m benchmarks.bench [--json] [--quick]``.

In one run, each workload's size printed with its numbers:

* (a) the structured tangent-kernel block against the generic Jacobian-contraction route on the
  reference workload (one-hidden-layer ReLU MLP, d = 64, width 1000, 1000 training + 1000
  evaluation rows, batch 100); at this batch size the flop ratio bounds the speed-up near
  100-150x;
* (a') the generic route alone on that block, against neural-tangents' Jacobian contraction
  (``nt.empirical_ntk_fn(..., vmap_axes=0, implementation=JACOBIAN_CONTRACTION)``, its fastest
  implementation on this block). neural-tangents 0.6.5 imports only with JAX <= 0.4.30, so it
  cannot run beside the JAX lensbox uses: ``--neural-tangents PYTHON`` names an interpreter
  that has it (``scripts/bench_neural_tangents.sh`` makes one), and the bench then times it in
  the same run on the same parameters and rows, checks that both kernels agree and prints the
  measured ratio. Without it the line compares with the 0.41-0.44 s stated in issue 11, which
  is only indicative: on an idle 2-core machine neural-tangents took 0.25-0.28 s;
* (b) the SGD smoother step's achieved GFLOP/s as a fraction of the same run's measured matmul
  rate; target at least 60 %;
* (c) seconds per step of the momentum and AdamW smoothers (parameter-space state) at a stated
  size;
* (d) the telescoping-tracking overhead: a training step with
  :func:`lensbox.engine.telescoping.telescoping_tracker` on ``m`` evaluation rows over the untracked
  step (3-layer width-200 MLP on 64-dim inputs, batch 200, m = 1000 and m = batch size),
  measured through :func:`lensbox.train` as the time difference between a long and a short run,
  so compilation is excluded;
* (e) three identical 10-step :func:`lensbox.train` calls, each timed whole: the first compiles,
  the others reuse the compiled loop;
* (f) the norms of the boosted trees' kernel weights from leaf counts against a dense
  co-membership computation (:func:`lensbox.boosting.trees.kernel_norms` against
  :func:`lensbox.boosting.trees.dense_kernel_norms`).

Runs in float32 (the library's default without ``lensbox.setup``) on the default JAX device.
``--quick`` shrinks every workload (for tests: the numbers then mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from lensbox.engine import optim
from lensbox.engine.kernels import tangent_kernel
from lensbox.engine.models import count_parameters, mlp
from lensbox.engine.smoother import smoother_tracker
from lensbox.engine.telescoping import telescoping_tracker
from lensbox.engine.training import StepInfo, train


def _best(fn: Callable[[], Any], repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    jax.block_until_ready(fn())
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return float(best)


def matmul_rate(size: int, repeats: int = 3) -> float:
    """Measured GFLOP/s of a (size x size) @ (size x size) matmul in the default float type."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size))
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size))
    f = jax.jit(lambda a, b: a @ b)
    return 2 * size**3 / _best(lambda: f(a, b), repeats) / 1e9


def _problem(d, width, n, m, depth=1, seed=0):
    key = jax.random.PRNGKey(seed)
    X = jax.random.normal(key, (n + m, d))
    y = jnp.sin(X[:n, 0])
    model = mlp((width,) * depth, activation="relu")
    params = model.init(jax.random.PRNGKey(seed + 1), d)
    return model, params, X[:n], y, X[n:]


def _info(params, batch, opt, t=3):
    grads = jax.tree_util.tree_map(lambda p: 1e-3 * jnp.ones_like(p), params)
    state = opt.init(params)
    for _ in range(t):
        delta, state = opt.update(grads, state, params)
    return StepInfo(
        state.count,
        params,
        params,
        delta,
        batch,
        state,
        optim.learning_rate_at(opt.config, state.count),
    )


NEURAL_TANGENTS_SECONDS = (
    0.41,
    0.44,
)  # (a') stated reference (issue 11): neural-tangents on the (a) block

# Run by the interpreter given to --neural-tangents: loads the block's parameters and rows,
# times neural-tangents' Jacobian contraction as _best does, and saves its kernel.
_NT_SCRIPT = """
import json, sys, time
import numpy as np, jax, jax.numpy as jnp
import neural_tangents as nt
data = np.load(sys.argv[1])
depth = (len(data.files) - 2) // 2
params = [{"w": jnp.asarray(data[f"w{i}"]), "b": jnp.asarray(data[f"b{i}"])} for i in range(depth)]
X_R, X_B = jnp.asarray(data["X_R"]), jnp.asarray(data["X_B"])
def apply(params, x):
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return (h @ params[-1]["w"] + params[-1]["b"])[:, 0]
f = jax.jit(nt.empirical_ntk_fn(apply, trace_axes=(), vmap_axes=0,
    implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION))
K = jax.block_until_ready(f(X_R, X_B, params))
best = float("inf")
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    jax.block_until_ready(f(X_R, X_B, params))
    best = min(best, time.perf_counter() - t0)
np.save(sys.argv[2], np.asarray(K))
print(json.dumps({"seconds": best, "versions": f"neural-tangents {nt.__version__}, JAX {jax.__version__}"}))
"""


def neural_tangents_reference(
    python: str, params, X_R, X_B, repeats: int
) -> tuple[float, str, np.ndarray]:
    """Time neural-tangents' Jacobian contraction on ``(params, X_R, X_B)`` in ``python``.

    Returns ``(best seconds, versions, kernel)``; raises ``RuntimeError`` with the
    interpreter's error output when it cannot run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {"X_R": np.asarray(X_R), "X_B": np.asarray(X_B)}
        for i, layer in enumerate(params):
            arrays[f"w{i}"], arrays[f"b{i}"] = (
                np.asarray(layer["w"]),
                np.asarray(layer["b"]),
            )
        inputs, kernel = Path(tmp, "block.npz"), Path(tmp, "K.npy")
        np.savez(inputs, **arrays)
        env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
        done = subprocess.run(
            [python, "-c", _NT_SCRIPT, str(inputs), str(kernel), str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            check=False,  # its error output goes into the RuntimeError below
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"--neural-tangents {python} failed (exit {done.returncode}):\n"
                + done.stderr[-2000:]
            )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return result["seconds"], result["versions"], np.load(kernel)


def bench_kernel(d, width, n, m, batch, repeats, nt_python: str | None = None) -> dict:
    model, params, X, y, X_eval = _problem(d, width, n, m)
    X_R = jnp.concatenate([X, X_eval])
    X_B = X[:batch]
    structured = _best(
        lambda: tangent_kernel(model, params, X_R, X_B, method="structured"), repeats
    )
    generic = _best(lambda: tangent_kernel(model.apply, params, X_R, X_B), repeats)
    K_s = tangent_kernel(model, params, X_R, X_B)
    K_g = tangent_kernel(model.apply, params, X_R, X_B)
    err = float(jnp.max(jnp.abs(K_s - K_g)) / jnp.max(jnp.abs(K_g)))
    measured = {}
    if nt_python:
        nt_s, versions, K_nt = neural_tangents_reference(
            nt_python, params, X_R, X_B, repeats
        )
        measured = {
            "neural_tangents_s": nt_s,
            "neural_tangents_versions": versions,
            "generic_over_neural_tangents_measured": generic / nt_s,
            "neural_tangents_max_rel_diff": float(
                np.max(np.abs(np.asarray(K_g) - K_nt.reshape(K_g.shape)))
                / np.max(np.abs(np.asarray(K_g)))
            ),
        }
    return {
        "size": f"MLP d={d} width={width} (p={count_parameters(params)}), R={n + m} rows, B={batch}",
        "structured_s": structured,
        "generic_s": generic,
        "speedup": generic / structured,
        "max_rel_diff": err,
        "generic_over_neural_tangents": [generic / t for t in NEURAL_TANGENTS_SECONDS],
        **measured,
    }


def bench_tree_norms(n: int, m: int, trees: int, depth: int, repeats: int) -> dict:
    """The boosted trees' kernel-weight norms (Eq. 9) from leaf counts,
    :func:`lensbox.boosting.trees.kernel_norms` (O(nT)), against a dense co-membership computation,
    :func:`lensbox.boosting.trees.dense_kernel_norms` (O(mnT)), on ``m`` rows of a model with
    ``trees`` trees fitted on ``n`` rows; the two norms must agree."""
    from sklearn.ensemble import GradientBoostingRegressor

    from lensbox.boosting.trees import dense_kernel_norms, kernel_norms

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n + m, 6))
    y = X[:, 0] + np.sin(2 * X[:, 1]) + 0.1 * rng.standard_normal(n + m)
    model = GradientBoostingRegressor(
        n_estimators=trees, max_depth=depth, random_state=0
    )
    model.fit(X[:n], y[:n])
    fast = _best(lambda: kernel_norms(model, X[n:]), repeats)
    dense = _best(lambda: dense_kernel_norms(model, X[n:], X[:n]), repeats)
    diff = kernel_norms(model, X[n:]) - dense_kernel_norms(model, X[n:], X[:n])
    return {
        "n": n,
        "m": m,
        "trees": trees,
        "depth": depth,
        "leaf_counts_s": fast,
        "dense_s": dense,
        "ratio": dense / fast,
        "max_abs_diff": float(np.max(np.abs(diff))),
    }


def bench_train_reuse(d, widths, n, batch, steps=10) -> dict:
    """Wall time of three identical ``train`` calls (the first includes compilation)."""
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (n, d))
    y = jnp.sin(X[:, 0])
    model = mlp(widths)
    params = model.init(jax.random.PRNGKey(2), d)
    opt = optim.sgd(0.01)
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = train(
            model, params, opt, X, y, steps=steps, batch_size=batch, progress=False
        )
        jax.block_until_ready(r.params)
        seconds.append(time.perf_counter() - t0)
    return {
        "size": f"MLP d={d} widths={widths}, n={n}, batch={batch}, {steps} steps",
        "seconds": seconds,
    }


def _sgd_step_flops(d, width, R, B, n) -> float:
    forward = 2 * R * d * width + 2 * R * width + R * width
    grams = 2 * R * B * (d + width) + 2 * R * B * (width + 1) + 4 * R * B
    update = 2 * R * B * n + 2 * R * B + R * n
    return float(forward + grams + update)


def _tracker_steps(tracker, params, infos, steps):
    """A jitted function running ``steps`` tracker updates (over a fixed list of batches)."""

    @jax.jit
    def run(state):
        def body(i, s):
            info = infos._replace(batch=infos.batch[i % infos.batch.shape[0]])
            return tracker.update(s, info)

        return jax.lax.fori_loop(0, steps, body, state)

    return run


def bench_smoother(
    opt, d, width, n, m, batch, steps, repeats, probes=None
) -> tuple[float, Any]:
    model, params, X, y, X_eval = _problem(d, width, n, m)
    tracker = smoother_tracker(model, X, y, X_eval, opt, probes=probes)
    perm = jax.random.permutation(jax.random.PRNGKey(5), n)[: (n // batch) * batch]
    info = _info(params, perm.reshape(-1, batch), opt)
    run = _tracker_steps(tracker, params, info, steps)
    state = tracker.init(params)
    seconds = _best(lambda: run(state), repeats) / steps
    return seconds, count_parameters(params)


def probe_spread(opt, d, width, n, m, batch, steps, ks) -> dict:
    """The relative standard error of ``p_train`` and ``p_test`` after ``steps`` steps of one
    training run, for each number of probes in ``ks`` (trackers on the same run)."""
    model, params, X, y, X_eval = _problem(d, width, n, m)
    trackers = {
        f"k{k}": smoother_tracker(model, X, y, X_eval, opt, probes=k, probe_seed=k)
        for k in ks
    }
    result = train(
        model,
        params,
        opt,
        X,
        y,
        steps=steps,
        batch_size=batch,
        trackers=trackers,
        record_at=[steps],
        progress=False,
    )
    out = {"probe_run_steps": steps}
    for k in ks:
        rec = result.records[f"k{k}"]
        for rows in ("train", "test"):
            p, se = float(rec[f"p_{rows}"][-1]), float(rec[f"p_{rows}_se"][-1])
            out[f"p_{rows}_{k}"], out[f"rel_se_{rows}_{k}"] = p, se / p
    return out


def bench_telescope_overhead(
    d, widths, n, m_values, batch, short, long, steps_per_call, warm=True
) -> dict:
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (n, d))
    y = jnp.sin(X[:, 0])
    X_eval = jax.random.normal(jax.random.PRNGKey(1), (max(m_values), d))
    model = mlp(widths, activation="relu")
    params = model.init(jax.random.PRNGKey(2), d)
    opt = optim.sgd(0.01)

    def per_step(trackers):
        def timed(steps):
            t0 = time.perf_counter()
            r = train(
                model,
                params,
                opt,
                X,
                y,
                steps=steps,
                batch_size=batch,
                trackers=trackers,
                steps_per_call=steps_per_call,
                progress=False,
            )
            jax.block_until_ready(r.params)
            return time.perf_counter() - t0

        if warm:
            timed(short)  # warm caches
        return (timed(long) - timed(short)) / (long - short)

    base = per_step({})
    out = {
        "size": f"MLP d={d} widths={widths} (p={count_parameters(params)}), n={n}, batch={batch}",
        "untracked_step_s": base,
    }
    for m in m_values:
        tracked = per_step({"telescoping": telescoping_tracker(model, X_eval[:m])})
        out[f"m={m}"] = {"tracked_step_s": tracked, "overhead": tracked / base}
    return out


# Workload sizes: the reference block (a, b), the parameter-space smoothers (c), the
# telescoping overhead (d, e), and (repeats, SGD smoother steps, state smoother steps).
SIZES: dict[str, Any] = {
    "reference": {"d": 64, "width": 1000, "n": 1000, "m": 1000, "batch": 100},
    "state": {"d": 64, "width": 200, "n": 500, "m": 500, "batch": 100},
    "telescoping": {
        "d": 64,
        "widths": (200, 200),
        "n": 1000,
        "m_values": (1000, 200),
        "batch": 200,
        "short": 100,
        "long": 1100,
        "steps_per_call": 100,
    },
    "tree_norms": {"n": 2000, "m": 2000, "trees": 100, "depth": 4},
    # the double-descent block of issue 36 (paper App. C.1 at width 1,000)
    "probes": {"d": 64, "width": 1000, "n": 600, "m": 400, "batch": 100},
    "probe_run": 300,
    "repeats": (3, 20, 3),
}
QUICK_SIZES: dict[str, Any] = {
    "reference": {"d": 8, "width": 32, "n": 40, "m": 40, "batch": 10},
    "state": {"d": 8, "width": 16, "n": 30, "m": 30, "batch": 10},
    "telescoping": {
        "d": 8,
        "widths": (16, 16),
        "n": 64,
        "m_values": (16,),
        "batch": 16,
        "short": 4,
        "long": 12,
        "steps_per_call": 4,
        "warm": False,
    },
    "tree_norms": {"n": 200, "m": 100, "trees": 5, "depth": 3},
    "probes": {"d": 8, "width": 16, "n": 60, "m": 20, "batch": 10},
    "probe_run": 6,
    "repeats": (1, 4, 2),
}


def run(quick: bool = False, nt_python: str | None = None) -> dict:
    """Run every benchmark; returns a JSON-able dict.

    ``nt_python``: an interpreter with neural-tangents, timed on block (a) in the same run.
    """
    sizes = QUICK_SIZES if quick else SIZES
    ref, state_size, tele = sizes["reference"], sizes["state"], sizes["telescoping"]
    repeats, sgd_steps, state_steps = sizes["repeats"]
    out: dict[str, Any] = {
        "device": f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
        "dtype": str(jnp.zeros(()).dtype),
        "quick": quick,
    }

    out["kernel_block"] = bench_kernel(**ref, repeats=repeats, nt_python=nt_python)

    rate = matmul_rate(256 if quick else 2000)
    sgd_s, p = bench_smoother(optim.sgd(0.01), **ref, steps=sgd_steps, repeats=repeats)
    flops = _sgd_step_flops(
        ref["d"], ref["width"], ref["n"] + ref["m"], ref["batch"], ref["n"]
    )
    out["sgd_smoother_step"] = {
        "size": f"MLP d={ref['d']} width={ref['width']} (p={p}), n={ref['n']} + m={ref['m']} rows, "
        f"B={ref['batch']}",
        "seconds": sgd_s,
        "gflop": flops / 1e9,
        "gflops": flops / sgd_s / 1e9,
        "matmul_gflops": rate,
        "fraction_of_matmul": flops / sgd_s / 1e9 / rate,
    }

    states = {}
    for name, opt in [
        ("momentum", optim.sgd(0.01, momentum=0.9)),
        ("adamw", optim.adamw(1e-3, weight_decay=0.01)),
    ]:
        seconds, p = bench_smoother(opt, **state_size, steps=state_steps, repeats=1)
        states[name] = seconds
    out["state_smoother_step"] = {
        "size": f"MLP d={state_size['d']} width={state_size['width']} (p={p}), "
        f"n={state_size['n']} + m={state_size['m']} rows, B={state_size['batch']}",
        "momentum_s": states["momentum"],
        "adamw_s": states["adamw"],
        "approximate_routes": "the probe route (probes=k; (g)); every other route is exact",
    }

    probe_size, probe_steps = sizes["probes"], 2
    momentum = optim.sgd(0.0025, momentum=0.95)  # the paper's rate
    ks = (16, 32, 64)
    times = {
        k: bench_smoother(
            momentum, **probe_size, steps=probe_steps, repeats=1, probes=k
        )[0]
        for k in (None, *ks)
    }
    out["probe_smoother_step"] = {
        "size": f"MLP d={probe_size['d']} width={probe_size['width']}, "
        f"n={probe_size['n']} + m={probe_size['m']} rows, B={probe_size['batch']}, momentum 0.95",
        "exact_s": times[None],
        **{f"probes_{k}_s": times[k] for k in ks},
        **{f"ratio_{k}": times[None] / times[k] for k in ks},
        **probe_spread(momentum, **probe_size, steps=sizes["probe_run"], ks=ks),
    }

    out["telescoping_overhead"] = bench_telescope_overhead(**tele)
    out["train_reuse"] = bench_train_reuse(
        tele["d"], tele["widths"], tele["n"], tele["batch"]
    )
    out["tree_norms"] = bench_tree_norms(**sizes["tree_norms"], repeats=repeats)
    return out


def _neural_tangents_line(k: dict) -> str:
    if "neural_tangents_s" in k:
        return (
            f"(a') generic route {k['generic_s']:.3f} s, neural-tangents' Jacobian contraction "
            f"{k['neural_tangents_s']:.3f} s ({k['neural_tangents_versions']}), same block, "
            f"measured in this run: ratio {k['generic_over_neural_tangents_measured']:.2f} "
            f"(target <= 1); kernels agree to {k['neural_tangents_max_rel_diff']:.1e} relative"
        )
    lo, hi = k["generic_over_neural_tangents"][1], k["generic_over_neural_tangents"][0]
    return (
        f"(a') generic route {k['generic_s']:.3f} s against neural-tangents' stated "
        f"{NEURAL_TANGENTS_SECONDS[0]}-{NEURAL_TANGENTS_SECONDS[1]} s (not measured here; "
        f"pass --neural-tangents PYTHON to time it in this run): ratio {lo:.2f}-{hi:.2f} "
        "(target <= 1)"
    )


def report(out: dict) -> str:
    k, s, st, tel = (
        out["kernel_block"],
        out["sgd_smoother_step"],
        out["state_smoother_step"],
        out["telescoping_overhead"],
    )
    lines = [
        f"benchmarks.bench on {out['device']}, {out['dtype']}{' (quick: sizes shrunk)' if out['quick'] else ''}",
        f"(a) kernel block, {k['size']}:",
        f"    structured {k['structured_s'] * 1e3:.1f} ms, generic {k['generic_s']:.2f} s: "
        f"{k['speedup']:.0f}x faster (at B = 100 the flop ratio bounds this near 100-150x); max relative difference {k['max_rel_diff']:.1e}",
        _neural_tangents_line(k),
        f"(b) SGD smoother step, {s['size']}:",
        f"    {s['seconds'] * 1e3:.1f} ms for {s['gflop']:.2f} GFLOP = {s['gflops']:.1f} GFLOP/s; "
        f"matmul {s['matmul_gflops']:.1f} GFLOP/s: {100 * s['fraction_of_matmul']:.0f} % (target >= 60 %)",
        f"(c) parameter-space smoother step, {st['size']}:",
        f"    momentum {st['momentum_s']:.3f} s/step, AdamW {st['adamw_s']:.3f} s/step; "
        f"approximate routes: {st['approximate_routes']}",
        f"(d) telescoping tracking, {tel['size']}: untracked {tel['untracked_step_s'] * 1e3:.2f} ms/step",
    ]
    for key, v in tel.items():
        if key.startswith("m="):
            lines.append(
                f"    {key}: tracked {v['tracked_step_s'] * 1e3:.2f} ms/step, "
                f"overhead {v['overhead']:.2f}x"
            )
    reuse = out["train_reuse"]
    lines.append(
        f"(e) three identical train calls, {reuse['size']}: "
        + ", ".join(f"{t:.3f} s" for t in reuse["seconds"])
    )
    t = out["tree_norms"]
    lines.append(
        f"(f) tree kernel norms ({t['m']} rows x {t['trees']} trees of depth {t['depth']}, "
        f"n = {t['n']}): leaf counts {t['leaf_counts_s'] * 1e3:.1f} ms, dense co-membership "
        f"{t['dense_s'] * 1e3:.1f} ms, ratio {t['ratio']:.0f}x (max difference "
        f"{t['max_abs_diff']:.1e})"
    )
    pr = out["probe_smoother_step"]
    ks = (16, 32, 64)
    lines.append(
        f"(g) smoother step with momentum, {pr['size']}: exact {pr['exact_s']:.3f} s, probes "
        + ", ".join(
            f"k={k} {pr[f'probes_{k}_s']:.3f} s ({pr[f'ratio_{k}']:.1f}x)" for k in ks
        )
        + " (target >= 10x at some k <= 64); relative standard error of p after "
        f"{pr['probe_run_steps']} steps: "
        + ", ".join(
            f"k={k} {100 * pr[f'rel_se_train_{k}']:.1f} % (train) "
            f"{100 * pr[f'rel_se_test_{k}']:.1f} % (test)"
            for k in ks
        )
    )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for tests")
    parser.add_argument(
        "--neural-tangents",
        metavar="PYTHON",
        default=os.environ.get("LENSBOX_NT_PYTHON"),
        help="an interpreter with neural-tangents (scripts/bench_neural_tangents.sh makes "
        "one): time its Jacobian contraction on block (a) in this run "
        "(default: $LENSBOX_NT_PYTHON)",
    )
    args = parser.parse_args(argv)
    out = run(quick=args.quick, nt_python=args.neural_tangents)
    print(json.dumps(out, indent=2) if args.json else report(out))


if __name__ == "__main__":
    main()
