"""How the ZeroMQ specs are bound (PROTOCOL.md §1.2, §1.3): `port_offset` is added to every
`tcp://` spec's port and to the control API's port, and `ipc://` specs with `{rundir}` and
`{ipc_prefix}` become socket files in the rundir. Checked on pushpin 1.36 (same generated config)."""

import os
import re

import pytest

from harness.backend import Response
from griputil import StreamClient
from harness.proxy import unique_free_port
from zmqutil import Command, Pusher, j, wait_for

zmq = pytest.importorskip("zmq")

def port_free(port: int) -> bool:
    import socket
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def offset(spec: str, n: int) -> str:
    return re.sub(r":(\d+)$", lambda m: ":" + str(int(m.group(1)) + n), spec)


def publish_http(port, channel, text):
    import json
    import urllib.request
    body = json.dumps({"items": [{"channel": channel, "formats": {"http-stream": {"content": text}}}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/publish/", data=body,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=10).status


def stream_until_subscribed(proxy, backend, channel, publish_port):
    backend.route("/" + channel, Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", channel)]))
    c = StreamClient(proxy.port, "/" + channel)
    c.wait_head()

    def synced():
        publish_http(publish_port, channel, "~sync~\n")
        return wait_for(lambda: b"~sync~\n" in c.body, timeout=0.3)
    assert wait_for(synced, timeout=20, step=0.05)
    return c


def test_port_offset_moves_every_tcp_spec(start_proxy, backend):
    # Ports whose offset ones are free too (the harness's own are only free as given).
    OFFSET = 7
    ports = []
    while len(ports) < 4:
        p = unique_free_port()
        if p + OFFSET < 65536 and port_free(p + OFFSET) and p + OFFSET not in ports:
            ports.append(p)
    http, pull, sub, command = ports
    specs = {"push_in_spec": f"tcp://127.0.0.1:{pull}", "push_in_sub_specs": f"tcp://127.0.0.1:{sub}",
             "command_spec": f"tcp://127.0.0.1:{command}"}
    conf = {"global.port_offset": str(OFFSET), "handler.push_in_http_port": str(http)}
    conf.update({"handler." + k: v for k, v in specs.items()})
    proxy = start_proxy(routes=f"* 127.0.0.1:{backend.port}", conf=conf, wait=False)
    publish_port = http + OFFSET
    proxy.wait_ready(ports=[proxy.port, publish_port], probe=False)
    c = stream_until_subscribed(proxy, backend, "off", publish_port)
    cmd = Command(offset(specs["command_spec"], OFFSET))
    try:
        v = cmd.call("get-zmq-uris")["value"]
        assert v["command"] == offset(specs["command_spec"], OFFSET).encode()
        assert v["publish-pull"] == offset(specs["push_in_spec"], OFFSET).encode()
        assert v["publish-sub"] == offset(specs["push_in_sub_specs"], OFFSET).encode()
        p = Pusher(offset(specs["push_in_spec"], OFFSET))
        p.send(j({"channel": "off", "formats": {"http-stream": {"content": "offset pull\n"}}}))
        assert wait_for(lambda: b"offset pull\n" in c.body)
        p.close()
    finally:
        cmd.close()
        c.close()


def test_ipc_specs_in_the_rundir(start_proxy, backend):
    proxy = start_proxy(routes=f"* 127.0.0.1:{backend.port}",
                        conf={"handler.push_in_spec": "ipc://{rundir}/{ipc_prefix}push-in",
                              "handler.command_spec": "ipc://{rundir}/{ipc_prefix}command"})
    pull_path = os.path.join(str(proxy.rundir), "pushpin-push-in")
    assert wait_for(lambda: os.path.exists(pull_path))
    c = stream_until_subscribed(proxy, backend, "ipc", proxy.publish_port)
    cmd = Command("ipc://" + os.path.join(str(proxy.rundir), "pushpin-command"))
    try:
        v = cmd.call("get-zmq-uris")["value"]
        assert v["publish-pull"] == ("ipc://" + pull_path).encode()
        p = Pusher("ipc://" + pull_path)
        p.send(j({"channel": "ipc", "formats": {"http-stream": {"content": "over ipc\n"}}}))
        assert wait_for(lambda: b"over ipc\n" in c.body)
        p.close()
    finally:
        cmd.close()
        c.close()
