r"""Speed of the kernel engine, measured (not asserted): ``python -m benchmarks.bench [--json] [--quick]``.

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
* (c) the smoother step of every optimiser (SGD and Adam without momentum by the kernel
  block, momentum, Adam and AdamW with their parameter-space state) at a stated size: seconds, its
  GEMM flops as a fraction of the same run's matmul rate (target at least 60 %), and how far its
  recursion, run for the timed steps, is from the same recursion on the generic (Jacobian) route;
* (d) the telescoping-tracking overhead: a training step with
  :func:`lensbox.engine.telescoping.telescoping_tracker` on ``m`` evaluation rows over the untracked
  step and over its floor, the step with one forward pass over the ``m`` rows (3-layer width-200
  MLP on 64-dim inputs, batch 200, m = 1000 and m = batch size), measured through
  :func:`lensbox.train` as the time difference between a long and a short run, so compilation is
  excluded; with the flop ratio of the jvp's tangent pass to the forward pass, which bounds how
  close an exact record can come to the floor, and the agreement of the jvp tracker with the SGD
  smoother's realised reading (a second exact route);
* (e) three identical 10-step :func:`lensbox.train` calls, each timed whole: the first compiles,
  the others reuse the compiled loop;
* (f) the norms of the boosted trees' kernel weights from leaf counts against a dense
  co-membership computation (:func:`lensbox.boosting.trees.kernel_norms` against
  :func:`lensbox.boosting.trees.dense_kernel_norms`).
* (h) the Adam-preconditioned kernel block on the (a) workload, with :math:`\phi` from a short
  AdamW run on its task: the exact structured route against the Jacobian route (ratio, and the
  structured route's fraction of the matmul rate: its flop count equals the Jacobian
  contraction's, see :mod:`lensbox.engine.kernels`), and the rank-r route (``rank=r``) at several
  r, each with its time, its ratio over the Jacobian route (target at least 10x) and its maximum
  difference from the exact block.

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
from lensbox.engine.training import StepInfo, Tracker, train


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
    opt, d, width, n, m, batch, steps, repeats, probes=None, agreement=False
) -> tuple[float, Any]:
    """Seconds per smoother step and the parameter count; with ``agreement``, also the largest
    difference of the tracked coefficients after ``steps`` steps from the generic route's,
    relative to their largest magnitude."""
    model, params, X, y, X_eval = _problem(d, width, n, m)
    perm = jax.random.permutation(jax.random.PRNGKey(5), n)[: (n // batch) * batch]
    info = _info(params, perm.reshape(-1, batch), opt)

    def stepper(method):
        tracker = smoother_tracker(
            model, X, y, X_eval, opt, probes=probes, method=method
        )
        return _tracker_steps(tracker, params, info, steps), tracker.init(params)

    run, state = stepper("auto")
    seconds = _best(lambda: run(state), repeats) / steps
    if not agreement:
        return seconds, count_parameters(params)
    fast, slow = run(state)["coef"], stepper("generic")[0](state)["coef"]
    diff = float(jnp.max(jnp.abs(fast - slow)) / jnp.max(jnp.abs(slow)))
    return seconds, count_parameters(params), diff


def _state_step_flops(d, width, R, B, n) -> float:
    """The GEMM flops of a parameter-space smoother step on a one-hidden-layer MLP: the batch
    gradient J_B^T V (p x B x (n + 2)) and the change J(X_R) dtheta (R x p x (n + 2))."""
    p = d * width + 2 * width + 1
    return float(2 * (R + B) * p * (n + 2))


def bench_state_smoothers(d, width, n, m, batch, steps, rate, repeats) -> dict:
    """Every optimiser's smoother step on one block: seconds, GEMM flops against ``rate``, and
    its agreement with the generic route after the timed steps."""
    out = {}
    for name, opt, route in [
        ("sgd", optim.sgd(0.01), "kernel"),
        ("adam_b1_0", optim.adam(1e-3, b1=0.0), "kernel"),
        ("momentum", optim.sgd(0.01, momentum=0.9), "parameter"),
        ("adam", optim.adam(1e-3), "parameter"),
        ("adamw", optim.adamw(1e-3, weight_decay=0.01), "parameter"),
    ]:
        seconds, p, diff = bench_smoother(
            opt, d, width, n, m, batch, steps, repeats=repeats, agreement=True
        )
        if name == "sgd":
            flops = _sgd_step_flops(d, width, n + m, batch, n)
        elif name == "adam_b1_0":  # the preconditioned block (2 R B p) and its product
            p = d * width + 2 * width + 1
            flops = 2.0 * (n + m) * batch * (p + n + 2)
        else:
            flops = _state_step_flops(d, width, n + m, batch, n)
        out[name] = {
            "route": route,
            "seconds": seconds,
            "gflop": flops / 1e9,
            "fraction_of_matmul": flops / seconds / 1e9 / rate,
            "max_rel_diff_generic": diff,
        }
    return out


def trained_preconditioner(model, params, X, y, batch, steps):
    """Adam's :math:`\\phi` after ``steps`` AdamW steps (lr 1e-3, decay 0.01) on ``(X, y)`` in
    batches of ``batch`` (a preconditioner with the structure training gives it)."""
    opt = optim.adamw(1e-3, weight_decay=0.01)
    loss = lambda p, xb, yb: 0.5 * jnp.mean((model.apply(p, xb) - yb) ** 2)

    @jax.jit
    def step(p, state, xb, yb):
        delta, state = opt.update(jax.grad(loss)(p, xb, yb), state, p)
        return optim.apply_updates(p, delta), state

    state, rng = opt.init(params), np.random.default_rng(0)
    for _ in range(steps):
        rows = rng.choice(X.shape[0], batch, replace=False)
        params, state = step(params, state, X[rows], y[rows])
    return params, optim.preconditioner(state, opt.config)


def bench_adam_kernel(d, width, n, m, batch, repeats, rate, train_steps, ranks) -> dict:
    """The Adam-preconditioned kernel block: exact structured route, Jacobian route and the
    rank-r routes, each timed, with differences from the exact block."""
    model, params, X, y, X_eval = _problem(d, width, n, m)
    params, phi = trained_preconditioner(model, params, X, y, batch, train_steps)
    X_R, X_B = jnp.concatenate([X, X_eval]), X[:batch]
    block = lambda **kw: tangent_kernel(
        model, params, X_R, X_B, preconditioner=phi, **kw
    )
    exact = _best(lambda: block(method="structured"), repeats)
    generic = _best(
        lambda: tangent_kernel(model.apply, params, X_R, X_B, preconditioner=phi),
        repeats,
    )
    K = block(method="structured")
    scale = jnp.max(jnp.abs(K))
    rel = lambda other: float(jnp.max(jnp.abs(other - K)) / scale)
    p = count_parameters(params)
    flops = (
        2.0 * (n + m) * batch * p
    )  # the Jacobian contraction's count, the exact route's too
    out = {
        "size": f"MLP d={d} width={width} (p={p}), R={n + m} rows, B={batch}, phi after "
        f"{train_steps} AdamW steps",
        "exact_s": exact,
        "generic_s": generic,
        "exact_speedup": generic / exact,
        "exact_fraction_of_matmul": flops / exact / 1e9 / rate,
        "exact_max_rel_diff_generic": rel(
            tangent_kernel(model.apply, params, X_R, X_B, preconditioner=phi)
        ),
    }
    for r in ranks:
        seconds = _best(lambda r=r: block(method="structured", rank=r), repeats)
        out[f"rank_{r}_s"] = seconds
        out[f"rank_{r}_speedup"] = generic / seconds
        out[f"rank_{r}_max_rel_diff"] = rel(block(method="structured", rank=r))
    return out


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
    sizes = (d, *widths, 1)
    forward_flops = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    # the jvp's tangent: x dW on the first layer, h' W + h dW on every later one
    tangent_flops = 2 * sizes[0] * sizes[1] + sum(
        4 * a * b for a, b in zip(sizes[1:-1], sizes[2:])
    )
    out = {
        "size": f"MLP d={d} widths={widths} (p={count_parameters(params)}), n={n}, batch={batch}",
        "untracked_step_s": base,
        "tangent_over_forward_flops": tangent_flops / forward_flops,
        "agreement": _telescoping_agreement(model, params, opt, X, y, X_eval, batch),
    }
    for m in m_values:
        floor = per_step({"forward": forward_tracker(model, X_eval[:m])})
        tracked = per_step({"telescoping": telescoping_tracker(model, X_eval[:m])})
        forward = floor - base
        out[f"m={m}"] = {
            "tracked_step_s": tracked,
            "overhead": tracked / base,
            "floor_step_s": floor,
            "over_floor": tracked / floor,
            # an exact first-order record computes the tangent too: at the forward pass's rate
            "exact_bound_over_floor": (floor + forward * tangent_flops / forward_flops)
            / floor,
        }
    return out


def forward_tracker(model, X_eval) -> Tracker:
    """The floor of a per-step record: one forward pass over ``X_eval`` each step (the
    network's predictions at the step's parameters), kept as the tracker's state."""
    return Tracker(
        init=lambda params: model.apply(params, X_eval),
        update=lambda f, info: model.apply(info.params_prev, X_eval),
        record=lambda f, params: f,
    )


def _telescoping_agreement(model, params, opt, X, y, X_eval, batch, steps=20) -> float:
    """The largest difference between two exact routes to the realised-step telescoping model
    after ``steps`` SGD steps: the jvp tracker, and the SGD smoother's kernel-form realised reading
    (:mod:`lensbox.engine.smoother`), relative to the model's largest value."""
    rows = X_eval[:200]
    r = train(
        model,
        params,
        opt,
        X,
        y,
        steps=steps,
        batch_size=batch,
        trackers={
            "telescoping": telescoping_tracker(model, rows),
            "smoother": smoother_tracker(model, X, y, rows, opt),
        },
        progress=False,
    )
    jvp = np.asarray(r.records["telescoping"][-1])
    kernel = np.asarray(r.records["smoother"]["realised"][-1])[X.shape[0] :]
    return float(np.max(np.abs(jvp - kernel)) / np.max(np.abs(jvp)))


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
    "adam_kernel": {"train_steps": 200, "ranks": (1, 4, 16)},
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
    "adam_kernel": {"train_steps": 3, "ranks": (1, 4)},
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

    p = state_size["d"] * state_size["width"] + 2 * state_size["width"] + 1
    out["state_smoother_step"] = {
        "size": f"MLP d={state_size['d']} width={state_size['width']} (p={p}), "
        f"n={state_size['n']} + m={state_size['m']} rows, B={state_size['batch']}",
        "matmul_gflops": rate,
        **bench_state_smoothers(
            **state_size, steps=state_steps, rate=rate, repeats=repeats
        ),
        "approximate_routes": "the probe route (probes=k; (g)); every other route is exact",
    }
    out["adam_kernel_block"] = bench_adam_kernel(
        **ref, repeats=repeats, rate=rate, **sizes["adam_kernel"]
    )

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


STATE_NAMES = {
    "sgd": "SGD",
    "adam_b1_0": "Adam without momentum",
    "momentum": "SGD with momentum",
    "adam": "Adam",
    "adamw": "AdamW",
}


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
        f"(c) smoother step of each optimiser, {st['size']}; fraction of the matmul rate "
        f"{st['matmul_gflops']:.1f} GFLOP/s:",
        *(
            f"    {STATE_NAMES[name]} ({st[name]['route']} route): "
            f"{st[name]['seconds'] * 1e3:.1f} ms for {st[name]['gflop']:.2f} GFLOP = "
            f"{100 * st[name]['fraction_of_matmul']:.0f} %"
            + (" (target >= 60 %)" if st[name]["route"] == "parameter" else "")
            + f"; after the timed steps {st[name]['max_rel_diff_generic']:.1e} from the "
            "generic route"
            for name in STATE_NAMES
        ),
        f"(d) telescoping tracking, {tel['size']}: untracked {tel['untracked_step_s'] * 1e3:.2f} ms/step",
    ]
    for key, v in tel.items():
        if key.startswith("m="):
            lines.append(
                f"    {key}: tracked {v['tracked_step_s'] * 1e3:.2f} ms/step "
                f"({v['overhead']:.2f}x untracked); floor (training + one forward pass over "
                f"the {key[2:]} rows) {v['floor_step_s'] * 1e3:.2f} ms: "
                f"{v['over_floor']:.2f}x the floor (target <= 1.3x; an exact record also runs "
                f"the tangent, {tel['tangent_over_forward_flops']:.2f}x the forward's flops: "
                f"{v['exact_bound_over_floor']:.2f}x at the forward's rate)"
            )
    lines.append(
        f"    jvp tracker and the SGD smoother's realised reading agree to "
        f"{tel['agreement']:.1e} of the model's largest value"
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
    ak = out["adam_kernel_block"]
    ranks = sorted(
        int(k.split("_")[1]) for k in ak if k.startswith("rank_") and k.endswith("_s")
    )
    lines += [
        f"(h) Adam-preconditioned kernel block, {ak['size']}: Jacobian route "
        f"{ak['generic_s']:.3f} s;",
        f"    exact structured {ak['exact_s']:.3f} s: {ak['exact_speedup']:.1f}x, "
        f"{100 * ak['exact_fraction_of_matmul']:.0f} % of the matmul rate (same flops as the "
        f"Jacobian contraction); {ak['exact_max_rel_diff_generic']:.1e} from the Jacobian route",
        "    rank-r routes (target >= 10x): "
        + ", ".join(
            f"r={r} {ak[f'rank_{r}_s'] * 1e3:.1f} ms ({ak[f'rank_{r}_speedup']:.0f}x, "
            f"max difference {ak[f'rank_{r}_max_rel_diff']:.1e} of the exact block's largest entry)"
            for r in ranks
        ),
    ]
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
