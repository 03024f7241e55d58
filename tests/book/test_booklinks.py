"""The book's repository/launch buttons come from one setting, and none appear when it is unset."""

from __future__ import annotations

import pytest

from deepcycle_core.book import booklinks

#: What _config.yml and Jupyter Book's defaults hand to the theme (JB fills in its own repository URL).
FROM_CONFIG = {
    "repository_url": "https://github.com/executablebooks/jupyter-book",
    "use_repository_button": True,
    "use_issues_button": True,
    "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": "https://mybinder.org",
                       "jupyterhub_url": "https://hub.example.org", "thebe": False},
}


def test_unset_means_no_buttons():
    opts = booklinks.theme_options(FROM_CONFIG, env={})
    assert opts["repository_url"] == ""
    assert not opts["use_repository_button"] and not opts["use_issues_button"] and not opts["use_edit_page_button"]
    assert not any(opts["launch_buttons"].get(k) for k in booklinks.LAUNCH_KEYS)
    assert FROM_CONFIG["launch_buttons"]["jupyterhub_url"] == "https://hub.example.org"  # input left alone


def test_one_setting_drives_repository_and_binder():
    opts = booklinks.theme_options(FROM_CONFIG, env={booklinks.ENV_REPOSITORY: "https://github.com/me/deepcycle-book/"})
    assert opts["repository_url"] == "https://github.com/me/deepcycle-book"
    assert opts["repository_branch"] == "main" and opts["use_repository_button"] and opts["use_issues_button"]
    assert opts["launch_buttons"]["binderhub_url"] == booklinks.DEFAULT_BINDERHUB
    assert "jupyterhub_url" not in opts["launch_buttons"]  # no hub named: no hub button
    assert opts["launch_buttons"]["notebook_interface"] == "jupyterlab"


def test_jupyterhub_and_branch():
    env = {booklinks.ENV_REPOSITORY: "https://github.com/me/deepcycle-book",
           booklinks.ENV_JUPYTERHUB: "https://hub.uni.example/", booklinks.ENV_BRANCH: "stable"}
    opts = booklinks.theme_options({}, env=env)
    assert opts["launch_buttons"]["jupyterhub_url"] == "https://hub.uni.example"
    assert opts["repository_branch"] == "stable"


@pytest.mark.parametrize("bad", ["deepcycle-book", "github.com/me/repo", "https://github.com/me"])
def test_a_malformed_address_is_refused(bad):
    with pytest.raises(ValueError, match=booklinks.ENV_REPOSITORY):
        booklinks.theme_options({}, env={booklinks.ENV_REPOSITORY: bad})
