"""Parameter profiles: which keys the chapters declare, and reading ``book/params/<profile>.yaml``.

A profile is a flat mapping injected by papermill into each chapter's ``parameters`` cell. A misspelt key
would be injected, ignored, and the chapter would silently run on its default, so every key is checked
against the parameters the chapters of ``_toc.yml`` declare (read from the notebooks' JSON, no kernel).
"""

from __future__ import annotations

import ast
import difflib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..data.runs import repo_root

__all__ = [
    "ALWAYS_VALID", "ParameterError", "book_parameters", "chapter_inputs", "chapter_parameters", "check_parameters",
    "TRAIN_PRECISIONS", "load_profile", "parse_overrides", "select_chapters", "toc_chapters", "train_bf16",
]

#: ``train_precision`` values and the preset's ``bf16`` setting each stands for (deepcycle_core.net.model.use_bf16).
TRAIN_PRECISIONS = {"auto": "auto", "fp32": False, "bf16": True}


class ParameterError(ValueError):
    """A profile or override names a parameter no chapter declares; the message names the key and the
    nearest valid ones."""


def toc_chapters(root: str | os.PathLike | None = None) -> list[Path]:
    """The notebook chapters listed in ``_toc.yml``, in reading order (Markdown pages are skipped).

    An entry with neither a ``.ipynb`` nor a ``.md`` file raises, naming the entry and the toc.
    """
    root = Path(root) if root is not None else repo_root()
    toc_path = root / "_toc.yml"
    if not toc_path.exists():
        raise FileNotFoundError(f"{toc_path}: no table of contents; the chapters' order is read from it")
    toc = yaml.safe_load(toc_path.read_text()) or {}
    if not isinstance(toc, dict):
        raise ValueError(f"{toc_path}: expected a mapping with 'root' and 'chapters'")

    entries: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    if "root" in toc:
        entries.append(str(toc["root"]))
    walk(toc)

    chapters = []
    for entry in entries:
        base = root / entry
        candidates = [base] if base.suffix else [base.with_suffix(".ipynb"), base.with_suffix(".md")]
        found = next((p for p in candidates if p.exists()), None)
        if found is None:
            raise FileNotFoundError(f"{toc_path}: entry {entry!r} has no file ({', '.join(map(str, candidates))})")
        if found.suffix == ".ipynb":
            chapters.append(found)
    return chapters


def select_chapters(chapters: Sequence[Path], wanted: Sequence[str] | None) -> list[Path]:
    """Keep the chapters named in ``wanted`` (``02_train``, ``02`` or ``book/02_train.ipynb``), in book order."""
    if not wanted:
        return list(chapters)
    keep: set[Path] = set()
    for name in wanted:
        stem = Path(name.strip()).stem
        matches = [c for c in chapters if c.stem == stem] or [c for c in chapters if c.stem.split("_")[0] == stem]
        if len(matches) != 1:
            known = ", ".join(c.stem for c in chapters)
            raise ValueError(f"unknown chapter {name!r}; the chapters in _toc.yml are: {known}")
        keep.add(matches[0])
    return [c for c in chapters if c in keep]


#: Always a valid key: :func:`run_book` sets it to the profile's name (each chapter declares it).
ALWAYS_VALID = ("profile",)


def chapter_parameters(chapter: str | os.PathLike) -> list[str]:
    """The names a chapter's ``parameters``-tagged cell assigns: the keys papermill can set in it.

    Read from the notebook's JSON without a kernel; a parameters cell that is not valid Python raises
    naming the chapter.
    """
    chapter = Path(chapter)
    try:
        nb = json.loads(chapter.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{chapter}: cannot read the notebook ({exc})") from exc
    names: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise ValueError(f"{chapter}: the parameters cell is not valid Python ({exc})") from exc
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name) and sub.id not in names:
                        names.append(sub.id)
    return names


def chapter_inputs(chapter: str | os.PathLike, params: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``params`` that ``chapter`` declares in its parameters cell, in ``params``' order.

    Papermill injects exactly these: a chapter's injected cell then lists the parameters it uses (not
    every key of the profile), and papermill's "unknown parameter" warning stays meaningful.
    """
    declared = set(chapter_parameters(chapter))
    return {key: value for key, value in params.items() if key in declared}


def book_parameters(root: str | os.PathLike | None = None) -> set[str]:
    """Every parameter some chapter in ``_toc.yml`` declares, plus :data:`ALWAYS_VALID`."""
    known = set(ALWAYS_VALID)
    for chapter in toc_chapters(root):
        known.update(chapter_parameters(chapter))
    return known


def check_parameters(params: Mapping[str, Any], where: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
    """Refuse keys no chapter declares (a misspelt key would otherwise be injected and ignored, so the
    run would silently use the chapter's default); the error names ``where``, each key and the nearest
    valid keys."""
    known = book_parameters(root)
    unknown = [k for k in params if k not in known]
    if not unknown:
        return
    parts, lost = [], False
    for key in unknown:
        near = difflib.get_close_matches(str(key), sorted(known), n=3, cutoff=0.6)
        lost = lost or not near
        parts.append(f"{key!r}" + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else " (no close match)"))
    toc = (Path(root) if root is not None else repo_root()) / "_toc.yml"
    raise ParameterError(
        f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(parts)}; no chapter in {toc} declares "
        f"{'them' if len(unknown) > 1 else 'it'} in its parameters cell"
        + (f"; the valid keys are {', '.join(sorted(known))}" if lost else "")
    )


def parse_overrides(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs -> {NAME: value}; VALUE is read as YAML like the profiles (``2``, ``null``, ``[a, b]``)."""
    out: dict[str, Any] = {}
    for name, value in pairs or []:
        try:
            out[name] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ParameterError(f"-p {name} {value!r}: the value is not valid YAML ({exc})") from exc
    return out


def load_profile(profile: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read ``book/params/<profile>.yaml``; a missing or malformed profile raises naming the file.

    Every key must be a parameter some chapter of ``_toc.yml`` declares: a misspelt key would be
    injected, ignored, and the chapter would silently run on its default instead
    (:class:`ParameterError` names the key and the nearest valid ones).
    """
    base = Path(root or repo_root())
    path = base / "book" / "params" / f"{profile}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no such parameter profile; known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a profile must be a mapping of parameter names to values")
    check_parameters(data, path, base)
    named = data.get("profile", profile)
    if named != profile:
        # a copied profile that still names its original would run in (and overwrite) the original's run folder
        raise ParameterError(f"{path}: says 'profile: {named}', but a profile is named by its file ({profile}): its chapters "
                             f"would read and write data/runs/{named}/; set 'profile: {profile}' or drop the key")
    return data


def train_bf16(precision: str) -> bool | str:
    """The training preset's ``bf16`` setting for a chapter's ``train_precision``: ``auto`` (bf16 autocast only
    where the CPU or GPU runs it natively), ``fp32`` (the same arithmetic on every CPU: a small network
    trained for seconds in bf16 may order nothing, see book/params/smoke.yaml) or ``bf16``."""
    try:
        return TRAIN_PRECISIONS[str(precision)]
    except KeyError:
        raise ParameterError(f"train_precision {precision!r}: expected one of {sorted(TRAIN_PRECISIONS)}") from None
