"""The ``deepcycle`` command line: one sub-command a pipeline stage.

Each stage module exposes ``register_cli(subparsers)`` which adds its sub-command and sets
``func`` to the function that runs it, so the CLI never duplicates a stage's logic.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: Modules that contribute sub-commands, in pipeline order (each module's ``register_cli`` names its command).
COMMAND_MODULES = ("sim.simulate", "movies.ingest", "net.train", "net.reference", "net.embed", "clock.trajectory",
                   "validation.describe", "validation.validate", "book.pipeline")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="deepcycle", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"deepcycle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"deepcycle_core.{name}").register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"deepcycle {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
