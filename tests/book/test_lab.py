"""JupyterLab as a tested client: the ring draws in a live notebook and re-aggregates on zoom.

The book names two ways in: the rendered pages (``tests/test_browser.py``) and exploring the chapters
live in JupyterLab on Binder/JupyterHub, where Datashader re-aggregates every cell at each zoom. This
test covers the second one end to end, offline:

* ``jupyter lab`` from the project's environment on a free local port, with a token and throw-away
  config, data, runtime and workspace folders (nothing of the user's setup leaks in or is changed);
* headless Chromium opens a small notebook that draws the ring with :func:`deepcycle_core.plots.views.ring_view`
  on a synthetic ring written to a temporary folder, and runs it through the UI ("Run All");
* the figure is rendered by the HoloViews lab extension (``@pyviz/jupyterlab_pyviz``, from the pinned
  ``pyviz_comms`` in requirements-book.txt): its output carries HoloViews' MIME type and its Bokeh
  canvas holds drawn pixels;
* zooming (mouse-wheel events over the figure, as a reader zooms) makes the *kernel* re-aggregate: a
  new image arrives whose extent is the zoomed window, and the canvas pixels change;
* the console shows no error, and the server is stopped (its whole process group) at the end.

Screenshots go to ``_build/browser/lab_ring.png`` and ``lab_ring_zoomed.png``.

How it was checked to fail without the lab extensions: ``DEEPCYCLE_LAB_DISABLE=@pyviz/jupyterlab_pyviz``
disables them in the test's own page config (the environment stays as is); the test then fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from cdp import CHROMIUM, Chromium, Tab

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "_build" / "browser"
#: The lab extension HoloViews and Panel render through (shipped by pyviz_comms).
PYVIZ_PLUGIN = "@pyviz/jupyterlab_pyviz:plugin"
HOLOVIEWS_MIME = "application/vnd.holoviews_exec.v0+json"
#: Plugins switched off in the test's page config: the news prompt would cover the notebook.
QUIET_PLUGINS = ["@jupyterlab/apputils-extension:announcements"]
NOTEBOOK = "ring.ipynb"
N_CELLS = 200_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_ring(folder: Path) -> None:
    """A noisy ring of cells whose FUCCI colours turn once around it, and its fitted curve."""
    import pandas as pd

    rng = np.random.default_rng(0)
    p = rng.random(N_CELLS)
    a = 2 * np.pi * p
    r = 1 + 0.08 * rng.normal(size=N_CELLS)
    pd.DataFrame({
        "x2d": (r * np.cos(a)).astype(np.float32),
        "y2d": (r * np.sin(a)).astype(np.float32),
        "fucci_red": np.clip(np.sin(np.pi * p / 0.45), 0, None) * (p < 0.45),
        "fucci_green": np.clip(np.sin(np.pi * (p - 0.35) / 0.65), 0, None) * (p > 0.35),
        "class": np.where(p < 0.1, 0, np.where(p < 0.35, 1, np.where(p < 0.45, 3, 2))),
    }).to_parquet(folder / "ring.parquet")


def _write_notebook(folder: Path) -> None:
    """What a reader runs live: load the Bokeh backend, read the cells, draw the ring (a DynamicMap)."""
    import nbformat

    cells = [
        nbformat.v4.new_markdown_cell("# The ring, live\nZoom in: Datashader re-aggregates in the kernel."),
        # inline BokehJS: offline there is no CDN (the rendered book serves its own copy instead)
        nbformat.v4.new_code_cell(
            "import numpy as np\nimport pandas as pd\n\nfrom deepcycle_core import plots\n"
            "from deepcycle_core.book.bookjs import setup_holoviews\n\nsetup_holoviews(inline=True)"
        ),
        nbformat.v4.new_code_cell(
            "df = pd.read_parquet('ring.parquet')\nt = np.linspace(0, 2 * np.pi, 64, endpoint=False)\n"
            "plots.ring_view(df, 'density', np.c_[np.cos(t), np.sin(t)], origin=(1.0, 0.0), width=400, height=400)"
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / NOTEBOOK)


class Lab:
    """A running ``jupyter lab`` (its own process group) and how to reach it."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.root = tmp / "notebooks"
        self.root.mkdir()
        _write_ring(self.root)
        _write_notebook(self.root)
        config = tmp / "config"
        (config / "labconfig").mkdir(parents=True)
        disabled = QUIET_PLUGINS + [e for e in os.environ.get("DEEPCYCLE_LAB_DISABLE", "").split(",") if e]
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {name: True for name in disabled}}))
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "IPYTHONDIR": str(tmp / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            # the kernel imports the package of this checkout (what the server's environment has)
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        })
        self.log = tmp / "lab.log"
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # the default one queries PyPI: no network at run time
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        ]
        with open(self.log, "wb") as log:
            # a session of its own, so the server and its kernels are stopped together
            self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """TERM the server's process group (server and kernels), KILL what is left after 10 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # kernels outlive a server killed mid-shutdown
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test does) to run the browser tests")
    browser = Chromium(tmp_path_factory.mktemp("lab-chromium"))
    try:
        yield browser
    finally:
        browser.close()


#: The notebook panel and its kernel, as JupyterLab's application object sees them.
NOTEBOOK_STATE = """(() => {
  const app = window.jupyterapp;
  if (!app) return null;
  const w = app.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return {path: w && w.context ? w.context.path : null, kernel: kernel ? kernel.status : null,
          executed: w && w.content ? w.content.widgets.filter(c => c.model.type === 'code' && c.model.executionCount).length : 0,
          code: w && w.content ? w.content.widgets.filter(c => c.model.type === 'code').length : 0,
          pyviz: app.hasPlugin('PLUGIN') && app.isPluginActivated('PLUGIN'),
          // MIME types the notebook can render, and those of the outputs the kernel sent
          renders: w && w.content ? w.content.rendermime.mimeTypes : [],
          sent: w && w.content ? w.content.widgets.flatMap(c => c.model.type === 'code'
              ? Array.from({length: c.model.outputs.length}, (_, i) => Object.keys(c.model.outputs.get(i).data)) : []).flat() : []};
})()""".replace("PLUGIN", PYVIZ_PLUGIN)

#: The figure in the output area: its MIME type, canvases (inside Bokeh's shadow roots), drawn pixels,
#: and the image the kernel sent (extent and a checksum of its values).
FIGURE_STATE_JS = r"""(() => {
  const outputs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
  const mimes = outputs.map(o => o.getAttribute('data-mime-type')).filter(Boolean);
  const canvases = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS') canvases.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
  outputs.forEach(walk);
  let painted = 0, digest = 0;
  for (const c of canvases) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let any = false;
    for (let i = 0; i < d.length; i += 4 * 5) { if (d[i + 3]) any = true; digest = (digest * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007; }
    if (any) painted += 1;
  }
  const image = {};
  if (window.Bokeh) for (const doc of window.Bokeh.documents) for (const m of doc.all_models) {
    if (m.type === 'GlyphRenderer' && m.glyph && m.glyph.type === 'Image') {
      const data = m.data_source.data;
      const arr = data.image[0];
      let sum = 0; for (let i = 0; i < arr.length; i += 3) { if (Number.isFinite(arr[i])) sum += arr[i]; }
      Object.assign(image, {x: data.x[0], y: data.y[0], dw: data.dw[0], dh: data.dh[0], sum, n: arr.length});
    }
  }
  const texts = outputs.filter(o => /stderr|error/.test(o.getAttribute('data-mime-type') || '')).map(o => o.innerText.slice(0, 400));
  return {mimes, texts, canvases: canvases.length, painted, digest, image, frame: FRAME_CENTRE,
          bokeh: window.Bokeh ? window.Bokeh.version : null};
})()"""

#: Where a reader would turn the mouse wheel: over the ring at its division mark (1, 0), on the page.
FRAME_CENTRE = """(() => {
  for (const doc of window.Bokeh.documents) for (const m of doc.all_models) {
    if (m.x_range && m.renderers && m.renderers.some(r => r.glyph && r.glyph.type === 'Image')) {
      const view = window.Bokeh.index.find_one(m);
      const box = view.el.getBoundingClientRect();
      return {x: box.left + view.frame.x_scale.compute(1.0), y: box.top + view.frame.y_scale.compute(0.0),
              x_range: [m.x_range.start, m.x_range.end],
              wheel: m.toolbar.active_scroll ? m.toolbar.active_scroll.type : null};
    }
  }
  return null;
})()"""


FIGURE_STATE = FIGURE_STATE_JS.replace("FRAME_CENTRE", FRAME_CENTRE)


def _wait_figure(tab: Tab, timeout: float, done) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = tab.eval(FIGURE_STATE)
        if done(state):
            return state
        time.sleep(0.3)
    raise AssertionError(f"figure state after {timeout:.0f} s: {state}")


def test_ring_renders_and_reaggregates_on_zoom(lab: Lab, chromium: Chromium) -> None:
    t0 = time.monotonic()
    tab = chromium.tab()
    try:
        tab.viewport(1280, 1000)
        tab.navigate(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
        # the notebook is open and its kernel has started
        state = tab.wait_for(f"(() => {{ const s = {NOTEBOOK_STATE}; return s && s.path === '{NOTEBOOK}' "
                             f"&& s.kernel === 'idle' ? s : null; }})()", timeout=60)
        assert state["pyviz"], (
            f"the HoloViews/Panel lab extension {PYVIZ_PLUGIN} is not active: install pyviz_comms "
            "(requirements-book.txt) into the environment that runs jupyter lab")
        tab.eval("window.jupyterapp.commands.execute('notebook:run-all-cells')", await_promise=True)
        tab.wait_for(f"(() => {{ const s = {NOTEBOOK_STATE}; return s.executed === s.code && s.kernel === 'idle'; }})()",
                     timeout=90)
        state = tab.eval(NOTEBOOK_STATE)
        assert HOLOVIEWS_MIME in state["sent"], f"the kernel sent no HoloViews figure (outputs: {set(state['sent'])})"
        assert HOLOVIEWS_MIME in state["renders"], f"JupyterLab has no renderer for {HOLOVIEWS_MIME} (lab extension missing?)"
        before = _wait_figure(tab, 30, lambda s: s["painted"] and s["image"].get("n"))
        assert not before["texts"], f"the notebook printed warnings or errors: {before['texts']}"
        assert before["bokeh"], "BokehJS did not load in the notebook"
        full_width = before["image"]["dw"]
        assert full_width > 2.0, f"the first image should span the whole ring, got {before['image']}"
        # bring the figure into view (the wheel must land on it; the screenshots should show it)
        tab.eval("document.querySelector('.jp-OutputArea-output canvas, .jp-OutputArea-output .bk-Row, "
                 ".jp-OutputArea-output div[id]').scrollIntoView({block: 'center'})")
        time.sleep(0.5)
        before = _wait_figure(tab, 10, lambda s: s["painted"])
        tab.screenshot(SHOTS / "lab_ring.png")

        frame = before["frame"]
        assert frame and frame["wheel"] == "WheelZoomTool", f"no active wheel zoom on the Datashader figure: {frame}"
        # the reader's mouse wheel over the ring, a few notches in (again if the page moved under it)
        for _ in range(3):
            frame = tab.eval(FRAME_CENTRE)
            for _ in range(4):
                tab.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": frame["x"], "y": frame["y"],
                                                      "deltaX": 0, "deltaY": -240})
                time.sleep(0.1)
            time.sleep(1.0)
            frame = tab.eval(FRAME_CENTRE)
            if frame["x_range"][1] - frame["x_range"][0] < 0.8 * full_width:
                break
        shown = frame["x_range"][1] - frame["x_range"][0]
        assert shown < 0.8 * full_width, f"the wheel did not zoom the figure: {frame}"

        # a new aggregate from the kernel: once the last zoom step is answered, the image spans the
        # zoomed window; its counts and pixels changed
        def answered(s: dict) -> bool:
            r = s["frame"]["x_range"][1] - s["frame"]["x_range"][0]
            return abs(s["image"].get("dw", full_width) - r) < 0.02 * r

        after = _wait_figure(tab, 30, answered)
        assert after["image"]["sum"] != before["image"]["sum"], "the zoomed image holds the same counts"
        after = _wait_figure(tab, 10, lambda s: s["digest"] != before["digest"] and s["painted"])
        time.sleep(0.5)
        tab.screenshot(SHOTS / "lab_ring_zoomed.png")

        errors = tab.errors()
        print(f"JupyterLab: {HOLOVIEWS_MIME} rendered, BokehJS {before['bokeh']}, image {before['image']['dw']:.2f} wide "
              f"-> {after['image']['dw']:.2f} after zoom; {time.monotonic() - t0:.1f} s in the browser")
        assert not errors, "console errors in JupyterLab:\n" + "\n".join(errors)
    finally:
        tab.close()
    assert (SHOTS / "lab_ring.png").stat().st_size > 10_000 and (SHOTS / "lab_ring_zoomed.png").stat().st_size > 10_000
