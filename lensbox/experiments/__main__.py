"""``python -m lensbox.experiments list`` and ``python -m lensbox.experiments run NAME
[--scale smoke|book|long|paper] [--first UNIT ...]``."""

from __future__ import annotations

import argparse
import sys

from lensbox.experiments.registry import REGISTRY, get
from lensbox.runtime.results import (
    EXPERIMENT_SCALES,
    checkpointed_seconds,
    missing_units,
    run,
    run_dir,
)


def _with_checkpoint(experiment, scale: str, unit: str) -> str:
    seconds = checkpointed_seconds(experiment, scale, unit)
    return unit if seconds is None else f"{unit} (checkpoint after {seconds:,.0f} s)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lensbox.experiments")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list", help="each experiment, and how many units are stored per scale"
    )
    runner = sub.add_parser("run", help="compute and store the units not stored yet")
    runner.add_argument("name", choices=sorted(REGISTRY))
    runner.add_argument("--scale", choices=EXPERIMENT_SCALES, default="long")
    runner.add_argument(
        "--first",
        nargs="+",
        default=(),
        metavar="UNIT",
        help="units to compute before the others (the rest follow in order)",
    )
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, experiment in sorted(REGISTRY.items()):
            print(f"{name}: {experiment.description}")
            for scale in EXPERIMENT_SCALES:
                total = len(experiment.units(experiment.config(scale)))
                stored = total - len(missing_units(experiment, scale))
                print(
                    f"  {scale:>5}: {stored}/{total} units stored in "
                    f"{run_dir(experiment, scale)}"
                )
                if 0 < stored < total:
                    todo = [
                        _with_checkpoint(experiment, scale, u)
                        for u in missing_units(experiment, scale)
                    ]
                    print(f"         missing: {', '.join(todo)}")
        return 0
    experiment = get(args.name)
    run(experiment, args.scale, first=args.first)
    print(
        f"{args.name} ({args.scale}): every unit stored in {run_dir(experiment, args.scale)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
