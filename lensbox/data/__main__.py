"""``python -m lensbox.data list`` and ``python -m lensbox.data fetch NAME``."""

from __future__ import annotations

import argparse
import sys

from lensbox.data.catalogue import CATALOGUE, describe, info
from lensbox.data.dataset import DataUnavailableError
from lensbox.data.download import ChecksumError, DownloadError


def list_datasets(out=None) -> None:
    print(describe(), file=sys.stdout if out is None else out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lensbox.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "list", help="every data set: source, licence, size, availability here"
    )
    fetch = sub.add_parser("fetch", help="download and verify the real data set NAME")
    fetch.add_argument("name", choices=list(CATALOGUE))
    args = parser.parse_args(argv)
    if args.command == "list":
        list_datasets()
        return 0
    entry = info(args.name)
    if entry.generated:
        print(f"{args.name} is generated locally; nothing to download.")
        return 0
    try:
        paths = entry.fetch()
    except (DownloadError, ChecksumError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"verified {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
