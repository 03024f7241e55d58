"""Run the book: execute the chapters in order with papermill, then optionally render them.

The chapters are the pipeline: each one reads what the chapters before it wrote under
``data/runs/<profile>/`` and writes its own stage there. Running them in ``_toc.yml`` order under one
parameter profile (``book/params/<profile>.yaml``) is therefore the whole analysis, and the executed
notebooks are the record of it.

Under the ``default`` profile each executed chapter replaces ``book/<chapter>.ipynb`` (the committed,
rendered book shows the run just made); under any other profile the executed notebooks go to
``data/runs/<profile>/notebooks/`` so a smoke or paper-scale run never overwrites the book. A chapter is
executed into the run folder first and copied into ``book/`` only when it succeeded, so a failure
never leaves a half-run chapter in the book; the run stops at the first failing chapter and names the
chapter, the cell and the error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..data import runs
from .profiles import chapter_inputs, check_parameters, load_profile, parse_overrides, select_chapters, toc_chapters

__all__ = [
    "BOOK_PROFILE",
    "MissingBookExtra",
    "BOOK_EXTRA",
    "RUN_MODULES",
    "require_book_extra",
    "ChapterError",
    "ChapterRun",
    "run_book",
    "build_book",
    "register_cli",
]

#: The profile whose executed chapters are written back into ``book/`` (what the book shows).
BOOK_PROFILE = "default"


class MissingBookExtra(RuntimeError):
    """A tool of the package's ``book`` extra is not installed; the message says how to install it."""


#: The package extra (requirements-book.txt) with what running and rendering the chapters needs.
BOOK_EXTRA = "book"
#: The modules ``deepcycle run`` executes the chapters with (the kernel runs in this environment).
RUN_MODULES = ("papermill", "ipykernel")


def require_book_extra(modules: Sequence[str] = RUN_MODULES, what: str = "deepcycle run") -> None:
    """Raise :class:`MissingBookExtra` naming the missing modules and the install command.

    papermill, ipykernel and jupyter-book are not runtime dependencies of the package (its stages run
    without them), so a plain ``pip install`` of the package lacks them; without this check the user
    would see a bare ModuleNotFoundError from inside the first chapter's run.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingBookExtra(
            f"{what} needs {', '.join(missing)}, from the package's {BOOK_EXTRA!r} extra (requirements-book.txt): "
            f"pip install -e '.[{BOOK_EXTRA}]' in the repository (`make venv` installs it), "
            f"or pip install 'deepcycle-core[{BOOK_EXTRA}]'"
        )


class ChapterError(RuntimeError):
    """A chapter failed: names the chapter, the cell and the error, and where the failed notebook is."""

    def __init__(self, chapter: str, message: str, notebook: Path | None = None):
        self.chapter = chapter
        self.notebook = notebook
        super().__init__(message)


@dataclass(frozen=True)
class ChapterRun:
    """One executed chapter: its name, where the executed notebook was written, and how long it took."""

    name: str
    output: Path
    seconds: float


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tidy(path: Path, root: Path) -> None:
    """Drop run timestamps and make recorded paths relative, so a rerun changes only what changed.

    Papermill's injected parameters cell is tagged ``hide-input`` so the book folds it away.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    pm = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "environment_variables"):
        pm.pop(key, None)
    for key in ("input_path", "output_path"):
        if pm.get(key):
            with contextlib.suppress(ValueError):
                pm[key] = Path(pm[key]).resolve().relative_to(root.resolve()).as_posix()
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            # The rendered page folds papermill's cell of the chapter's parameter values behind a toggle.
            cell.metadata["tags"] = [*tags, "hide-input"]
        cpm = cell.metadata.get("papermill")
        if cpm:
            for key in ("start_time", "end_time", "duration"):
                cpm.pop(key, None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def _execute(chapter: Path, output: Path, params: dict[str, Any], root: Path, progress: bool) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    rel = chapter.relative_to(root).as_posix() if chapter.is_relative_to(root) else str(chapter)
    try:
        with _environ(DEEPCYCLE_ROOT=str(root)):
            pm.execute_notebook(
                str(chapter),
                str(output),
                parameters=params,
                kernel_name="python3",
                cwd=str(chapter.parent),
                progress_bar=progress,
                request_save_on_cell_execute=False,
            )
    except PapermillExecutionError as exc:
        # exc.cell_index counts every cell (papermill's injected parameters cell included); the
        # execution count is what the reader sees as "In [n]".
        source = (exc.source or "").strip().splitlines()
        first = source[0] if source else ""
        raise ChapterError(
            chapter.stem,
            f"chapter {chapter.stem} ({rel}) failed in cell {exc.cell_index} (In [{exc.exec_count}]: {first!r}): "
            f"{exc.ename}: {exc.evalue}; the executed notebook with the traceback is {output}",
            output,
        ) from None
    except Exception as exc:  # kernel died, missing kernel, bad notebook file
        raise ChapterError(
            chapter.stem, f"chapter {chapter.stem} ({rel}) could not be executed: {type(exc).__name__}: {exc}", output
        ) from exc


def run_book(
    profile: str = BOOK_PROFILE,
    chapters: Sequence[str] | None = None,
    *,
    build: bool = False,
    progress: bool = True,
    root: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[ChapterRun]:
    """Execute the book's chapters in ``_toc.yml`` order under ``book/params/<profile>.yaml``.

    ``chapters`` limits the run to some chapters (they still run in book order, reading what earlier
    chapters left in the run folder). ``overrides`` replace single profile values (``-p NAME VALUE``).
    Each chapter is given only the values its parameters cell declares (:func:`chapter_inputs`).
    With ``build`` the book is then rendered with Jupyter Book. A profile or override key no chapter
    declares raises :class:`ParameterError` before anything runs; a failing chapter raises
    :class:`ChapterError` and stops the run.
    """
    root = Path(root).resolve() if root is not None else runs.repo_root()
    params = load_profile(profile, root=root)  # checks the profile's keys
    if overrides:
        check_parameters(overrides, "-p override", root)
        params.update(overrides)
    params.setdefault("profile", profile)
    todo = select_chapters(toc_chapters(root), chapters)
    if not todo and progress:
        print(f"{root / '_toc.yml'} lists no notebook chapters: nothing to run", file=sys.stderr)
    if todo:
        require_book_extra()
    out_dir = root / "data" / "runs" / profile / "notebooks"

    done: list[ChapterRun] = []
    for i, chapter in enumerate(todo, 1):
        output = out_dir / chapter.name
        if progress:
            print(f"[{i}/{len(todo)}] {chapter.stem}: running under profile {profile!r}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        _execute(chapter, output, chapter_inputs(chapter, params), root, progress)
        _tidy(output, root)
        final = output
        if profile == BOOK_PROFILE:
            shutil.copyfile(output, chapter)
            final = chapter
        seconds = time.perf_counter() - t0
        done.append(ChapterRun(chapter.stem, final, seconds))
        if progress:
            print(f"[{i}/{len(todo)}] {chapter.stem}: done in {seconds:.1f} s -> {final}", file=sys.stderr, flush=True)
    if build:
        build_book(root, progress=progress)
    return done


def build_book(root: str | os.PathLike | None = None, *, strict: bool = True, progress: bool = True) -> Path:
    """Render the book with ``jupyter-book build`` (no execution: the chapters carry their outputs).

    Returns ``_build/html``; raises naming the command when the build fails.
    """
    root = Path(root) if root is not None else runs.repo_root()
    exe = Path(sys.executable).with_name("jupyter-book")
    found = str(exe) if exe.exists() else shutil.which("jupyter-book")
    if found is None:
        require_book_extra(("jupyter_book",), "building the book")
        found = "jupyter-book"  # the module is there but its script is not on PATH: let the OS say so
    cmd = [found, "build", str(root)]
    if strict:
        cmd += ["-W", "--keep-going"]
    result = subprocess.run(cmd, cwd=root, capture_output=not progress, text=True)
    if result.returncode != 0:
        tail = "" if progress else "\n" + (result.stdout or "")[-3000:] + (result.stderr or "")[-3000:]
        raise RuntimeError(f"book build failed ({' '.join(cmd)} exited {result.returncode}){tail}")
    return root / "_build" / "html"


def _cli_run(args: argparse.Namespace) -> int:
    wanted = [c for c in (args.chapters or "").split(",") if c.strip()] or None
    try:
        done = run_book(args.profile, wanted, build=args.build, progress=not args.quiet,
                        overrides=parse_overrides(args.param))
    except ChapterError as exc:
        print(f"deepcycle run: {exc}", file=sys.stderr)
        return 1
    total = sum(r.seconds for r in done)
    print(f"ran {len(done)} chapter(s) under profile {args.profile!r} in {total:.0f} s")
    return 0


def register_cli(subparsers: Any) -> None:
    """``deepcycle run --profile NAME [--chapters 01_data,02_train] [-p NAME VALUE ...] [--build]``."""
    from ..__main__ import add_command

    p = add_command(subparsers, "run", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default=BOOK_PROFILE, help="parameter profile: book/params/<NAME>.yaml (default: %(default)s)")
    p.add_argument("--chapters", default=None, help="comma-separated chapters to run, e.g. 01_data,02_train (default: all)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), default=None,
                   help="override one profile value (VALUE read as YAML), e.g. -p train_epochs 2; repeatable")
    p.add_argument("--build", action="store_true", help="render the book with jupyter-book afterwards")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cli_run)
