"""The book's plumbing: parameter profiles, the papermill runner, offline JavaScript, launch links.

The public names below are loaded on first use (PEP 562 via ``lazy_loader``): importing this wing
imports none of its modules, so nothing heavy (torch, Datashader) is loaded before a name is used.
A name that is also a module's name is reached through its module.
"""

import lazy_loader as _lazy

#: Each module of the wing and the public names it defines and hands on.
_PUBLIC = {
    "bookjs": ["VENDOR_DIR", "PANEL_CDN_RE", "PANEL_CSS_PARTS", "MATHJAX_ENTRY", "MATHJAX_PARTS", "js_sources", "vendor_js", "mathjax_source", "vendor_mathjax", "localise_cdn_links", "setup_holoviews"],
    "booklinks": ["DEFAULT_BINDERHUB", "ENV_BINDERHUB", "ENV_BRANCH", "ENV_JUPYTERHUB", "ENV_REPOSITORY", "LAUNCH_KEYS", "theme_options"],
    "pipeline": ["BOOK_PROFILE", "MissingBookExtra", "BOOK_EXTRA", "RUN_MODULES", "require_book_extra", "ChapterError", "ChapterRun", "run_book", "build_book"],
    "profiles": ["ALWAYS_VALID", "ParameterError", "book_parameters", "chapter_inputs", "chapter_parameters", "check_parameters", "load_profile", "parse_overrides", "select_chapters", "toc_chapters"],
}

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=sorted(_PUBLIC), submod_attrs=_PUBLIC)
