"""The sockjs-client library (npm, test/integration/node: `npm ci`) in headless Chromium against a
`sockjs=` route bridged to a WebSocket-over-HTTP backend: it reads /info, opens its session, sends
and receives. With its default transports it picks WebSocket; forced onto xhr-polling or
jsonp-polling it uses those (Pushpin 1.36's HTTP transports); the transports Pushpin does not serve
(xhr-streaming, eventsource, htmlfile) fail. gripd runs with one worker, and the polling transports
also with four (a session's requests reach it from any worker: src/sockjs/relay.cpp). Skipped when
Chromium or the npm package is missing."""

import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from harness.backend import Response
from harness.proxy import IS_PUSHPIN
from wsutil import woh  # noqa: F401 (fixture)

CHROMIUM = shutil.which("chromium")
SOCKJS_JS = Path(__file__).resolve().parent / "node" / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"

pytestmark = pytest.mark.skipif(CHROMIUM is None or not SOCKJS_JS.is_file(),
                                reason="chromium or sockjs-client missing (npm ci in test/integration/node)")

PAGE = """<!doctype html><html><body><script src="/lib/sockjs.min.js"></script><script>
const got = [];
const sock = new SockJS('/sock', null, {transports: %s});
sock.onopen = () => sock.send('hi');
sock.onmessage = (e) => {
  got.push(e.data);
  if (got.length == 2)
    fetch('/done?' + encodeURIComponent(got.join('|') + '|' + sock.transport));
};
sock.onclose = (e) => fetch('/done?' + encodeURIComponent('closed:' + e.code + ':' + e.reason));
</script></body></html>"""


def run_page(start_proxy, woh, backend, transports, workers=1):
    woh.on_open = lambda r: [("TEXT", "m:hello")]
    woh.on_text = lambda t, r: [("TEXT", "m:echo:" + t)]
    backend.route("/", Response(200, (PAGE % transports).encode(), [("Content-Type", "text/html")]))
    backend.route("/lib/sockjs.min.js", Response(200, SOCKJS_JS.read_bytes(), [("Content-Type", "application/javascript")]))
    backend.route("/done", Response(200, b"ok"))
    p = start_proxy(routes=f"*,path_beg=/sock,sockjs=/sock {woh.addr},over_http\n* {backend.addr}\n",
                    args=[] if IS_PUSHPIN else ["--workers", str(workers)])
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--user-data-dir=" + str(p.dir / "chromium"), p.http_url + "/"],
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
    assert done, ("the page never reported", [r.target for r in backend.requests], [w.req.target for w in woh.requests])
    return urllib.parse.unquote(done[0].query)


def test_sockjs_client_over_websocket(start_proxy, woh, backend):
    assert run_page(start_proxy, woh, backend, "['websocket']") == "hello|echo:hi|websocket"


def test_sockjs_client_default_transports_pick_websocket(start_proxy, woh, backend):
    assert run_page(start_proxy, woh, backend, "undefined") == "hello|echo:hi|websocket"


def test_sockjs_client_over_xhr_polling(start_proxy, woh, backend):
    assert run_page(start_proxy, woh, backend, "['xhr-polling']") == "hello|echo:hi|xhr-polling"


def test_sockjs_client_over_jsonp_polling(start_proxy, woh, backend):
    assert run_page(start_proxy, woh, backend, "['jsonp-polling']") == "hello|echo:hi|jsonp-polling"


@pytest.mark.crossloop
@pytest.mark.gripd_only("the worker count is gripd's; pushpin runs the same page in the tests above")
@pytest.mark.parametrize("transport", ["xhr-polling", "jsonp-polling"])
def test_sockjs_client_polling_with_four_workers(start_proxy, woh, backend, transport):
    assert run_page(start_proxy, woh, backend, f"['{transport}']", workers=4) == f"hello|echo:hi|{transport}"


@pytest.mark.parametrize("transport", ["xhr-streaming", "eventsource"])
def test_sockjs_client_transports_not_served_fail(start_proxy, woh, backend, transport):
    assert run_page(start_proxy, woh, backend, f"['{transport}']").startswith("closed:2000:")
