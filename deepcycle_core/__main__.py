"""The ``deepcycle`` command line: one sub-command a pipeline stage.

:data:`COMMANDS` is the one table of the commands: each one's module and its one-line help. The
top-level parser is built from the table alone, with a placeholder sub-parser per command, so
``deepcycle --help`` (or a mistyped command) imports none of the stages -- no torch, no plotting.
Only once a command is chosen is its module imported, and its ``register_cli(subparsers)`` builds the
real sub-parser (taking its one-line help from the table through :func:`add_command`) and sets
``func`` to the function that runs it, so the CLI never duplicates a stage's logic.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, NamedTuple

__all__ = ["COMMANDS", "Command", "add_command", "build_parser", "main"]


class Command(NamedTuple):
    """A sub-command: the module (under ``deepcycle_core``) whose ``register_cli`` adds it, and its help."""

    module: str
    help: str


#: Every sub-command, in pipeline order: the one home of its module and its one-line help.
COMMANDS: dict[str, Command] = {
    "simulate": Command("sim.simulate", "film the virtual microscope into a cell store"),
    "ingest": Command("movies.ingest", "ingest a time-lapse movie (OME-TIFF, TIFF, frame folder, OME-Zarr, "
                                       "DeepCycle layout) into a cell store"),
    "train": Command("net.train", "train the DeepCycle network on a cell store"),
    "reference": Command("net.reference", "train (make model) or install the reference networks"),
    "embed": Command("net.embed", "embed every cell of a store with a trained checkpoint"),
    "trajectory": Command("clock.trajectory", "fit the cycle ring: angle, pseudotime, ERA hours, ring SOM"),
    "describe": Command("validation.describe", "make every validation method's descriptors (networks, baselines) "
                                               "into RUN/describe/, stamped"),
    "validate": Command("validation.validate", "validate the ring on held-out full-cycle tracks against truth and "
                                               "baselines (makes missing or stale descriptors first, as "
                                               "`deepcycle describe`)"),
    "peer": Command("validation.peer", "CellCycleNet, a released peer, on the validation's held-out cells (zero-shot "
                                       "and fine-tuned on the training cells): G1 vs S/G2 AUROC beside our clock"),
    "run": Command("book.pipeline", "execute the book's chapters in order with papermill (and optionally build "
                                    "the book)"),
}


def add_command(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """``subparsers.add_parser(name, ...)`` with the command's one-line help from :data:`COMMANDS` (also
    its description unless the module gives a longer one); what each ``register_cli`` calls."""
    line = COMMANDS[name].help
    kwargs.setdefault("description", line[0].upper() + line[1:] + ".")
    return subparsers.add_parser(name, help=line, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: ``command``'s sub-parser built by its module, every other one a placeholder."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="deepcycle", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"deepcycle {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        if name == command:
            importlib.import_module(f"deepcycle_core.{cmd.module}").register_cli(sub)
            if name not in sub.choices:
                raise RuntimeError(f"deepcycle_core.{cmd.module}.register_cli did not add the {name!r} command")
        else:
            sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the placeholders answer --help, --version, no command and an unknown one without importing a stage
    command = build_parser().parse_known_args(argv)[0].command
    try:
        args = build_parser(command).parse_args(argv)
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"deepcycle {command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"deepcycle {command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
