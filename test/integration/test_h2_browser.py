"""A real browser over HTTP/2 (issue 16): headless Chromium opens 20 EventSource streams to one
origin and every one receives publishes. Over HTTP/1.1 a browser opens at most 6 connections per
origin, so only 6 of the 20 would ever connect; over HTTP/2 they share one connection. Browsers
speak HTTP/2 only over TLS: the proxy serves https_ports with a test certificate, which Chromium
is told to accept (--ignore-certificate-errors). Skipped when Chromium is not installed."""

import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from harness.backend import Response
from test_client_tls import ca, tls  # noqa: F401 (fixtures)
from test_grip_browser import publish, sse_item

CHROMIUM = shutil.which("chromium")
N = 20

PAGE = b"""<!doctype html><html><body><script>
const N = %d;
const got = new Set();
let reported = false;
for (let i = 0; i < N; i++) {
  const es = new EventSource('/events?i=' + i);
  es.onmessage = (e) => {
    if (e.data !== 'hello') return;
    got.add(i);
    if (got.size === N && !reported) {
      reported = true;
      const nav = performance.getEntriesByType('navigation')[0];
      fetch('/done?' + encodeURIComponent(nav.nextHopProtocol + '|' + got.size));
    }
  };
}
</script></body></html>""" % N


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.gripd_only("pushpin 1.36 serves HTTP/1.1 only: a browser connects 6 of the 20 streams")
def test_chromium_20_eventsource_streams_over_h2(tls, backend):  # noqa: F811
    t = tls(f"* {backend.addr}")
    backend.route("/", Response(200, PAGE, [("Content-Type", "text/html")]))
    backend.route("/events", Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "h2-browser")]))
    backend.route("/done", Response(200, b"ok"))

    def streams_seen():
        return len({r.query for r in backend.requests if r.path == "/events"})

    stop = threading.Event()

    def publisher():
        # Once all 20 are held, publish until the page reports (a stream subscribes a moment after
        # its request reached the backend).
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and streams_seen() < N and not stop.is_set():
            time.sleep(0.1)
        while time.monotonic() < deadline and not stop.is_set():
            publish(t.proxy, [sse_item("h2-browser", "data: hello\n\n")])
            time.sleep(0.5)

    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--ignore-certificate-errors", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--remote-debugging-port=0", "--user-data-dir=" + str(t.proxy.dir / "chromium"),
         f"https://127.0.0.1:{t.port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 45
        done = []
        while time.monotonic() < deadline and not done:
            done = [r for r in backend.requests if r.path == "/done"]
            time.sleep(0.1)
    finally:
        stop.set()
        browser.kill()
        browser.wait(timeout=10)
    th.join(timeout=10)
    assert streams_seen() == N, f"only {streams_seen()} of {N} streams reached the backend"
    assert done, "the page never saw the publish on all 20 streams"
    assert urllib.parse.unquote(done[0].query) == f"h2|{N}"
