"""A real browser across origins: headless Chromium loads a page from one origin (a plain server)
and calls an API behind the proxy on another (same address, other port) with CORS on
(`auto_cross_origin`): a credentialed fetch() whose custom header makes the browser send a
preflight OPTIONS first, a JSON-P <script> call, and a JSON-P long-poll answered by a publish. The
browser enforces CORS itself, so the fetch succeeds only if the preflight's and the response's
Access-Control-* headers are right, and the scripts run only if the JSON-P bodies are valid
JavaScript calling the page's functions. Skipped when Chromium is not installed."""

import json
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from harness.backend import Response
from griputil import hr_item, publish

CHROMIUM = shutil.which("chromium")

PAGE = """<!doctype html><html><body><script>
const api = 'http://127.0.0.1:%(proxy_port)d';
const out = {};
function report() {
  if ('fetch' in out && 'jsonp' in out && 'lp' in out)
    fetch('/done?' + encodeURIComponent(JSON.stringify(out)));
}
function gotIt(r) { out.jsonp = r; report(); }
function gotLp(r) { out.lp = r; report(); }
fetch(api + '/api/data', {method: 'PUT', credentials: 'include', body: '{"x": 1}',
                          headers: {'X-Req': '1', 'Content-Type': 'application/json'}})
  .then(r => r.text().then(t => { out.fetch = {status: r.status, custom: r.headers.get('X-Custom'), body: t};
                                  report(); }))
  .catch(e => { out.fetch = {error: String(e)}; report(); });
function script(src, name) {
  const s = document.createElement('script');
  s.src = src;
  s.onerror = () => { out[name] = 'script error'; report(); };
  document.body.appendChild(s);
}
script(api + '/api/jsonp?callback=gotIt', 'jsonp');
script(api + '/api/lp?callback=gotLp', 'lp');
</script></body></html>"""


def api(req):
    if req.path == "/api/data" and req.method == "OPTIONS":
        return Response(204, b"", [])
    if req.path == "/api/data" and req.method == "PUT":
        return Response(200, b"put:" + req.body, [("Content-Type", "text/plain"), ("X-Custom", "yes")])
    if req.path == "/api/jsonp":
        return Response(200, b'{"n": 5}', [("Content-Type", "application/json"), ("X-J", "j")])
    if req.path == "/api/lp":
        return Response(200, b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", "browser-lp"),
                                            ("Content-Type", "text/plain")])
    return Response(404, b"no\n", [])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
@pytest.mark.proxy(conf={"proxy": {"auto_cross_origin": "true"}})
def test_browser_cors_fetch_and_jsonp_across_origins(proxy, backend, make_backend):
    backend.handler = api
    page = make_backend()
    page.route("/", Response(200, (PAGE % {"proxy_port": proxy.port}).encode(), [("Content-Type", "text/html")]))
    page.route("/done", Response(200, b"ok"))

    def publisher():  # answer the long-poll once the proxy holds it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.path == "/api/lp" for r in backend.requests):
            time.sleep(0.1)
        time.sleep(0.5)
        publish(proxy, [hr_item("browser-lp", '"published"', headers={"X-L": "l"})])

    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--user-data-dir=" + str(proxy.dir / "chromium"),
         f"http://127.0.0.1:{page.port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 45
        done = []
        while time.monotonic() < deadline and not done:
            done = [r for r in page.requests if r.path == "/done"]
            time.sleep(0.1)
    finally:
        browser.kill()
        browser.wait(timeout=10)
    t.join(timeout=30)
    assert done, "the page never reported"
    out = json.loads(urllib.parse.unquote(done[0].query))
    assert out["fetch"] == {"status": 200, "custom": "yes", "body": 'put:{"x": 1}'}
    methods = [r.method for r in backend.requests if r.path == "/api/data"]
    assert methods == ["OPTIONS", "PUT"]  # the browser's preflight reached the backend
    assert out["jsonp"] == {"code": 200, "reason": "OK", "headers": {
        "Content-Length": "8", "Content-Type": "application/json", "X-J": "j"}, "body": '{"n": 5}'}
    assert out["lp"] == {"code": 200, "reason": "OK", "headers": {"Content-Type": "text/plain", "X-L": "l"},
                         "body": '"published"'}
