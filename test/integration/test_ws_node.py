"""A second client library: Node's `ws` (npm, installed in test/integration/node with `npm ci`)
speaks to a WebSocket-over-HTTP route: text, binary, fragmentation, ping/pong, a publish, close."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from wsutil import SETTLE, WohBackend, close_content, publish, ws_item

NODE_DIR = Path(__file__).resolve().parent / "node"


def node_ready() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "ws").is_dir()


@pytest.mark.skipif(not node_ready(), reason="node or npm `ws` missing: run `npm ci` in test/integration/node")
def test_node_ws_client(start_proxy):
    woh = WohBackend()
    woh.on_open = lambda r: [("TEXT", 'c:{"type":"subscribe","channel":"node"}')]
    woh.on_text = lambda t, r: [("TEXT", "m:echo " + t)]
    woh.on_binary = lambda d, r: [("BINARY", b"m:" + d[::-1])]
    woh.on_ping = lambda d, r: [("PONG", d)]
    try:
        p = start_proxy(routes=f"* {woh.addr},over_http")
        proc = subprocess.Popen(["node", str(NODE_DIR / "ws_check.js"), f"ws://127.0.0.1:{p.port}/node"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=NODE_DIR)
        steps = {}
        try:
            for line in proc.stdout:
                msg = json.loads(line)
                steps[msg["step"]] = msg
                if msg["step"] == "ready":
                    time.sleep(SETTLE)
                    publish(p, ws_item("node", "to node"))
                if msg["step"] in ("closed", "error"):
                    break
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert "error" not in steps, steps
        assert steps["text"]["got"] == {"binary": False, "data": "echo hello from node"}
        assert steps["binary"]["got"] == {"binary": True, "data": "ff020100"}
        assert steps["fragmented"]["got"] == {"binary": False, "data": "echo frag-mented"}
        assert steps["ping"]["pong"] == "node-ping"
        assert steps["published"]["got"] == {"binary": False, "data": "to node"}
        assert (steps["closed"]["code"], steps["closed"]["reason"]) == (4000, "node bye")
        woh.wait(1, pred=lambda r: ("CLOSE", close_content(4000, "node bye")) in r.events)
    finally:
        woh.stop()
