"""The house plan, as tests: wings in data-flow order, imports that run downstream, no circle, light faces.

``deepcycle_core`` is a few wings (``deepcycle_core.WINGS``), each a folder a reader can name. These
checks read the modules as syntax trees (every import counts, the ones inside functions too), so a
module placed at the root, an import that runs upstream or a circle fails here naming the file and the
line. The faces (each wing's ``__init__``) are checked by importing them in a fresh interpreter: a
wing's face must load none of its modules, and the wings that run no network must never load torch.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import deepcycle_core

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deepcycle_core"
WINGS = deepcycle_core.WINGS
MODULES = sorted(p for p in PACKAGE.glob("*/*.py"))
#: The wing whose modules may import torch at module level (training and the model); every other wing,
#: and the inference modules of this one, stay torch-free at import.
NETWORK_WING = "net"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved, at any depth.
    ``from X import name`` counts as an import of ``X.name`` when that is a module of the package."""
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else base))
    return [(line, name) for line, name in out if name == "deepcycle_core" or name.startswith("deepcycle_core.")]


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _wing_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def test_nothing_at_the_root_but_the_face_and_the_command_line():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(WINGS), "every folder of the package is a wing listed in deepcycle_core.WINGS"
    for wing in WINGS:
        assert (PACKAGE / wing / "__init__.py").is_file(), f"{wing}/ has no __init__.py (its face)"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_imports_between_wings_run_downstream(path):
    """A module imports from its own wing or from a wing before it in data-flow order, never after."""
    mine = WINGS.index(path.parent.name)
    for line, name in _imports(path):
        other = _wing_of(name)
        if other is not None:
            assert WINGS.index(other) <= mine, (
                f"{path.relative_to(ROOT)}:{line} imports {name}: the {other} wing comes after the "
                f"{path.parent.name} wing (order: {' -> '.join(WINGS)})")


def test_no_import_circle_between_modules():
    """The module graph (every import, deferred ones included) has no cycle."""
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        me = _module_name(path)
        graph[me] = {n for _, n in _imports(path) if n != me and _is_module(n) and n != "deepcycle_core"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state and nxt in graph:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _all_of(path: Path) -> list[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


@pytest.mark.parametrize("wing", WINGS)
def test_each_face_hands_on_its_modules_public_names(wing):
    """The face lists every module of the wing, hands on only names those modules export, and each name
    resolves to the object its module defines."""
    face = importlib.import_module(f"deepcycle_core.{wing}")
    public = face._PUBLIC
    modules = sorted(p.stem for p in (PACKAGE / wing).glob("*.py") if p.name != "__init__.py")
    assert sorted(public) == modules, f"deepcycle_core.{wing}: the face's module list differs from the folder"
    for module, names in public.items():
        exported = set(_all_of(PACKAGE / wing / f"{module}.py"))
        assert set(names) <= exported, f"{wing}.{module}: the face hands on {sorted(set(names) - exported)}, not in its __all__"
        mod = importlib.import_module(f"deepcycle_core.{wing}.{module}")
        for name in names:
            assert getattr(face, name) is getattr(mod, name), f"deepcycle_core.{wing}.{name}"
    assert set(face.__all__) >= set(modules)


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json as _j, sys as _s\nprint(_j.dumps(sorted(_s.modules)))\n"
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def test_faces_are_light():
    """Importing the package and every face loads none of the wings' modules, so no torch, no Datashader."""
    mods = _modules_after("import deepcycle_core\n" + "\n".join(f"import deepcycle_core.{w}" for w in WINGS))
    loaded = sorted(m for m in mods if m.startswith("deepcycle_core.") and m.count(".") > 1)
    assert not loaded, f"the faces import modules: {loaded}"
    assert "torch" not in mods and "datashader" not in mods and "holoviews" not in mods


def test_wings_that_run_no_network_never_import_torch():
    """Every module outside the network wing (and the network wing's inference contract) imports without
    torch: scoring, plotting and the data layer run where torch is not installed."""
    names = [_module_name(p) for p in MODULES if p.name != "__init__.py" and p.parent.name != NETWORK_WING]
    names += [f"deepcycle_core.{NETWORK_WING}.{m}" for m in ("normalise", "cycle_targets", "embed")]
    mods = _modules_after("\n".join(f"import {n}" for n in names))
    assert "torch" not in mods, "one of these imports torch at module level: " + ", ".join(names)


#: The longest a function of the package may grow (lines, docstring included). The stage functions that
#: were 150-250 lines were split along their section comments; a function past this has sections of its own.
MAX_FUNCTION_LINES = 125


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_functions_stay_short_enough_to_read(path):
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines, line {n.lineno})"
            for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: split along its sections: {long}"
