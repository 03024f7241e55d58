"""The book's repository and launch buttons, from one setting: ``DEEPCYCLE_REPOSITORY_URL``.

Why: a placeholder address in ``_config.yml`` gives every reader broken buttons (a repository
that does not exist, a JupyterHub at hub.example.org), and a fork must edit several keys to fix
them. Here one environment variable at build time drives all of them:

* ``DEEPCYCLE_REPOSITORY_URL`` (e.g. ``https://github.com/you/deepcycle-book``): the repository
  and issues buttons, and a Binder launch button (mybinder.org, or ``DEEPCYCLE_BINDERHUB_URL``);
* ``DEEPCYCLE_JUPYTERHUB_URL`` (optional, e.g. ``https://hub.your-university.org``): also a
  JupyterHub button, which pulls the repository into the reader's server with nbgitpuller;
* ``DEEPCYCLE_REPOSITORY_BRANCH`` (optional, default ``main``).

Unset (the default): no repository, issues or launch buttons at all, whatever ``_config.yml``
says, so the book never shows a broken one. This module is a Sphinx extension
(``sphinx: extra_extensions`` in ``_config.yml``).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

__all__ = [
    "DEFAULT_BINDERHUB",
    "ENV_BINDERHUB",
    "ENV_BRANCH",
    "ENV_JUPYTERHUB",
    "ENV_REPOSITORY",
    "LAUNCH_KEYS",
    "setup",
    "theme_options",
]

ENV_REPOSITORY = "DEEPCYCLE_REPOSITORY_URL"
ENV_JUPYTERHUB = "DEEPCYCLE_JUPYTERHUB_URL"
ENV_BINDERHUB = "DEEPCYCLE_BINDERHUB_URL"
ENV_BRANCH = "DEEPCYCLE_REPOSITORY_BRANCH"
#: Where Binder launches by default when a repository is set.
DEFAULT_BINDERHUB = "https://mybinder.org"
#: Launch services sphinx-book-theme knows; all are cleared when no repository is set.
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")


def theme_options(current: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``html_theme_options`` with the repository and launch buttons set from ``env`` (default: os.environ)."""
    env = os.environ if env is None else env
    opts = dict(current)
    launch = dict(opts.get("launch_buttons") or {})
    repo = env.get(ENV_REPOSITORY, "").strip().rstrip("/")
    if not repo:
        for key in LAUNCH_KEYS:
            launch.pop(key, None)
        launch["thebe"] = False
        opts.update(repository_url="", use_repository_button=False, use_issues_button=False,
                    use_edit_page_button=False, launch_buttons=launch)
        return opts
    if not repo.startswith(("https://", "http://")) or repo.count("/") < 4:
        raise ValueError(f"{ENV_REPOSITORY}={repo!r}: expected the repository's web address, "
                         "e.g. https://github.com/<owner>/<repository>")
    launch.setdefault("notebook_interface", "jupyterlab")
    launch["binderhub_url"] = env.get(ENV_BINDERHUB, "").strip().rstrip("/") or DEFAULT_BINDERHUB
    hub = env.get(ENV_JUPYTERHUB, "").strip().rstrip("/")
    if hub:
        launch["jupyterhub_url"] = hub
    else:
        launch.pop("jupyterhub_url", None)
    opts.update(repository_url=repo, repository_branch=env.get(ENV_BRANCH, "").strip() or "main",
                path_to_docs="", use_repository_button=True, use_issues_button=True, launch_buttons=launch)
    return opts


def _on_config_inited(app: Any, config: Any) -> None:
    config.html_theme_options = theme_options(config.html_theme_options or {})


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point: rewrite the theme's button options before the theme reads them."""
    app.connect("config-inited", _on_config_inited, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
