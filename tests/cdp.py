"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``, shared by the browser tests.

Why a home-made client: the protocol over a pipe (fds 3/4) needs no port, no extra Python package and
no network, and the tests only need a handful of commands (open a tab, evaluate JavaScript, set the
viewport, take a screenshot, collect console errors). ``tests/test_browser.py`` checks the rendered
book with it, ``tests/test_lab.py`` a live JupyterLab.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "Chromium", "Tab"]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class Chromium:
    """Headless Chromium driven over a pipe: commands go to its fd 3, replies/events come from fd 4."""

    def __init__(self, user_data_dir: Path, extra_flags: list[str] | None = None):
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        # posix_spawn puts the pipe ends on the child's fds 3 and 4 without running Python in a forked
        # child (unsafe with threads); go through high fds so a dup2 never clobbers the other end.
        high_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(resp_w, fcntl.F_DUPFD_CLOEXEC, 10)
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio",
            "--hide-scrollbars", "--window-size=1280,1600", f"--user-data-dir={user_data_dir}",
            *(extra_flags or []), "--remote-debugging-pipe", "about:blank",
        ]
        log = os.open(user_data_dir / "chromium.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.pid = os.posix_spawn(CHROMIUM, [CHROMIUM, *flags], dict(os.environ), file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, log, 2),
                (os.POSIX_SPAWN_DUP2, high_r, 3), (os.POSIX_SPAWN_DUP2, high_w, 4),
            ])
        finally:
            for fd in (cmd_r, resp_w, high_r, high_w, log, null):
                os.close(fd)
        self.returncode: int | None = None
        self._next_id = 0
        self._id_lock = threading.Lock()
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._resp_r, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    with self._cv:
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self.events.append(msg)
                        self._cv.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        with self._id_lock:
            self._next_id += 1
            msg_id = self._next_id
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.poll() is not None:
                    raise TimeoutError(f"Chromium did not answer {method} (exit code {self.returncode})")
                self._cv.wait(min(left, 1.0))
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def poll(self) -> int | None:
        """The exit status once Chromium has ended, else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def tab(self, offline: bool = False) -> "Tab":
        """A new blank tab with the runtime, log, page and network domains enabled."""
        return Tab(self, offline=offline)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        deadline = time.monotonic() + 10
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self._cmd_w)


class Tab:
    """One page target of a :class:`Chromium`, with the few commands the tests use."""

    def __init__(self, browser: Chromium, offline: bool = False):
        self.browser = browser
        self.target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
        self.first_event = len(browser.events)
        for method in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.send(method)
        if offline:
            self.send("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def eval(self, expression: str, timeout: float = 30, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression (JSON-serialisable), raising on a thrown exception."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": await_promise}, timeout=timeout)
        if "exceptionDetails" in reply:
            d = reply["exceptionDetails"]
            raise RuntimeError(f"JavaScript error: {d.get('exception', {}).get('description') or d.get('text')}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float, interval: float = 0.25) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"after {timeout:.0f} s still falsy ({value!r}): {expression[:200]}")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", {"format": "png"}, timeout=60)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def events(self) -> list[dict]:
        return [e for e in self.browser.events[self.first_event:] if e.get("sessionId") == self.session]

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen in this tab so far."""
        errors = []
        for event in self.events():
            method, p = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return errors

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events() if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        except Exception:
            pass
