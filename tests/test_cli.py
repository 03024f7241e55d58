"""The ``deepcycle`` command line: a light start, one table of commands, and a quiet Ctrl-C.

Why: ``deepcycle --help`` took 4.5 s (9-10 s on a loaded machine) because it imported every stage --
torch, Datashader, scikit-image -- to ask each for its sub-parser. The top-level parser is now built
from :data:`deepcycle_core.__main__.COMMANDS` alone, and only the chosen command's module is imported.
Each probe of what gets imported runs in a fresh interpreter, so what one test loaded cannot hide
what another pulls in.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepcycle_core import __main__ as cli

ROOT = Path(__file__).resolve().parents[1]
#: The commands that run no network: choosing them (even to ask for their --help) must not load torch.
NO_NETWORK = ("simulate", "ingest", "embed", "trajectory", "describe", "validate", "run")


def _modules_after_main(*argvs: list[str]) -> list[tuple[int, list[str]]]:
    """For each argv in turn, in one fresh interpreter: main's exit code and the modules loaded by then."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from deepcycle_core.__main__ import main\n"
        f"for argv in {json.dumps([list(a) for a in argvs])}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            rc = main(argv)\n"
        "        except SystemExit as exc:\n"
        "            rc = exc.code\n"
        "    print(json.dumps([rc, sorted(sys.modules)]))\n"
    )
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return [tuple(json.loads(line)) for line in res.stdout.strip().splitlines()]


def _command_modules(mods: list[str]) -> list[str]:
    return [m for m in mods if m.startswith("deepcycle_core.") and m.count(".") > 1]


@pytest.mark.parametrize("argv", [["--help"], [], ["no-such-command"], ["--version"]], ids=lambda a: " ".join(a) or "nothing")
def test_help_and_bad_commands_import_no_stage_and_no_torch(argv):
    [(rc, mods)] = _modules_after_main(argv)
    assert rc == (0 if argv in (["--help"], ["--version"]) else 2)
    assert "torch" not in mods
    assert not _command_modules(mods), f"deepcycle {' '.join(argv)} imported {_command_modules(mods)}"


def test_commands_that_run_no_network_import_no_torch_even_for_their_help():
    results = _modules_after_main(*([name, "--help"] for name in NO_NETWORK))
    for name, (rc, mods) in zip(NO_NETWORK, results):
        assert rc == 0, name
        assert "torch" not in mods, f"deepcycle {name} --help imports torch"
        # only the chosen command's module (and what it needs) is loaded, not every stage
        assert f"deepcycle_core.{cli.COMMANDS[name].module}" in mods
    assert "deepcycle_core.net.train" not in results[-1][1]


def test_help_is_fast_in_a_fresh_interpreter():
    """A generous bound (the measured time is ~0.2 s idle; torch alone took 1.6 s)."""
    import time

    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "deepcycle_core", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and time.perf_counter() - t < 10


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_command_of_the_table_is_registered_by_its_module_under_exactly_that_name(name):
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"deepcycle_core.{cli.COMMANDS[name].module}").register_cli(sub)
    assert list(sub.choices) == [name]
    assert sub.choices[name].get_default("func") is not None or name == "reference"


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_commands_help_comes_from_the_table(name, monkeypatch):
    """Change the table's line: the module's sub-parser and the top-level help both show the new one."""
    line = f"marker help line of {name}"
    monkeypatch.setitem(cli.COMMANDS, name, cli.Command(cli.COMMANDS[name].module, line))
    for command in (None, name):  # the placeholder, and the real sub-parser the module builds
        sub = next(a for a in cli.build_parser(command)._actions if isinstance(a, argparse._SubParsersAction))
        [helped] = [a.help for a in sub._choices_actions if a.dest == name]
        assert helped == line


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_commands_help_works(name, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deepcycle {name} ")


def test_top_level_help_lists_every_command_with_its_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
    for name, cmd in cli.COMMANDS.items():
        assert name + "".join(cmd.help.split()) in out


def test_ctrl_c_is_one_line_and_exit_code_130(monkeypatch, capsys):
    from deepcycle_core.book import pipeline

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_cli_run", interrupted)
    assert cli.main(["run"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "deepcycle run: interrupted\n" and captured.out == ""
