"""The publishing clients of the README's compatibility table against the control API: Debian's
`pushpin-publish` (Pushpin 1.36's CLI, over HTTP: --spec http://...) and plain curl, as the README
shows them, on holds of the built-in `test` target (stream, long-poll, WebSocket), and
@fanoutio/grip's Publisher with each of its auth schemes. Skipped without pushpin-publish (Debian's
pushpin package), curl, or node and test/examples/node_modules."""

import asyncio
import json
import shutil
import subprocess
import time

import pytest

import wsutil
from griputil import StreamClient
from harness.proxy import IS_PUSHPIN, REPO

PUSHPIN_PUBLISH = shutil.which("pushpin-publish")
CURL = shutil.which("curl")
NODE = shutil.which("node")
EXAMPLES = REPO / "test" / "examples"
SETTLE = 1.0 if IS_PUSHPIN else 0.3


def cli(proxy, *args):
    r = subprocess.run([PUSHPIN_PUBLISH, "--spec", proxy.publish_url, *args], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def held(proxy, target):
    c = StreamClient(proxy.port, target)
    c.wait_head() if "stream" in target else None
    time.sleep(SETTLE)
    return c


@pytest.mark.skipif(PUSHPIN_PUBLISH is None, reason="pushpin-publish not installed")
def test_pushpin_publish_stream_response_and_close(start_proxy):
    p = start_proxy(routes="* test")
    stream = held(p, "/stream?channel=cli-s")
    assert "Published" in cli(p, "cli-s", "first")
    stream.wait_body(lambda b: b.endswith(b"first\n"))
    cli(p, "--no-eol", "cli-s", "second")
    stream.wait_body(lambda b: b.endswith(b"first\nsecond"))
    cli(p, "--close", "cli-s")
    stream.wait_complete(10)  # the response ends (the 0-length chunk)

    poll = held(p, "/response?channel=cli-r")
    # A long-poll takes one item and is done: publish again until the hold had subscribed (Pushpin
    # subscribes a moment after holding, and a publish before that finds nobody).
    deadline = time.monotonic() + 20
    while not poll.complete:
        assert time.monotonic() < deadline, "the long-poll never got a publish"
        cli(p, "--code", "201", "-H", "X-From: cli", "--", "cli-r", "answer")  # -H takes several values
        poll._wait(lambda: poll.complete, 2, "end of response", raise_=False)
    assert poll.head.status == 201 and poll.head.header("X-From") == "cli"
    assert poll.body == b"answer\n"


@pytest.mark.skipif(PUSHPIN_PUBLISH is None, reason="pushpin-publish not installed")
def test_pushpin_publish_id_sequence(start_proxy):
    """--id/--prev-id: an item whose prev-id is not the channel's last id waits for the one
    before it (up to message_wait), so the stream gets them in sequence order."""
    p = start_proxy(routes="* test")
    stream = held(p, "/stream?channel=cli-seq")
    cli(p, "--id", "1", "cli-seq", "one")
    stream.wait_body(lambda b: b.endswith(b"one\n"))
    cli(p, "--id", "3", "--prev-id", "2", "cli-seq", "three")
    cli(p, "--id", "2", "--prev-id", "1", "cli-seq", "two")
    stream.wait_body(lambda b: b.endswith(b"one\ntwo\nthree\n"), 10)


@pytest.mark.skipif(PUSHPIN_PUBLISH is None, reason="pushpin-publish not installed")
def test_pushpin_publish_websocket(start_proxy):
    p = start_proxy(routes="* test")

    async def main():
        ws = await wsutil.connect(p, "/ws?channel=cli-ws")
        await asyncio.sleep(SETTLE)
        await asyncio.get_running_loop().run_in_executor(None, cli, p, "cli-ws", "to the socket")
        assert await wsutil.recv(ws) == "to the socket"
        await ws.close()
    wsutil.run(main())


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_readme_curl_commands(start_proxy):
    """The README's "Try it" commands, with this proxy's ports."""
    p = start_proxy(routes="* test")
    stream = subprocess.Popen([CURL, "-sN", f"{p.http_url}/stream?channel=test"], stdout=subprocess.PIPE)
    try:
        time.sleep(SETTLE + 0.5)
        body = json.dumps({"items": [{"channel": "test", "formats": {"http-stream": {"content": "hi\n"}}}]})
        r = subprocess.run([CURL, "-sS", "-d", body, f"{p.publish_url}/publish/"], capture_output=True,
                           timeout=20)
        assert r.returncode == 0 and r.stdout == b"Published\n", r
        assert stream.stdout.readline() == b"[stream opened]\n"  # the test target's first line
        assert stream.stdout.readline() == b"hi\n"
    finally:
        stream.kill()
        stream.wait(timeout=10)
    poll = subprocess.Popen([CURL, "-s", f"{p.http_url}/response?channel=test"], stdout=subprocess.PIPE)
    try:
        time.sleep(SETTLE + 0.5)
        body = json.dumps({"items": [{"channel": "test", "formats": {"http-response": {"body": "hello\n"}}}]})
        out = None
        for _ in range(10):  # until the hold had subscribed (see the long-poll above)
            subprocess.run([CURL, "-sS", "-d", body, f"{p.publish_url}/publish/"], check=True,
                           capture_output=True, timeout=20)
            try:
                out, _ = poll.communicate(timeout=2)
                break
            except subprocess.TimeoutExpired:
                continue
        assert out == b"hello\n"
    finally:
        poll.kill()


GRIP_JS = """
import { Publisher } from '@fanoutio/grip';
const [uri] = process.argv.slice(1);
for (const [name, auth] of [['jwt', {control_iss: 'me', key: 'publish-secret'}], ['bearer', {key: 'token'}],
                            ['basic', {user: 'u', pass: 'p'}], ['none', {}]]) {
  await new Publisher({control_uri: uri, ...auth}).publishHttpStream('grip-auth', name + '\\n');
}
"""


@pytest.mark.skipif(NODE is None or not (EXAMPLES / "node_modules" / "@fanoutio" / "grip").is_dir(),
                    reason="node or test/examples/node_modules missing (.ci/deps.sh)")
def test_grip_publisher_with_each_auth(start_proxy):
    """@fanoutio/grip's Publisher with each of its auth schemes (a JWT with control_iss, a Bearer
    key, Basic user/pass, none): the control API takes them all (it has no auth of its own)."""
    p = start_proxy(routes="* test")
    stream = held(p, "/stream?channel=grip-auth")
    r = subprocess.run([NODE, "--input-type=module", "-e", GRIP_JS, p.publish_url + "/"], cwd=EXAMPLES,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    stream.wait_body(lambda b: b.endswith(b"jwt\nbearer\nbasic\nnone\n"), 10)
