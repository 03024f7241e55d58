"""The ``deepcycle`` command line: one sub-command a pipeline stage.

Each stage module exposes ``register_cli(subparsers)`` which adds its sub-command and sets
``func`` to the function that runs it, so the CLI never duplicates a stage's logic.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Modules that contribute sub-commands, in pipeline order.
COMMAND_MODULES = ("simulate", "ingest", "train", "embed", "trajectory", "validate", "pipeline")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="deepcycle", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"deepcycle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"deepcycle_core.{name}")
        except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
            if exc.name != f"deepcycle_core.{name}":
                raise
            continue
        module.register_cli(sub)
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
