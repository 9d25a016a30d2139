"""A real browser's EventSource resuming from gripd's channel history: the server ends the stream,
the browser reconnects by itself with Last-Event-ID, and gets every item exactly once, in order,
including those published while it was away. gripd_only: pushpin 1.36 keeps no history. Skipped
when Chromium is not installed (.ci/deps.sh installs Debian's chromium)."""

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from harness.backend import Response

CHROMIUM = shutil.which("chromium")

PAGE = b"""<!doctype html><html><body><script>
const es = new EventSource('/events');
const got = [];
es.onmessage = (e) => {
  got.push(e.lastEventId + '=' + e.data);
  if (got.length == 15) fetch('/done?' + encodeURIComponent(got.join('|')));
};
</script></body></html>"""


def publish(proxy, items):
    body = json.dumps({"items": items}).encode()
    req = urllib.request.Request(proxy.publish_url + "/publish/", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def item(n):
    return {"channel": "bx", "id": str(n), "formats": {"http-stream": {"content": f"id: {n}\ndata: d{n}\n\n"}}}


CLOSE = {"channel": "bx", "formats": {"http-stream": {"action": "close"}}}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.gripd_only("pushpin 1.36 keeps no channel history")
@pytest.mark.proxy(conf={"gripd": {"history_size": "100"}})
def test_browser_eventsource_resumes_after_the_server_cut_it(proxy, backend):
    backend.route("/", Response(200, PAGE, [("Content-Type", "text/html")]))
    # retry: 300 ms, so the browser comes back quickly after each cut.
    backend.route("/events", Response(200, b"retry: 300\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "bx")]))
    backend.route("/done", Response(200, b"ok"))

    def streams():
        return [r for r in backend.requests if r.path == "/events"]

    def wait_streams(n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(streams()) < n:
            time.sleep(0.05)
        return len(streams()) >= n

    def publisher():
        if not wait_streams(1):
            return
        time.sleep(0.5)
        publish(proxy, [item(n) for n in range(1, 6)])
        time.sleep(0.3)
        publish(proxy, [CLOSE])  # the server ends the stream: the browser reconnects
        publish(proxy, [item(n) for n in range(6, 11)])  # while it is away
        if not wait_streams(2):
            return
        time.sleep(0.5)
        publish(proxy, [item(n) for n in range(11, 16)])

    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--user-data-dir=" + str(proxy.dir / "chromium"), proxy.http_url + "/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        done = []
        while time.monotonic() < deadline and not done:
            done = [r for r in backend.requests if r.path == "/done"]
            time.sleep(0.1)
    finally:
        browser.kill()
        browser.wait(timeout=10)
    t.join(timeout=25)
    assert done, "the page never reported its events"
    assert urllib.parse.unquote(done[0].query).split("|") == [f"{n}=d{n}" for n in range(1, 16)]
    # The reconnect carried the last id the browser had seen.
    assert streams()[1].header("Last-Event-ID") == "5"
