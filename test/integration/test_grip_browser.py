"""A real browser's EventSource against a GRIP stream hold (SSE). Skipped when Chromium is not
installed (.ci/deps.sh installs Debian's chromium)."""

import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from harness.backend import Response

CHROMIUM = shutil.which("chromium")

PAGE = b"""<!doctype html><html><body><pre id="log"></pre><script>
const log = document.getElementById('log');
const es = new EventSource('/events');
let got = [];
function report() { if (got.length == 2) fetch('/done?' + encodeURIComponent(got.join('|'))); }
es.addEventListener('news', (e) => { got.push('news:' + e.data); report(); });
es.onmessage = (e) => { got.push('message:' + e.data); report(); };
</script></body></html>"""


def publish(proxy, items):
    body = ('{"items":[%s]}' % ",".join(items)).encode()
    req = urllib.request.Request(proxy.publish_url + "/publish/", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def sse_item(channel, text):
    import json
    return json.dumps({"channel": channel, "formats": {"http-stream": {"content": text}}})


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_browser_eventsource_receives_published_events(proxy, backend):
    backend.route("/", Response(200, PAGE, [("Content-Type", "text/html")]))
    backend.route("/events", Response(200, b":ok\n\n", [
        ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "sse-test"),
        ("Grip-Keep-Alive", ":\\n\\n; format=cstring; timeout=20")]))

    # Publish once the browser's stream is held (the backend saw /events), then let it render.
    def publisher():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(r.path == "/events" for r in backend.requests):
            time.sleep(0.1)
        time.sleep(0.5)
        publish(proxy, [sse_item("sse-test", "event: news\ndata: first\n\n")])
        publish(proxy, [sse_item("sse-test", "data: second\n\n")])

    backend.route("/done", Response(200, b"ok"))
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
    assert urllib.parse.unquote(done[0].query) == "news:first|message:second"
