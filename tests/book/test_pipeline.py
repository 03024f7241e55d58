"""deepcycle_core.book.pipeline: chapters run in toc order under a profile, failures name chapter/cell/error."""

from __future__ import annotations

import argparse
import ast
import json
import logging
from pathlib import Path

import nbformat
import pytest

from deepcycle_core.book import pipeline, profiles
from deepcycle_core.data import runs


def _notebook(path: Path, *sources: str, params: str = 'profile = "default"\nseed = 0\nscale = 1') -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"),
                nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A throwaway project: two chapters where the second reads what the first wrote, one toc, two profiles."""
    (tmp_path / "book" / "params").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/02_second\n  - file: book/01_first\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# intro\n")
    (tmp_path / "book" / "params" / "default.yaml").write_text("profile: default\nseed: 0\nscale: 3\n")
    (tmp_path / "book" / "params" / "smoke.yaml").write_text("profile: smoke\nseed: 1\nscale: 5\nother_key: 1\n")
    # The toc order (02 before 01) is what counts, not the file names.
    _notebook(tmp_path / "book" / "02_second.ipynb",
              "import json, pathlib\nout = pathlib.Path('order.json')\n"
              "out.write_text(json.dumps({'first': scale * 2, 'profile': profile}))\nprint(scale * 2)")
    # other_key (in the smoke profile) is declared by one chapter only: still a valid profile key.
    _notebook(tmp_path / "book" / "01_first.ipynb",
              "import json, pathlib\nd = json.loads(pathlib.Path('order.json').read_text())\n"
              "assert d['profile'] == profile\nprint(d['first'] + scale)",
              params='profile = "default"\nseed = 0\nscale = 1\nother_key = 0  # used here only')
    return tmp_path


def _outputs(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_toc_order_and_selection(book: Path) -> None:
    chapters = profiles.toc_chapters(book)
    assert [c.stem for c in chapters] == ["02_second", "01_first"]  # intro.md is not executed
    assert [c.stem for c in profiles.select_chapters(chapters, ["01_first", "02"])] == ["02_second", "01_first"]
    with pytest.raises(ValueError, match="unknown chapter 'nope'.*02_second, 01_first"):
        profiles.select_chapters(chapters, ["nope"])


def test_default_profile_runs_in_order_and_writes_in_place(book: Path) -> None:
    done = pipeline.run_book("default", root=book, progress=False)
    assert [r.name for r in done] == ["02_second", "01_first"]
    assert [r.output for r in done] == [book / "book" / "02_second.ipynb", book / "book" / "01_first.ipynb"]
    # The injected profile (scale 3) reached both chapters, and the second read what the first wrote.
    assert "6\n" in _outputs(book / "book" / "02_second.ipynb")
    assert "9\n" in _outputs(book / "book" / "01_first.ipynb")
    meta = json.loads((book / "book" / "01_first.ipynb").read_text())["metadata"]["papermill"]
    assert meta["input_path"] == "book/01_first.ipynb"  # relative, no machine-specific paths
    assert "start_time" not in meta and "duration" not in meta
    cells = json.loads((book / "book" / "01_first.ipynb").read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0]["metadata"]["tags"]
    assert "scale = 3" in "".join(injected[0]["source"])


def test_other_profile_never_overwrites_the_book(book: Path) -> None:
    before = (book / "book" / "01_first.ipynb").read_bytes()
    done = pipeline.run_book("smoke", ["01_first", "02_second"], root=book, progress=False)
    out = book / "data" / "runs" / "smoke" / "notebooks"
    assert [r.output for r in done] == [out / "02_second.ipynb", out / "01_first.ipynb"]
    assert "15\n" in _outputs(out / "01_first.ipynb")  # 5 * 2 + 5
    assert (book / "book" / "01_first.ipynb").read_bytes() == before


def test_failure_names_chapter_cell_and_error_and_stops(book: Path) -> None:
    _notebook(book / "book" / "02_second.ipynb", "x = 1", "raise ValueError('ring has too few cells')")
    before = (book / "book" / "02_second.ipynb").read_bytes()
    with pytest.raises(pipeline.ChapterError) as info:
        pipeline.run_book("default", root=book, progress=False)
    msg = str(info.value)
    assert "chapter 02_second (book/02_second.ipynb)" in msg
    assert "raise ValueError" in msg and "In [" in msg
    assert "ValueError: ring has too few cells" in msg
    assert info.value.notebook == book / "data" / "runs" / "default" / "notebooks" / "02_second.ipynb"
    # The failed run is kept in the run folder; the book's chapter is untouched; 01 never ran.
    assert info.value.notebook.exists()
    assert (book / "book" / "02_second.ipynb").read_bytes() == before
    assert not (book / "data" / "runs" / "default" / "notebooks" / "01_first.ipynb").exists()


def test_unknown_profile_and_missing_toc_entry(book: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml: no such parameter profile; known profiles: \['default', 'smoke'\]"):
        pipeline.run_book("nope", root=book, progress=False)
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/03_missing\n")
    with pytest.raises(FileNotFoundError, match="entry 'book/03_missing' has no file"):
        profiles.toc_chapters(book)


def test_cli_reports_failure_with_exit_code(book: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # The sub-command alone (the full `deepcycle` parser imports every stage, torch included).
    parser = argparse.ArgumentParser(prog="deepcycle")
    pipeline.register_cli(parser.add_subparsers())
    monkeypatch.setenv("DEEPCYCLE_ROOT", str(book))
    _notebook(book / "book" / "02_second.ipynb", "raise KeyError('train_epochs')")
    args = parser.parse_args(["run", "--profile", "default", "--chapters", "02_second", "--quiet"])
    assert args.func(args) == 1
    assert "chapter 02_second" in capsys.readouterr().err
    args = parser.parse_args(["run", "--profile", "nope"])
    with pytest.raises(FileNotFoundError, match="no such parameter profile"):  # main() turns it into exit 2
        args.func(args)


def _untouched(book: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((book / "book").glob("*.ipynb"))}


def test_misspelt_profile_key_fails_before_any_chapter_runs(book: Path) -> None:
    (book / "book" / "params" / "typo.yaml").write_text("profile: typo\nseed: 0\nscael: 4\n")
    before = _untouched(book)
    with pytest.raises(profiles.ParameterError) as info:
        pipeline.run_book("typo", root=book, progress=False)
    msg = str(info.value)
    assert "typo.yaml" in msg and "unknown parameter 'scael' (did you mean 'scale'?)" in msg
    assert not (book / "data").exists() and _untouched(book) == before  # nothing ran, nothing written
    with pytest.raises(profiles.ParameterError, match=r"typo\.yaml: unknown parameter 'scael'"):
        profiles.load_profile("typo", root=book)


def test_override_keys_checked_before_any_chapter_runs_then_applied(book: Path) -> None:
    before = _untouched(book)
    with pytest.raises(profiles.ParameterError, match=r"-p override: unknown parameter 'sclae' \(did you mean 'scale'\?\)"):
        pipeline.run_book("default", root=book, progress=False, overrides={"sclae": 4})
    with pytest.raises(profiles.ParameterError, match="'zzz' \\(no close match\\).*valid keys are other_key, profile, scale, seed"):
        pipeline.run_book("default", root=book, progress=False, overrides={"zzz": 4})
    assert not (book / "data").exists() and _untouched(book) == before
    pipeline.run_book("smoke", ["02_second"], root=book, progress=False, overrides={"scale": 4})
    assert "8\n" in _outputs(book / "data" / "runs" / "smoke" / "notebooks" / "02_second.ipynb")


def test_cli_param_overrides(book: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser(prog="deepcycle")
    pipeline.register_cli(parser.add_subparsers())
    monkeypatch.setenv("DEEPCYCLE_ROOT", str(book))
    args = parser.parse_args(["run", "--profile", "smoke", "-p", "scael", "4", "--quiet"])
    with pytest.raises(profiles.ParameterError, match="'scael' \\(did you mean 'scale'\\?\\)"):  # main() exits 2
        args.func(args)
    assert not (book / "data").exists()
    args = parser.parse_args(["run", "--profile", "smoke", "--chapters", "02", "-p", "scale", "7", "--quiet"])
    assert args.func(args) == 0
    assert "14\n" in _outputs(book / "data" / "runs" / "smoke" / "notebooks" / "02_second.ipynb")
    assert profiles.parse_overrides([["a", "2"], ["b", "null"], ["c", "[x, y]"], ["d", "text"]]) == {
        "a": 2, "b": None, "c": ["x", "y"], "d": "text"}


def test_the_books_profiles_name_only_declared_parameters() -> None:
    root = Path(__file__).resolve().parents[2]
    for profile in sorted(p.stem for p in (root / "book" / "params").glob("*.yaml")):
        assert profiles.load_profile(profile, root=root)
    known = profiles.book_parameters(root)
    assert {"train_epochs", "sim_cells", "val_methods", "profile", "seed"} <= known


def _injected(path: Path) -> dict[str, object]:
    """The names and values papermill's injected parameters cell of an executed chapter assigns, in order."""
    cells = json.loads(path.read_text())["cells"]
    (cell,) = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    tree = ast.parse("".join(cell["source"]))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}


def test_each_chapter_is_given_only_the_parameters_it_declares(book: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The smoke profile sets other_key, which only 01_first declares.
    with caplog.at_level(logging.INFO, logger="papermill"):
        pipeline.run_book("smoke", root=book, progress=False)
    out = book / "data" / "runs" / "smoke" / "notebooks"
    assert _injected(out / "02_second.ipynb") == {"profile": "smoke", "seed": 1, "scale": 5}
    assert _injected(out / "01_first.ipynb") == {"profile": "smoke", "seed": 1, "scale": 5, "other_key": 1}
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("papermill")]
    assert any("Input Notebook" in m for m in messages)  # papermill's log was captured ...
    assert not any("Passed unknown parameter" in m for m in messages)  # ... and it saw no undeclared key
    assert profiles.chapter_inputs(book / "book" / "02_second.ipynb", {"other_key": 1, "scale": 2, "profile": "x"}) == {
        "scale": 2, "profile": "x"}


def test_the_books_chapters_declare_the_profile_and_get_their_own_keys() -> None:
    root = Path(__file__).resolve().parents[2]
    params = profiles.load_profile(pipeline.BOOK_PROFILE, root=root)
    for chapter in profiles.toc_chapters(root):
        declared = profiles.chapter_parameters(chapter)
        assert set(profiles.ALWAYS_VALID) <= set(declared), chapter.name  # run_book's profile name reaches it
        given = profiles.chapter_inputs(chapter, params)
        assert set(given) <= set(declared) and len(given) < len(params), chapter.name


def test_missing_book_extra_is_named_before_any_chapter_runs(book: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # papermill and ipykernel are the package's book extra, not runtime dependencies.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "papermill" else real(name, *a))
    before = _untouched(book)
    with pytest.raises(pipeline.MissingBookExtra, match=r"deepcycle run needs papermill, from the package's 'book' extra.*"
                                                         r"pip install -e '\.\[book\]'"):
        pipeline.run_book("default", root=book, progress=False)
    assert not (book / "data").exists() and _untouched(book) == before
    assert issubclass(pipeline.MissingBookExtra, RuntimeError)  # `deepcycle` prints it and exits 2
    pipeline.require_book_extra(("json",))  # present: no error
