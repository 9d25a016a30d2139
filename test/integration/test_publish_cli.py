"""`gripd publish` (Pushpin's pushpin-publish in gripd's binary, PROTOCOL.md §4.4) and Debian's own
`pushpin-publish` 1.36, each against the proxy under test (gripd, or pushpin with
GRIPD_TARGET=pushpin), over the HTTP control API and over the ZeroMQ PULL input.

Observed with pushpin-publish 1.36: prints `Published` and exits 0; on failure prints
`Error: <reason>` on stderr and exits 1, the reason being the control API's answer for a refused
publish; `-u` needs https; content without --no-eol gets a newline on HTTP formats only."""

import base64
import os
import shutil
import subprocess

import pytest

from griputil import after_sync, hold, sync_stream
from harness.backend import Response
from harness.proxy import REPO
from zmqutil import wait_for

GRIPD = os.environ.get("GRIPD_BIN") or str(REPO / "build" / "gripd")


def cli(which):
    if which == "gripd":
        if not os.path.exists(GRIPD):
            pytest.skip("gripd binary not built")
        return [GRIPD, "publish"]
    if not shutil.which("pushpin-publish"):
        pytest.skip("Debian's pushpin-publish is not installed")
    return ["pushpin-publish"]


def run(cmd, *args):
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


@pytest.fixture
def stream(proxy, backend):
    backend.route("/p", Response(200, b"", [("Grip-Hold", "stream"), ("Grip-Channel", "p")]))
    c = hold(proxy, backend, "/p", stream=True)
    sync_stream(proxy, "p", [c])
    yield c
    c.close()


@pytest.mark.parametrize("which", ["gripd", "pushpin-publish"])
@pytest.mark.parametrize("via", ["http", "zmq"])
def test_publish_reaches_a_stream(stream, proxy, which, via):
    spec = proxy.publish_url if via == "http" else proxy.push_in_spec
    r = run(cli(which), "p", f"hello {via}", "--spec", spec)
    assert (r.returncode, r.stdout) == (0, "Published\n"), r.stderr
    r = run(cli(which), "p", "no eol", "--no-eol", "--id", "a", "--sender", "me", "-M", "k=v", "--spec", spec)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: b"no eol" in after_sync(stream))
    assert after_sync(stream) == f"hello {via}\nno eol".encode()
    r = run(cli(which), "p", "--close", "--spec", spec)
    assert r.returncode == 0, r.stderr
    assert stream.wait_complete()


@pytest.mark.parametrize("which", ["gripd", "pushpin-publish"])
def test_publish_from_file_sends_its_bytes(stream, proxy, which, tmp_path):
    f = tmp_path / "payload"
    f.write_bytes(b"from file\n")
    r = run(cli(which), "p", "@" + str(f), "--spec", proxy.publish_url)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: b"from file\n" in after_sync(stream))
    assert after_sync(stream) == b"from file\n"


@pytest.mark.parametrize("which", ["gripd", "pushpin-publish"])
def test_publish_errors_exit_1_with_a_message(proxy, which):
    c = cli(which)
    r = run(c, "p", "x", "--spec", "http://127.0.0.1:1")
    assert r.returncode == 1 and r.stderr.startswith("Error: ")
    r = run(c, "p", "x", "-u", "a:b", "--spec", proxy.publish_url)
    assert (r.returncode, r.stderr) == (1, "Error: Authentication requires https\n")
    r = run(c, "p", "--spec", proxy.publish_url)
    assert (r.returncode, r.stderr) == (1, "Error: must specify content\n")
    r = run(c, "p", "x", "--code", "1000", "--spec", proxy.publish_url)
    assert (r.returncode, r.stderr) == (1, "Error: code must be an integer between 0 and 999\n")
    r = run(c, "p", "x", "-H", "nocolon", "--spec", proxy.publish_url)
    assert (r.returncode, r.stderr) == (1, "Error: header must be in the form \"name: value\"\n")
    r = run(c, "p", "[1]", "--patch", "--spec", proxy.publish_url)
    assert r.returncode == 0, r.stderr  # a patch is an array; its operations are the proxy's business
    r = run(c)
    assert r.returncode != 0 and "<channel>" in r.stderr


@pytest.mark.parametrize("which", ["gripd", "pushpin-publish"])
def test_publish_refused_by_the_api_prints_its_answer(proxy, which):
    # The spec's path comes before /publish/: a wrong one gets the API's 404, whose text is shown.
    r = run(cli(which), "p", "x", "--spec", proxy.publish_url.rstrip("/") + "/nope")
    assert (r.returncode, r.stderr) == (1, "Error: Not Found\n")
