"""Headless Chromium driven over the DevTools protocol, for tests where pages act as users.

    with Browser(tmpdir) as b:
        a = b.open("http://127.0.0.1:7999/")     # a new tab (its own page)
        a.wait("document.readyState == 'complete'")
        a.eval("document.getElementById('x').click()")
        a.wait("document.querySelectorAll('li').length == 2")  # polls until true (or raises)
        a.reload()

Every call is bounded in time. Needs Debian's chromium (`Browser.available()`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import websockets

CHROMIUM = shutil.which("chromium")


class BrowserError(AssertionError):
    pass


class Page:
    def __init__(self, browser: "Browser", ws_url: str):
        self._b = browser
        self._ids = itertools.count(1)
        async def connect():
            return await websockets.connect(ws_url, max_size=None, ping_interval=None)
        self._ws = browser._call(connect())

    async def _send(self, method, params):
        i = next(self._ids)
        await self._ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(await self._ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg["result"]

    def cdp(self, method, **params):
        return self._b._call(self._send(method, params))

    def eval(self, expression: str):
        """Value of a JavaScript expression in the page (promises awaited); page errors raise."""
        r = self.cdp("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 10.0, what: str = ""):
        """Polls a JavaScript expression until it is truthy; its last value is in the error."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expression)
            except BrowserError as e:  # e.g. while the page (re)loads
                last = str(e)
            if last:
                return last
            time.sleep(0.05)
        raise BrowserError(f"{what or expression!r} not true within {timeout}s (last value {last!r})")

    def reload(self):
        self.eval("window.__old_page = true")
        self.cdp("Page.reload", ignoreCache=True)
        self.wait("document.readyState == 'complete' && !window.__old_page", what="the reload")

    def close(self):
        self._b._call(self._ws.close())


class Browser:
    @staticmethod
    def available() -> bool:
        return CHROMIUM is not None

    def __init__(self, workdir: Path):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        profile = Path(workdir) / "chromium"
        profile.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "--user-data-dir=" + str(profile), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None:
                raise BrowserError("chromium exited at start")
            time.sleep(0.05)
        self._port = int(port_file.read_text().split()[0])
        self._pages = []

    def _call(self, coro, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def open(self, url: str) -> Page:
        req = urllib.request.Request(f"http://127.0.0.1:{self._port}/json/new?{urllib.parse.quote(url, safe='')}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            target = json.load(r)
        page = Page(self, target["webSocketDebuggerUrl"])
        self._pages.append(page)
        page.wait("location.href != 'about:blank' && document.readyState == 'complete'", what=f"loading {url}")
        return page

    def close(self):
        for p in self._pages:
            try:
                p.close()
            except Exception:
                pass
        self._proc.kill()
        self._proc.wait(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
