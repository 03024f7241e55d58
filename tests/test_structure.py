"""One home for each rule: the package's source says each name, file name and write pattern once.

These checks read the modules of ``deepcycle_core`` as syntax trees (nothing is imported, so they are
quick and torch-free): a rule that gets a second home fails here, naming the module and the line.
Comments and docstrings may mention anything; only code counts.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from deepcycle_core.data.fucci import CLASS_NAMES, PHASES
from deepcycle_core.data.runs import RunDir

PACKAGE = Path(__file__).resolve().parents[1] / "deepcycle_core"
#: Every implementation module of every wing (the wings' lazy faces are checked in test_architecture.py).
MODULES = sorted(p for p in PACKAGE.glob("*/*.py") if p.name != "__init__.py")

#: Every file name of a run folder (``RunDir.*_NAME``): runs.py is their one home.
RUN_FILE_NAMES = {v for k, v in vars(RunDir).items() if k.endswith("_NAME") and isinstance(v, str)}

#: The only modules that may rename files: the atomic-write helper, and the store, which writes a
#: whole folder under a temporary name and renames the folder (a different pattern, see StoreWriter).
RENAMES_ALLOWED = {"os.replace": {"atomic.py"}, "os.rename": {"atomic.py", "store.py"}}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (module, classes, functions): prose, not code."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.add(id(first.value))
    return out


def _strings(tree: ast.Module) -> list[ast.Constant]:
    """Every string constant of the code (f-string parts included), docstrings left out."""
    skip = _docstrings(tree)
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def _module_containers(tree: ast.Module) -> list[tuple[int, set[str]]]:
    """(line, string constants) of each tuple/list/set/dict assigned at module level."""
    out = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for sub in ast.walk(node.value):
                if isinstance(sub, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                    words = {n.value for n in ast.walk(sub) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                    out.append((node.lineno, words))
    return out


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_the_package_is_found():
    names = {p.name for p in MODULES}
    assert {"atomic.py", "fucci.py", "runs.py", "growth.py", "trajectory.py"} <= names
    assert len(names) == len(MODULES), "two wings hold modules of the same name: the rules below key on file names"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fucci_classes_and_phases_are_defined_only_in_fucci(path):
    """No module but fucci.py defines a table of the FUCCI class names or of the phase names."""
    if path.name == "fucci.py":
        return
    for line, words in _module_containers(_tree(path)):
        assert "low/low" not in words and not set(CLASS_NAMES) <= words, (
            f"{path.name}:{line} defines the FUCCI class names; import them from deepcycle_core.data.fucci")
        assert len(words & set(PHASES)) < 2, (
            f"{path.name}:{line} defines phase names; import PHASES from deepcycle_core.data.fucci")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_run_folder_file_names_are_spelled_only_in_runs(path):
    """No module but runs.py spells a run folder's file name; the others use RunDir and its *_NAME."""
    if path.name == "runs.py":
        return
    bad = [f"{path.name}:{n.lineno} {n.value!r}" for n in _strings(_tree(path)) if n.value in RUN_FILE_NAMES]
    assert not bad, f"run-folder file names spelled outside runs.py (use RunDir): {bad}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_atomic_writes_go_through_the_atomic_module(path):
    """os.replace (and os.rename, for the store's folder) only where allowed; no hand-made temporary names."""
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in RENAMES_ALLOWED:
                assert path.name in RENAMES_ALLOWED[name], (
                    f"{path.name}:{node.lineno} calls {name}; write through deepcycle_core.data.atomic")
        if isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil"):
            assert not {a.name for a in node.names} & {"replace", "rename", "move"}, f"{path.name}:{node.lineno}"
    if path.name != "atomic.py":
        bad = [f"{path.name}:{n.lineno} {n.value!r}" for n in _strings(tree) if ".tmp" in n.value]
        assert not bad, f"hand-made temporary names (use deepcycle_core.data.atomic.temporary_name): {bad}"


def test_the_atomic_module_needs_only_the_standard_library():
    """Every stage uses it, the torch-free ones included."""
    for node in ast.walk(_tree(PACKAGE / "data" / "atomic.py")):
        if isinstance(node, ast.Import):
            roots = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]} if node.level == 0 else {"<relative>"}
        else:
            continue
        assert roots <= set(sys.stdlib_module_names) | {"__future__"}, f"atomic.py imports {roots}"


#: Where each formula may be called. The simulator samples its founders' ages from the steady-state
#: age density itself: that is the simulated world's truth, which must not move with the ERA read-out
#: (growth.era_age_fraction) that the validation judges against it. The DNA-content read-out works
#: in log2 stain units (2N -> 4N is one unit), which is no age formula.
FORMULA_HOMES = {"log2": {"growth.py", "population.py", "dna_content.py"}, "polyfit": {"growth.py"}}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_era_and_doubling_time_formulas_have_one_home(path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func).rsplit(".", 1)[-1]
            if name in FORMULA_HOMES:
                assert path.name in FORMULA_HOMES[name], (
                    f"{path.name}:{node.lineno} calls {name}: use data.growth.era_age_fraction / growth_fit / "
                    "doubling_time_from_counts")


def _module_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names defined by def/class/assignment, names bound by imports) at module level."""
    defined, imported = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, imported


def _all_of(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_module_says_what_it_exports(path):
    """``__all__`` exists, names only what the module has, and lists every public name it defines."""
    tree = _tree(path)
    names = _all_of(tree)
    assert names is not None, f"{path.name} has no __all__"
    assert len(names) == len(set(names)), f"{path.name}: __all__ repeats a name"
    defined, imported = _module_level_names(tree)
    assert not set(names) - defined - imported, f"{path.name}: __all__ names what it lacks"
    public = {n for n in defined if not n.startswith("_")}
    assert public <= set(names), f"{path.name}: public but not in __all__: {sorted(public - set(names))}"
