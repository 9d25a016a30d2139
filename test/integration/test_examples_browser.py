"""The examples in test/examples (Node backends built with Fanout's @fanoutio/serve-grip and
@fanoutio/grip from npm) end to end: for each, the proxy signs requests with `sig_key`, the backend
checks Grip-Sig with the library, and two headless Chromium pages act as two users through the
DevTools protocol: what one does appears in the other, and a page that reloads catches up. The
same tests run against pushpin. Skipped without chromium, node or the examples' node_modules
(`.ci/deps.sh` runs `npm ci` in test/examples)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from harness.browser import Browser
from harness.jwt import sign_hs256
from harness.proxy import IS_PUSHPIN, REPO, port_accepts, unique_free_port

EXAMPLES = REPO / "test" / "examples"
NODE = shutil.which("node")
KEY = "example-sig-key"
# Pushpin's handler learns of a new subscription over ZeroMQ a moment after the client is held.
SETTLE = 1.0 if IS_PUSHPIN else 0.2
UPDATE = 10.0  # bound on waiting for a page to show an update (the examples take milliseconds)

pytestmark = [
    pytest.mark.skipif(not Browser.available(), reason="chromium not installed"),
    pytest.mark.skipif(NODE is None, reason="node not installed"),
    pytest.mark.skipif(not (EXAMPLES / "node_modules" / "@fanoutio" / "serve-grip").is_dir(),
                       reason="run `npm ci` in test/examples (.ci/deps.sh does)"),
]


class Example:
    def __init__(self, name, proxy, backend_port, proc, log):
        self.name, self.proxy, self.backend_port, self.proc, self.log = name, proxy, backend_port, proc, log
        self.url = proxy.http_url + "/"

    def request(self, path, body=None, direct=False, headers=None):
        """(status, body) of a request through the proxy (or straight to the backend)."""
        base = f"http://127.0.0.1:{self.backend_port}" if direct else self.proxy.http_url
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        req = urllib.request.Request(base + path, data=data, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


@pytest.fixture
def example(start_proxy, tmp_path):
    started = []

    def _start(name, sig_key=KEY, verify_key=KEY):
        route = next(l for l in (EXAMPLES / name / "routes").read_text().splitlines()
                     if l.strip() and not l.startswith("#"))
        port = unique_free_port()
        proxy = start_proxy(routes=re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", route),
                            conf={"proxy": {"sig_key": sig_key, "sig_iss": "pushpin"}})
        log = open(tmp_path / f"{name}-backend.log", "wb")
        env = dict(os.environ, PORT=str(port), GRIP_CONTROL_URI=proxy.publish_url + "/", GRIP_SIG_KEY=verify_key)
        proc = subprocess.Popen([NODE, str(EXAMPLES / name / "server.js")], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        ex = Example(name, proxy, port, proc, tmp_path / f"{name}-backend.log")
        ex.browser = _browser
        started.append((ex, log))
        deadline = time.monotonic() + 15
        while not port_accepts(port):
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"the {name} backend did not start: {ex.log.read_text()}"
            time.sleep(0.05)
        return ex

    browser = []

    def _browser():
        if not browser:
            browser.append(Browser(tmp_path))
        return browser[0]

    yield _start
    for b in browser:
        b.close()
    for ex, log in started:
        ex.proc.kill()
        ex.proc.wait(timeout=10)
        log.close()
        print(f"--- the {ex.name} backend's output:\n{ex.log.read_text()}")  # shown when the test fails


def check_signature_required(ex):
    """The backend refuses what the proxy did not sign (straight to it, or with another key)."""
    status, body = ex.request("/", direct=True)
    assert status == 501, body  # serve-grip: no Grip-Sig, no GRIP proxy
    forged = sign_hs256({"iss": "pushpin", "exp": int(time.time()) + 60}, "another-key")
    status, body = ex.request("/", direct=True, headers={"Grip-Sig": forged})
    assert status == 403, body
    status, body = ex.request("/")
    assert status == 200 and b"<html" in body


def open_two(ex, ready: str):
    b = ex.browser()
    pages = [b.open(ex.url), b.open(ex.url)]
    for p in pages:
        p.wait(ready, what="the page's connection")
    time.sleep(SETTLE)
    return pages


def texts(selector: str) -> str:
    return f"[...document.querySelectorAll({selector!r})].map(e => e.textContent)"


# --- chat (SSE) -----------------------------------------------------------------------------------

def test_chat_two_users_and_reload(example):
    ex = example("chat")
    check_signature_required(ex)
    alice, bob = open_two(ex, "events.readyState == 1")

    def say(page, user, text):
        page.eval(f"document.getElementById('user').value = {user!r};"
                  f"document.getElementById('text').value = {text!r};"
                  "document.getElementById('form').requestSubmit()")

    say(alice, "alice", "hello bob")
    bob.wait(f"{texts('#messages li')}.includes('alice: hello bob')", UPDATE, "bob sees alice's message")
    say(bob, "bob", "hi alice")
    alice.wait(f"JSON.stringify({texts('#messages li')}) == "
               f"JSON.stringify(['alice: hello bob', 'bob: hi alice'])", UPDATE, "alice sees both, in order")
    bob.reload()
    bob.wait(f"JSON.stringify({texts('#messages li')}) == "
             f"JSON.stringify(['alice: hello bob', 'bob: hi alice'])", UPDATE, "bob catches up after a reload")
    bob.wait("events.readyState == 1")
    time.sleep(SETTLE)
    say(alice, "alice", "still there?")
    bob.wait(f"{texts('#messages li')}.length == 3", UPDATE, "the reloaded page gets new messages")


# --- leaderboard (SSE, the whole sorted board on each change) ------------------------------------

def test_leaderboard_two_users_and_reload(example):
    ex = example("leaderboard")
    check_signature_required(ex)
    ann, ben = open_two(ex, "events.readyState == 1")

    def score(page, player, points):
        page.eval(f"document.getElementById('player').value = {player!r};"
                  f"document.getElementById('points').value = {points};"
                  "document.getElementById('form').requestSubmit()")

    def board_is(page, rows, what):
        page.wait(f"JSON.stringify({texts('#board li')}) == {json.dumps(json.dumps(rows, separators=(',', ':')))}", UPDATE, what)

    score(ann, "ann", 5)
    board_is(ben, ["ann 5"], "ben sees ann's score")
    score(ben, "ben", 7)
    board_is(ann, ["ben 7", "ann 5"], "ann sees ben ahead")
    score(ann, "ann", 3)
    board_is(ben, ["ann 8", "ben 7"], "ben sees the order change")
    ben.reload()
    board_is(ben, ["ann 8", "ben 7"], "a reloaded page starts from the current board")


# --- to-do list (WebSocket-over-HTTP) -------------------------------------------------------------

def todo_rows():
    return ("JSON.stringify([...document.querySelectorAll('#todos li')].map("
            "li => (li.querySelector('input').checked ? '[x] ' : '[ ] ') + li.querySelector('span').textContent))")


def test_todo_two_users_and_reload(example):
    ex = example("todo")
    check_signature_required(ex)
    ann, ben = open_two(ex, "socket.readyState == 1 && version >= 0")

    def rows_are(page, rows, what):
        page.wait(f"{todo_rows()} == {json.dumps(json.dumps(rows, separators=(',', ':')))}", UPDATE, what)

    def add(page, text):
        page.eval(f"document.getElementById('text').value = {text!r};"
                  "document.getElementById('form').requestSubmit()")

    add(ann, "milk")
    rows_are(ben, ["[ ] milk"], "ben sees ann's item")
    add(ben, "bread")
    rows_are(ann, ["[ ] milk", "[ ] bread"], "ann sees ben's item")
    ann.eval("document.querySelector('#todos li:nth-child(2) input').click()")
    rows_are(ben, ["[ ] milk", "[x] bread"], "ben sees bread done")
    ben.eval("document.querySelector('#todos li:nth-child(1) button').click()")
    rows_are(ann, ["[x] bread"], "ann sees milk deleted")
    ann.reload()
    rows_are(ann, ["[x] bread"], "a reloaded page gets the list")
    ann.wait("socket.readyState == 1")
    time.sleep(SETTLE)
    add(ben, "eggs")
    rows_are(ann, ["[x] bread", "[ ] eggs"], "the reloaded page gets new items")


# --- webhook inbox (SSE, and the long-poll fallback) ----------------------------------------------

def test_webhook_inbox_stream_and_long_poll(example):
    ex = example("webhook-inbox")
    check_signature_required(ex)
    b = ex.browser()
    streaming = b.open(ex.url)
    streaming.wait("connected && id", what="the page made an inbox and streams it")
    inbox = streaming.eval("id")
    polling = b.open(ex.proxy.http_url + "/?transport=longpoll#" + inbox)
    polling.wait("connected", what="the long-poll page's first poll")
    assert polling.eval("document.getElementById('transport').textContent") == "(live: long-poll)"
    time.sleep(SETTLE)
    items = texts("#items li")

    streaming.eval("document.getElementById('test').click()")
    polling.wait(f"{items}.length == 1 && {items}[0] == 'text/plain test from a headless browser'",
                 UPDATE, "the long-poll page gets the first item")
    time.sleep(SETTLE)  # the next poll is held again
    status, _ = ex.request(f"/hook/{inbox}", b'{"order": 7}', headers={"Content-Type": "application/json"})
    assert status == 202
    for page in (streaming, polling):
        page.wait(f"{items}.length == 2 && {items}[1] == 'application/json {{\"order\": 7}}'", UPDATE,
                  "both pages get the POST from outside")
    polling.reload()
    polling.wait(f"{items}.length == 2", UPDATE, "a reloaded page gets the inbox's items")
    streaming.reload()
    streaming.wait(f"{items}.length == 2 && id == {inbox!r}", UPDATE, "the stream page too, same inbox")
    assert ex.request("/hook/0000", b"x")[0] == 404


# --- live text editor (SSE + POST, edits transformed) ---------------------------------------------

def type_text(page, value):
    """What a user's typing does: the textarea's value changes and it fires `input`."""
    page.eval(f"(() => {{ const a = document.getElementById('text'); a.value = {json.dumps(value)};"
              "a.dispatchEvent(new Event('input')); })()")


def test_editor_transformation_converges():
    """ot.js on every pair of edits on short texts: both orders end with the same text."""
    r = subprocess.run([NODE, str(EXAMPLES / "editor" / "ot_check.js")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "cases converge" in r.stdout


def test_editor_concurrent_edits_converge(example):
    ex = example("editor")
    check_signature_required(ex)
    ann, ben = open_two(ex, "editor.rev >= 0")
    area = "document.getElementById('text').value"

    type_text(ann, "hello world")
    ben.wait(f"{area} == 'hello world'", UPDATE, "ben sees ann's text")
    # Both go offline, edit the same text, and come back: the edits cross on the way.
    for p in (ann, ben):
        p.eval("document.getElementById('offline').checked = true")
    type_text(ann, "hello big world")   # insert at 6
    type_text(ben, "world")             # delete 0..6: ann's insert sits right after it
    type_text(ben, "world!")            # and a second edit on top of the first
    for p in (ann, ben):
        p.eval("(() => { const o = document.getElementById('offline'); o.checked = false;"
               "o.dispatchEvent(new Event('change')); })()")
    for p in (ann, ben):
        p.wait(f"{area} == 'big world!' && editor.pending == 0", UPDATE, "both converge on both edits")
    # Same position at once: both inserts survive, in the same order on both pages.
    for p in (ann, ben):
        p.eval("document.getElementById('offline').checked = true")
    type_text(ann, "A big world!")
    type_text(ben, "B big world!")
    for p in (ann, ben):
        p.eval("(() => { const o = document.getElementById('offline'); o.checked = false;"
               "o.dispatchEvent(new Event('change')); })()")
    for p in (ann, ben):
        p.wait(f"editor.pending == 0 && ['A B big world!', 'B A big world!'].includes({area})", UPDATE)
    assert ann.eval(area) == ben.eval(area)
    ben.reload()
    ben.wait(f"editor.rev >= 0 && {area} == {json.dumps(ann.eval(area))}", UPDATE, "a reloaded page gets the text")
    time.sleep(SETTLE)
    type_text(ben, ben.eval(area) + " end")
    ann.wait(f"{area}.endsWith(' end')", UPDATE, "edits from the reloaded page reach the other")


# --- Grip-Sig with an EC key (ES256, as Fastly Fanout signs) -------------------------------------

def test_es256_signature_verified_by_the_library(example, tmp_path):
    """gripd signs with an EC P-256 private key (`sig_key=file:...`); the library verifies with the
    public key (a PEM in GRIP_SIG_KEY), and still refuses an HS256 token."""
    key, pub = tmp_path / "ec.pem", tmp_path / "ec-pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(key)], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True, timeout=30)
    ex = example("chat", sig_key=f"file:{key}", verify_key=pub.read_text())
    check_signature_required(ex)
