"""Experiments as stored results: units written one by one, with provenance, resumed where they stopped.

A case study's experiment is an :class:`Experiment`: one configuration per scale (``smoke``,
``book``, ``long``, ``paper``), the list of its *units* (a seed, a width, a spawn point) and the
function that computes one unit, the same function its chapter calls. :func:`run` computes the
units a configuration still lacks and writes each one the moment it is done, to its own file::

    results/NAME/<config hash>/manifest.json      the configuration, its hash, the scale
    results/NAME/<config hash>/<unit>.npz         one unit: its arrays, and a JSON record with
                                                  the result's structure and its provenance

A rerun skips the units already stored, so an interrupted run resumes where it stopped and nothing
is computed twice. A unit is written to a temporary file and renamed into place, so a kill leaves
either the whole unit or nothing. A changed configuration has another hash, hence another folder:
nothing is overwritten.

Chapters call :func:`load_or_run` (through :func:`lensbox.experiments.results`): at ``book`` scale
a complete stored ``long`` run is read when its hash matches the code's configuration, else the
``book`` configuration is computed live; at ``smoke`` it always computes live; at ``paper`` it
reads a stored ``paper`` run or computes live. The returned :class:`Results` says which, with its
provenance.

The ``long`` scale is the paper's protocol as far as two CPU cores allow (each unit at most about
10 minutes, each case study at most about an hour). A developer runs it with
``python -m lensbox.experiments run NAME --scale long`` and commits what it writes; neither the
website build nor the tests ever run it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lensbox._files import atomic_write
from lensbox.engine.checkpoints import resumable, saved_seconds
from lensbox.engine.progress import shared_steps
from lensbox.errors import ArgumentError
from lensbox.runtime.chapter import precision
from lensbox.runtime.scale import SCALES, paper_budget_is_smoke, scale_in_force
from lensbox.runtime.scale import scale as current_scale

#: The scales an experiment is configured for; ``long`` exists only here (the runner's scale).
EXPERIMENT_SCALES: tuple[str, ...] = ("smoke", "book", "long", "paper")
#: Where results are kept: this variable, else ``results/`` beside the ``lensbox`` package.
RESULTS_ENV = "LENSBOX_RESULTS"
RECORD_KEY = "__record__"


@dataclass(frozen=True)
class Experiment:
    """One case study's experiment, split into units.

    Attributes:
        name: the experiment's name (``results/NAME/``), usually the chapter's.
        description: one line for ``python -m lensbox.experiments list``.
        configs: a JSON-able configuration per scale of :data:`EXPERIMENT_SCALES`.
        units: the unit names of a configuration, in the order they run; each is a file name.
        run_unit: ``run_unit(config, unit)`` computes one unit: arrays, numbers, strings, lists,
            dicts and dataclasses of those.
        seeds: ``seeds(config, unit)``: the random seeds a unit uses, for its provenance.
        x64: compute in float64, as the chapter does after :func:`lensbox.setup` (the default),
            so that a stored unit equals the chapter's own computation of it.
        paper_smoke: the ``paper`` configuration's choices (data sets, branches) at ``smoke``
            sizes, computed live under the tests' override ``LENSBOX_PAPER_BUDGET=smoke`` (see
            :func:`lensbox.runtime.scale.budget`); never stored.
        data: ``data(config, data_scale)``: the data sets a configuration reads, each with a
            description of what :func:`lensbox.data.load` returns for it at that scale (its
            offline stand-in, or the real files): part of the hash, so a changed stand-in makes
            the results computed on the old one stale.
    """

    name: str
    description: str
    configs: Mapping[str, Mapping[str, Any]]
    units: Callable[[Mapping[str, Any]], Sequence[str]]
    run_unit: Callable[[Mapping[str, Any], str], Any]
    seeds: Callable[[Mapping[str, Any], str], Sequence[int]] = field(
        default=lambda config, unit: ()
    )
    x64: bool = True
    paper_smoke: Mapping[str, Any] | None = None
    data: Callable[[Mapping[str, Any], str], Mapping[str, str]] | None = None

    def __post_init__(self):
        missing = [s for s in EXPERIMENT_SCALES if s not in self.configs]
        if missing:
            raise ArgumentError(
                f"experiment {self.name!r} has no configuration for {missing}; "
                f"it needs one for each of {EXPERIMENT_SCALES}."
            )

    def config(self, scale: str) -> dict[str, Any]:
        """The configuration at ``scale``."""
        if scale not in EXPERIMENT_SCALES:
            raise ArgumentError(
                f"scale must be one of {EXPERIMENT_SCALES}; got {scale!r}."
            )
        return dict(self.configs[scale])

    def compute(self, config: Mapping[str, Any], unit: str) -> Any:
        """One unit, at the experiment's precision."""
        with precision(self.x64):
            return self.run_unit(config, unit)

    def data_sets(self, scale: str) -> dict[str, str]:
        """The data sets the configuration at ``scale`` reads, described (see ``data``)."""
        if self.data is None:
            return {}
        return dict(self.data(self.config(scale), data_scale(scale)))

    def hash(self, scale: str) -> str:
        """The configuration hash at ``scale`` (:func:`config_hash`)."""
        return config_hash(
            self.name, self.config(scale), self.x64, self.data_sets(scale)
        )


def config_hash(
    name: str,
    config: Mapping[str, Any],
    x64: bool = True,
    data: Mapping[str, str] | None = None,
) -> str:
    """The first 12 hex digits of the SHA-256 of the experiment's name, configuration, float
    precision and (when given) the data sets it reads, written as canonical JSON (sorted keys):
    equal settings on equal data, and only those, share a hash."""
    record = {"experiment": name, "config": config, "x64": bool(x64)}
    if data:
        record["data"] = dict(data)
    text = json.dumps(record, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_scale(scale: str) -> str:
    """The scale whose data sets a configuration at ``scale`` reads: its own, and ``book``'s
    offline data for ``long``."""
    return "book" if scale == "long" else scale


def results_dir() -> Path:
    """``$LENSBOX_RESULTS``; else the ``results/`` folder of the checkout lensbox runs from; else,
    for an installed lensbox (Colab), ``results/`` in the working directory."""
    folder = os.environ.get(RESULTS_ENV, "").strip()
    if folder:
        return Path(folder)
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "lensbox").is_dir():
        return root / "results"
    return Path.cwd() / "results"


def run_dir(experiment: Experiment, scale: str) -> Path:
    """``results/NAME/<config hash>/`` of ``experiment`` at ``scale``."""
    return results_dir() / experiment.name / experiment.hash(scale)


# ---------------------------------------------------------------------------------------------
# One unit on disk: its arrays in an .npz, its structure and provenance as JSON inside it


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and not np.isscalar(value)
    ):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"__array__": key}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        return {
            "__dataclass__": f"{kind.__module__}:{kind.__qualname__}",
            "fields": {
                f.name: _encode(getattr(value, f.name), arrays)
                for f in dataclasses.fields(value)
            },
        }
    if isinstance(value, Mapping):
        return {
            "__dict__": [
                [_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()
            ]
        }
    if isinstance(value, (list, tuple)):
        return {"__list__": [_encode(v, arrays) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ArgumentError(
        f"a unit's result may hold arrays, numbers, strings, None, lists, dicts and dataclasses; "
        f"got {type(value).__name__}."
    )


def _decode(value: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__dataclass__" in value:
            module, _, name = value["__dataclass__"].partition(":")
            kind = getattr(importlib.import_module(module), name)
            return kind(**{k: _decode(v, arrays) for k, v in value["fields"].items()})
        if "__dict__" in value:
            return {
                _decode(k, arrays): _decode(v, arrays) for k, v in value["__dict__"]
            }
        if "__list__" in value:
            return [_decode(v, arrays) for v in value["__list__"]]
    return value


def write_unit(path: Path, result: Any, provenance: Mapping[str, Any]) -> None:
    """Store one unit's ``result`` with its ``provenance`` at ``path`` (an ``.npz``), atomically."""
    arrays: dict[str, np.ndarray] = {}
    record = {"result": _encode(result, arrays), "provenance": dict(provenance)}
    arrays[RECORD_KEY] = np.array(json.dumps(record, sort_keys=True))
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def read_unit(path: Path) -> tuple[Any, dict[str, Any]]:
    """``(result, provenance)`` of a unit stored by :func:`write_unit`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    record = json.loads(str(arrays.pop(RECORD_KEY)))
    return _decode(record["result"], arrays), record["provenance"]


# ---------------------------------------------------------------------------------------------
# Provenance


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lensbox"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    if commit.returncode != 0:
        return "unknown (not a git checkout)"
    return commit.stdout.strip() + (
        " (lensbox modified)" if dirty.stdout.strip() else ""
    )


def lensbox_version() -> str:
    """The installed lensbox's version (``unknown`` when it runs from a folder, uninstalled)."""
    try:
        return importlib.metadata.version("lensbox")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, Any]:
    """The machine a unit ran on: processor, cores, JAX backend and devices."""
    import jax

    devices = jax.devices()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "device_count": len(devices),
        "devices": sorted({d.device_kind for d in devices}),
        "jax": jax.__version__,
    }


def provenance(
    experiment: Experiment, scale: str, unit: str, seconds: float
) -> dict[str, Any]:
    """Everything needed to say where a unit came from."""
    config = experiment.config(scale)
    return {
        "experiment": experiment.name,
        "scale": scale,
        "unit": unit,
        "config": config,
        "config_hash": experiment.hash(scale),
        "data": experiment.data_sets(scale),
        "seeds": [int(s) for s in experiment.seeds(config, unit)],
        "x64": experiment.x64,
        "lensbox_version": lensbox_version(),
        "git_commit": _git_commit(),
        "wall_seconds": round(float(seconds), 3),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }


# ---------------------------------------------------------------------------------------------
# Running and reading


def _write_manifest(experiment: Experiment, scale: str) -> None:
    path = run_dir(experiment, scale) / "manifest.json"
    manifest = {
        "experiment": experiment.name,
        "scale": scale,
        "config": experiment.config(scale),
        "config_hash": experiment.hash(scale),
        "data": experiment.data_sets(scale),
        "x64": experiment.x64,
        "units": list(experiment.units(experiment.config(scale))),
    }
    if path.exists():
        stored = json.loads(path.read_text())
        if stored["config_hash"] != manifest["config_hash"]:
            raise ArgumentError(
                f"{path} holds another configuration; not overwriting it."
            )
        return
    text = json.dumps(manifest, indent=1, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode()))


def unit_path(experiment: Experiment, scale: str, unit: str) -> Path:
    return run_dir(experiment, scale) / f"{unit}.npz"


def missing_units(experiment: Experiment, scale: str) -> list[str]:
    """The units of ``experiment`` at ``scale`` not stored yet, in order."""
    units = experiment.units(experiment.config(scale))
    return [u for u in units if not unit_path(experiment, scale, u).exists()]


def _computed(
    experiment: Experiment,
    config: Mapping[str, Any],
    units: Sequence[str],
    label: str,
    progress: bool,
    partial: Callable[[str], Path] | None = None,
):
    """Yield ``(unit, result, seconds)`` for each of ``units``, computed in order. With
    ``progress``, under two tqdm bars with the time left: one over the units, one over the
    current unit's optimisation steps (every training loop inside it counts there, see
    :func:`lensbox.engine.progress.shared_steps`). With ``partial``, each unit's training loops
    save checkpoints in ``partial(unit)`` and resume from them
    (:func:`lensbox.engine.checkpoints.resumable`); ``seconds`` then counts the earlier attempts'
    saved time too, and the folder is removed once the consumer has taken the result."""
    bar = steps = None
    if progress and units:
        from tqdm import tqdm as text_bar
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(units), desc=f"{experiment.name} ({label}) units", unit="unit"
        )
        # Text on stderr, also in a notebook: the website drops it with the other stderr output.
        steps = text_bar(total=0, desc="steps", unit="step", mininterval=1.0)
    try:
        for unit in units:
            with ExitStack() as stack:
                scope = None
                if partial is not None:
                    scope = stack.enter_context(resumable(partial(unit)))
                started = time.perf_counter()
                if steps is not None:
                    steps.reset(total=0)
                    steps.set_description(f"{unit}: steps")
                    stack.enter_context(shared_steps(steps))
                result = experiment.compute(config, unit)
            seconds = time.perf_counter() - started
            if scope is not None:
                seconds += scope.prior_seconds
            yield unit, result, seconds
            if scope is not None:
                scope.clear()
            if bar is not None:
                bar.set_postfix_str(f"{unit}: {seconds:.0f} s")
                bar.update()
    finally:
        for b in (steps, bar):
            if b is not None:
                b.close()


def partial_dir(experiment: Experiment, scale: str, unit: str) -> Path:
    """Where the runner keeps the checkpoints of a unit being computed (not committed)."""
    return run_dir(experiment, scale) / ".partial" / unit


def checkpointed_seconds(experiment: Experiment, scale: str, unit: str) -> float | None:
    """The computing time a stopped unit has saved in its checkpoints, ``None`` when it has
    none."""
    return saved_seconds(partial_dir(experiment, scale, unit))


def run(
    experiment: Experiment,
    scale: str,
    *,
    progress: bool = True,
    first: Sequence[str] = (),
) -> dict[str, Any]:
    """Compute and store every unit of ``experiment`` at ``scale`` that is not stored yet, each
    written the moment it is done, under ``LENSBOX_SCALE`` = :func:`data_scale` (so a ``paper``
    configuration reads the paper's data sets whatever the shell's scale); return all units'
    results (stored and new) by name.

    A unit stopped part-way (the machine went away) is not lost: its training loops save their
    state every five minutes under :func:`partial_dir`, and the next ``run`` resumes them where
    they were (:mod:`lensbox.engine.checkpoints`), to the same numbers; the unit's
    ``wall_seconds`` then adds the earlier attempts' time up to their last save.

    ``first`` names units to compute before the others (the cheap ones, say, so that a session
    stores many units before it starts a long one); the rest follow in the experiment's order."""
    config = experiment.config(scale)
    units = experiment.units(config)
    unknown = [u for u in first if u not in units]
    if unknown:
        raise ArgumentError(
            f"{experiment.name} has no unit {unknown[0]!r} at scale {scale!r}; its units: "
            f"{units}."
        )
    _write_manifest(experiment, scale)
    missing = missing_units(experiment, scale)
    todo = [u for u in dict.fromkeys(first) if u in missing]
    todo += [u for u in missing if u not in todo]
    with scale_in_force(data_scale(scale)):
        for unit, result, seconds in _computed(
            experiment,
            config,
            todo,
            scale,
            progress,
            partial=lambda unit: partial_dir(experiment, scale, unit),
        ):
            write_unit(
                unit_path(experiment, scale, unit),
                result,
                provenance(experiment, scale, unit, seconds),
            )
    return {
        u: read_unit(unit_path(experiment, scale, u))[0]
        for u in experiment.units(config)
    }


@dataclass
class Results:
    """An experiment's units as a chapter reads them.

    Attributes:
        experiment: its name.
        scale: the configuration's scale (``long`` when a stored long run was read).
        config: that configuration.
        units: each unit's result, by unit name.
        source: ``"stored"`` (read from ``path``) or ``"live"`` (computed in this run).
        path: the folder read, for a stored result.
        provenance: each unit's provenance, for a stored result.
        seconds: each unit's wall time when it was computed (stored: from its provenance).
    """

    experiment: str
    scale: str
    config: dict[str, Any]
    units: dict[str, Any]
    source: str
    path: Path | None = None
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def total_seconds(self, prefix: str = "") -> float:
        """The wall time of the units whose names start with ``prefix`` (all of them by default)."""
        return float(sum(t for u, t in self.seconds.items() if u.startswith(prefix)))

    @property
    def label(self) -> str:
        """Where these results came from, short: the stored folder, or ``live (SCALE)``."""
        if self.source == "live":
            return f"computed live ({self.scale})"
        return f"results/{self.experiment}/{self.path.name}/ ({self.scale})"

    def describe(self) -> str:
        """One line saying where these results came from."""
        if self.source == "live":
            return (
                f"{self.experiment}: computed live in this run at scale {self.scale!r} "
                f"({len(self.units)} units); no stored result with this configuration was read."
            )
        first = next(iter(self.provenance.values()))
        hours = sum(p["wall_seconds"] for p in self.provenance.values()) / 3600
        return (
            f"{self.experiment}: stored result read from results/{self.experiment}/"
            f"{first['config_hash']}/ (scale {self.scale!r}, {len(self.units)} units, "
            f"{hours:.2f} h of compute on {first['machine']['backend']} with "
            f"{first['machine']['cpu_count']} CPU cores, lensbox {first['lensbox_version']} at "
            f"{_commits(self.provenance.values())})."
        )


def _commits(provenances) -> str:
    """The commits the units were computed at, in order of first use, each shortened to 12 hex
    digits and keeping the "(lensbox modified)" flag of a run from an uncommitted tree."""
    seen = []
    for p in provenances:
        commit, _, flag = str(p["git_commit"]).partition(" ")
        short = commit[:12] + (f" {flag}" if flag else "")
        if short not in seen:
            seen.append(short)
    return ("commit " if len(seen) == 1 else "commits ") + ", ".join(seen)


def load(experiment: Experiment, scale: str) -> Results | None:
    """The stored run of ``experiment`` at ``scale`` when every unit is stored, else ``None``."""
    if missing_units(experiment, scale):
        return None
    units, prov = {}, {}
    for unit in experiment.units(experiment.config(scale)):
        units[unit], prov[unit] = read_unit(unit_path(experiment, scale, unit))
    return Results(
        experiment.name,
        scale,
        experiment.config(scale),
        units,
        "stored",
        run_dir(experiment, scale),
        prov,
        {u: float(p["wall_seconds"]) for u, p in prov.items()},
    )


def live_config(experiment: Experiment, scale: str | None = None) -> dict[str, Any]:
    """The configuration a chapter computes at ``scale`` (default: the current one): that scale's,
    or ``paper_smoke`` under the tests' override ``LENSBOX_PAPER_BUDGET=smoke``."""
    scale = current_scale() if scale is None else scale
    if scale == "paper" and paper_budget_is_smoke():
        if experiment.paper_smoke is None:
            raise ArgumentError(
                f"experiment {experiment.name!r} has no paper_smoke configuration for "
                "LENSBOX_PAPER_BUDGET=smoke."
            )
        return dict(experiment.paper_smoke)
    return experiment.config(scale)


def load_or_run(
    experiment: Experiment, scale: str | None = None, *, progress: bool = False
) -> Results:
    """What a chapter shows: a complete stored run whose hash matches the code's configuration
    (``long`` then ``book`` at ``book`` scale, ``paper`` at ``paper``), else the current scale's
    configuration computed live (not stored; with ``progress``, under a bar over the units)."""
    scale = current_scale() if scale is None else scale
    if scale not in SCALES:
        raise ArgumentError(
            f"scale must be one of {', '.join(SCALES)} (or None for LENSBOX_SCALE); "
            f"got {scale!r}."
        )
    if scale == "paper" and paper_budget_is_smoke():
        order, label = (), "paper (smoke budget)"
    else:
        order = {"smoke": (), "book": ("long", "book"), "paper": ("paper",)}[scale]
        label = scale
    for stored_scale in order:
        found = load(experiment, stored_scale)
        if found is not None:
            return found
    config = live_config(experiment, scale)
    units = experiment.units(config)
    results, seconds = {}, {}
    for unit, result, took in _computed(experiment, config, units, label, progress):
        results[unit], seconds[unit] = result, took
    return Results(experiment.name, label, config, results, "live", seconds=seconds)


def stale_runs(experiment: Experiment) -> list[Path]:
    """Stored folders of ``experiment`` whose hash matches none of its current configurations: a
    result the code can no longer reproduce as configured, which must not be read as current."""
    folder = results_dir() / experiment.name
    if not folder.is_dir():
        return []
    current = {experiment.hash(s) for s in EXPERIMENT_SCALES}
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in current)
