"""Offline JavaScript for the rendered book: serve BokehJS, Panel and MathJax once from ``_static``.

By default HoloViews/Panel load BokehJS from a CDN and Panel's figures link their stylesheets
from the CDN too, so a reader without internet (or the test browser) sees empty plots, while
inlining the libraries costs ~3 MB in every page. Instead the build copies the JavaScript and
CSS that ship inside the installed ``bokeh`` and ``panel`` wheels into ``book/_static/vendor/``
(git-ignored: the wheels are the one source, so the versions always match the Python side that
wrote the figures), lists the scripts in every page head, and points the figures' stylesheet
links at the local copies. This module is a Sphinx extension (``sphinx: extra_extensions`` in
``_config.yml``), so a plain ``jupyter-book build .`` does all of it.

Equations need MathJax, which Sphinx also takes from a CDN by default; the MathJax 3 files come from
the ``sphinx-mathjax-offline`` wheel (pinned in requirements-book.txt), of which only the CommonHTML
component, its fonts and the on-demand TeX extensions are copied (~2.5 MB, not the wheel's 24 MB).

In the notebooks, :func:`setup_holoviews` loads the Bokeh backend; the loader script it emits
(which fetches from the CDN) is only needed by a live kernel, and the book leaves it out of the
HTML (see ``nb_mime_priority_overrides`` in ``_config.yml``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_write

__all__ = [
    "VENDOR_DIR",
    "PANEL_CDN_RE",
    "PANEL_CSS_PARTS",
    "MATHJAX_ENTRY",
    "MATHJAX_PARTS",
    "js_sources",
    "vendor_js",
    "mathjax_source",
    "vendor_mathjax",
    "localise_cdn_links",
    "setup_holoviews",
    "setup",
]

#: Where the vendored files go, relative to the project root; ``book/_static`` is a static path.
VENDOR_DIR = Path("book") / "_static" / "vendor"
#: Panel's CDN distribution folder, as written into a figure's stylesheet links (any version).
PANEL_CDN_RE = re.compile(r"https://cdn\.holoviz\.org/panel/[^/\"'\s]+/dist/")
#: Parts of Panel's ``dist`` folder that figures link to (stylesheets and the spinner images they use).
PANEL_CSS_PARTS = ("css", "bundled/theme", "assets")
#: MathJax 3: the component Sphinx loads, plus what it fetches on demand (fonts, TeX extensions, menu).
MATHJAX_ENTRY = "tex-mml-chtml.js"
MATHJAX_PARTS = ("output/chtml", "input/tex/extensions", "ui", "a11y")


def js_sources() -> list[tuple[Path, str]]:
    """(installed file, served name) for every library a HoloViews/Panel figure needs, in load order.

    The served names carry the version so a browser cache never mixes releases.
    """
    import bokeh
    import panel

    bk_dir = Path(bokeh.__file__).parent / "server" / "static" / "js"
    pn_dir = Path(panel.__file__).parent / "dist"
    bkv, pnv = bokeh.__version__, panel.__version__
    files = [
        (bk_dir / "bokeh.min.js", f"bokeh-{bkv}.min.js"),
        (bk_dir / "bokeh-gl.min.js", f"bokeh-gl-{bkv}.min.js"),
        (bk_dir / "bokeh-widgets.min.js", f"bokeh-widgets-{bkv}.min.js"),
        (bk_dir / "bokeh-tables.min.js", f"bokeh-tables-{bkv}.min.js"),
        (pn_dir / "panel.min.js", f"panel-{pnv}.min.js"),
    ]
    missing = [str(src) for src, _ in files if not src.is_file()]
    if missing:
        raise FileNotFoundError(f"BokehJS/Panel JavaScript missing from the installed packages: {missing}")
    return files


def _copy_if_changed(src: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == src.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda tmp: shutil.copyfile(src, tmp))


def vendor_js(dest: str | os.PathLike) -> list[str]:
    """Copy the libraries and Panel's stylesheets into ``dest`` and return the script names in load order.

    Copies only what changed, so a rebuild is quick; scripts of other versions left by an earlier
    build are removed so the output holds one copy. Panel's CSS goes to ``dest/panel/dist/``.
    """
    import panel

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for src, name in js_sources():
        _copy_if_changed(src, dest / name)
        names.append(name)
    for old in dest.glob("*.js"):
        if old.name not in names:
            old.unlink()
    pn_dist = Path(panel.__file__).parent / "dist"
    for part in PANEL_CSS_PARTS:
        for src in (pn_dist / part).rglob("*"):
            if src.is_file() and src.suffix in {".css", ".svg"}:
                _copy_if_changed(src, dest / "panel" / "dist" / src.relative_to(pn_dist))
    return names


def mathjax_source() -> Path | None:
    """The MathJax 3 folder inside the installed ``sphinx-mathjax-offline`` wheel, or None if absent."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return folder if (folder / MATHJAX_ENTRY).is_file() else None


def vendor_mathjax(dest: str | os.PathLike) -> str | None:
    """Copy MathJax's CommonHTML component and what it loads into ``dest/mathjax``; return its path there."""
    src = mathjax_source()
    if src is None:
        return None
    dest = Path(dest) / "mathjax"
    _copy_if_changed(src / MATHJAX_ENTRY, dest / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        for f in (src / part).rglob("*"):
            if f.is_file():
                _copy_if_changed(f, dest / f.relative_to(src))
    return f"mathjax/{MATHJAX_ENTRY}"


def localise_cdn_links(html: str, static_prefix: str) -> str:
    """Point Panel's CDN stylesheet links in ``html`` at the vendored copy under ``static_prefix``.

    ``static_prefix`` is the page-relative URL of ``_static/`` (e.g. ``../_static/``).
    """
    return PANEL_CDN_RE.sub(f"{static_prefix}vendor/panel/dist/", html)


def setup_holoviews(**options: Any) -> None:
    """Load HoloViews' Bokeh backend the same way in every chapter.

    Resources are not inlined (that would put ~3 MB of JavaScript into every notebook and page);
    a live kernel loads them from the CDN, the rendered book from its own ``_static``.  With
    ``inline=True`` (a live notebook with no internet) Panel's stylesheets are inlined too, since
    otherwise the figures still link them from the CDN.
    """
    import holoviews as hv

    options.setdefault("logo", False)
    options.setdefault("inline", False)
    hv.extension("bokeh", **options)
    if options["inline"]:
        _inline_panel_css()


def _inline_css_hook(viewable: Any, root: Any) -> None:
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets

    for model in root.select({"type": UIElement}):
        patch_inline_stylesheets(model)


def _inline_panel_css() -> None:
    """Make HoloViews figures in a live notebook carry Panel's stylesheets instead of CDN links.

    Panel inlines them only for objects it displays itself (``pn.config.inline``); HoloViews' own
    display path renders through Panel but skips that step, so offline the notebook logs failed
    stylesheet loads.  A Panel pre-processing hook (run on every rendered root) does the same step.
    """
    import panel as pn
    from panel.viewable import Viewable

    pn.config.inline = True
    hooks = getattr(Viewable, "_preprocessing_hooks", None)
    if hooks is not None and _inline_css_hook not in hooks:
        hooks.append(_inline_css_hook)


def _on_page_context(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    # sphinx-thebe registers its inline configuration script once per read pass, so a page can carry
    # two identical ``const THEBE_JS_URL`` scripts, and the second throws a SyntaxError: keep one.
    scripts = context.get("script_files")
    if scripts:
        seen: set[tuple[str, str]] = set()
        unique = []
        for js in scripts:
            # Inline scripts are registered with filename None or '' depending on the code path.
            attrs = getattr(js, "attributes", {}) or {}
            key = (str(getattr(js, "filename", js) or ""), repr(sorted(attrs.items())))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    body = context.get("body")
    if body and "cdn.holoviz.org" in body:
        prefix = context["pathto"]("_static/", 1)
        context["body"] = localise_cdn_links(body, prefix if prefix.endswith("/") else prefix + "/")


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point: vendor the files, add the scripts to every page, localise links.

    The copy happens here, at extension load, because Sphinx drops ``html_static_path`` entries
    that do not exist yet when the configuration is validated.
    """
    vendor = Path(app.srcdir) / VENDOR_DIR
    for name in vendor_js(vendor):
        # Plain blocking scripts in <head>: BokehJS must exist before a figure's inline script runs.
        app.add_js_file(f"vendor/{name}", priority=400)
    mathjax = vendor_mathjax(vendor)
    if mathjax is not None:
        app.config.mathjax_path = f"vendor/{mathjax}"
    else:  # still builds, but equations then need the CDN: say so
        from sphinx.util import logging as sphinx_logging

        sphinx_logging.getLogger(__name__).info(
            "deepcycle_core.book.bookjs: sphinx-mathjax-offline is not installed; equations load MathJax from its CDN"
        )
    app.connect("html-page-context", _on_page_context, priority=900)  # after the theme adds its scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
