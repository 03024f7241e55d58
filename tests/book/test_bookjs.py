"""deepcycle_core.book.bookjs: the book serves BokehJS/Panel from its own _static, never from a CDN."""

from __future__ import annotations

from pathlib import Path

import bokeh
import panel

from deepcycle_core.book import bookjs


def test_vendor_js_copies_versioned_libraries_and_panel_css(tmp_path: Path) -> None:
    dest = tmp_path / "vendor"
    (dest).mkdir()
    (dest / "bokeh-0.0.1.min.js").write_text("stale")  # an earlier build's version must go
    names = bookjs.vendor_js(dest)
    assert names[0] == f"bokeh-{bokeh.__version__}.min.js"  # BokehJS first: the plugins need it
    assert names[-1] == f"panel-{panel.__version__}.min.js"
    assert sorted(p.name for p in dest.glob("*.js")) == sorted(names)
    src = Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.min.js"
    assert (dest / names[0]).read_bytes() == src.read_bytes()
    # Panel's stylesheets that figures link to are there too.
    assert (dest / "panel" / "dist" / "css" / "loading.css").is_file()
    assert (dest / "panel" / "dist" / "bundled" / "theme" / "default.css").is_file()
    # A second call copies nothing new and keeps the same files.
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()}
    assert bookjs.vendor_js(dest) == names
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file()} == before


def test_localise_cdn_links_points_panel_css_at_static() -> None:
    html = ('<script>{"stylesheets":["https://cdn.holoviz.org/panel/1.9.4/dist/css/loading.css?v=1.9.4",'
            '"https://cdn.holoviz.org/panel/1.9.4/dist/bundled/theme/default.css"]}</script>')
    out = bookjs.localise_cdn_links(html, "../_static/")
    assert "cdn.holoviz.org" not in out
    assert '"../_static/vendor/panel/dist/css/loading.css?v=1.9.4"' in out
    assert '"../_static/vendor/panel/dist/bundled/theme/default.css"' in out


def test_vendor_mathjax_copies_the_component_and_what_it_loads(tmp_path: Path) -> None:
    src = bookjs.mathjax_source()
    assert src is not None, "sphinx-mathjax-offline (requirements-book.txt) provides MathJax for offline pages"
    path = bookjs.vendor_mathjax(tmp_path)
    assert path == "mathjax/tex-mml-chtml.js"
    assert (tmp_path / path).read_bytes() == (src / "tex-mml-chtml.js").read_bytes()
    assert list((tmp_path / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))  # CommonHTML fonts
    assert (tmp_path / "mathjax" / "input" / "tex" / "extensions" / "ams.js").is_file()
    assert not (tmp_path / "mathjax" / "tex-svg-full.js").exists()  # only what the pages use
