"""Grip-Sig keys from PEM files: `[proxy] sig_key`, `upstream_key` and route `sig_key=` accept
`file:PATH` (a relative PATH resolves against the config or routes file's directory). Grip-Sig is
then ES256 for an EC P-256 key and RS256 for an RSA key, as Pushpin 1.36 does (its corelib/jwt.cpp
picks the algorithm from the key type); the backend checks each token with PyJWT (Debian's
python3-jwt). An inbound Grip-Sig verifies with a PEM `upstream_key`; `alg: none`, algorithm
confusion (HS256 keyed with the public key's text, RS256 for an EC key) and expired tokens are not
trusted: the request is re-signed and the client's Grip-* headers are dropped.

Observed on Debian's pushpin 1.36: keys come from `openssl genpkey` (PKCS#8); upstream_key must be a
public key (SubjectPublicKeyInfo) there; claims nested 128 deep are refused (serde_json's limit),
127 are trusted. gripd_only: a key file that cannot be loaded stops gripd at startup with the file
named (pushpin silently sends no Grip-Sig, or trusts nobody), and a private key as upstream_key
verifies with its public half (pushpin 1.36 cannot load it and trusts nobody).
"""

import hashlib
import hmac
import json
import signal
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import jwt as pyjwt
import pytest

from harness import jwt, raw
from harness.proxy import ProxyStartError

GOOD_HEADER = '{"alg":"HS256","typ":"JWT"}'


@pytest.fixture
def proxy_wait_publish():
    return False  # proxying only


@pytest.fixture(scope="module")
def keys():
    """PEM keys made with openssl in a temp dir: ec/rsa private (PKCS#8), their public keys, and an
    unrelated EC key, a P-384 key and a non-key file."""
    d = Path(tempfile.mkdtemp(prefix="gk-", dir="/tmp"))

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "ec.pem"))
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "ec2.pem"))
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", str(d / "p384.pem"))
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(d / "rsa.pem"))
    for name in ("ec", "rsa"):
        run("pkey", "-in", str(d / f"{name}.pem"), "-pubout", "-out", str(d / f"{name}.pub.pem"))
    (d / "notakey.pem").write_text("changeme\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def pem(keys, name) -> str:
    return (keys / name).read_text()


def up(proxy, path="/x", headers=()):
    r = raw.get(proxy.port, path, host="x", headers=headers)
    assert r.status == 200, r.body
    return json.loads(r.body)["headers"]


def values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def grip_sig(headers) -> str:
    v = values(headers, "Grip-Sig")
    assert len(v) == 1, f"expected one Grip-Sig, got {v}"
    return v[0]


def check_signed(token, public_pem, alg, iss="pushpin"):
    """The backend's check: PyJWT verifies `token` as `alg` with the public key."""
    assert pyjwt.get_unverified_header(token)["alg"] == alg
    claims = pyjwt.decode(token, public_pem, algorithms=[alg])
    assert claims["iss"] == iss
    assert abs(claims["exp"] - (time.time() + 3600)) < 15
    return claims


ALGS = [("ec", "ES256"), ("rsa", "RS256")]


# --- sig_key=file: signs ES256 / RS256 ------------------------------------------------------

@pytest.mark.parametrize("name,alg", ALGS)
def test_sig_key_file_signs_with_the_key_type(start_proxy, backend, keys, name, alg):
    p = start_proxy(routes=f"* {backend.addr}\n",
                    conf={"proxy": {"sig_key": f"file:{keys / (name + '.pem')}", "sig_iss": "my-iss"}})
    token = grip_sig(up(p))
    check_signed(token, pem(keys, f"{name}.pub.pem"), alg, iss="my-iss")
    # Never an HMAC whose secret is the file's path or its text.
    for secret in (f"file:{keys / (name + '.pem')}", str(keys / (name + ".pem")), pem(keys, f"{name}.pem")):
        with pytest.raises(AssertionError):
            jwt.verify_hs256(token, secret)


def test_sig_key_relative_file_resolves_against_the_config_dir(start_proxy, backend, keys):
    # The config lives in /tmp/gi-*/, the keys in /tmp/gk-*/.
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {"sig_key": f"file:../{keys.name}/ec.pem"}})
    check_signed(grip_sig(up(p)), pem(keys, "ec.pub.pem"), "ES256")


def test_route_sig_key_file(start_proxy, backend, keys):
    routes = (f"* {backend.addr}\n"
              f"*,path_beg=/rsa,sig_iss=route-rsa,sig_key=file:{keys / 'rsa.pem'} {backend.addr}\n"
              f"*,path_beg=/ec,sig_iss=route-ec,sig_key=file:../{keys.name}/ec.pem {backend.addr}\n")
    p = start_proxy(routes=routes, conf={"proxy": {"sig_key": "global-key", "sig_iss": "global-iss"}})
    assert jwt.verify_hs256(grip_sig(up(p, "/x")), "global-key")["iss"] == "global-iss"
    rsa_token = grip_sig(up(p, "/rsa/x"))
    check_signed(rsa_token, pem(keys, "rsa.pub.pem"), "RS256", iss="route-rsa")
    check_signed(grip_sig(up(p, "/ec/x")), pem(keys, "ec.pub.pem"), "ES256", iss="route-ec")
    # The route's file: value is not a literal secret (it once was).
    for secret in (f"file:{keys / 'rsa.pem'}", pem(keys, "rsa.pem")):
        with pytest.raises(AssertionError):
            jwt.verify_hs256(rsa_token, secret)


# --- upstream_key=file: trusts a PEM-signed Grip-Sig -----------------------------------------

def trusted(proxy, token) -> bool:
    """Sends `token` as Grip-Sig with another Grip-* header: True if both reached the backend as sent
    (trusted client), False if the proxy re-signed and dropped the client's Grip-* headers."""
    hs = up(proxy, headers=[("Grip-Sig", token), ("Grip-Foo", "bar")])
    if values(hs, "Grip-Sig") == [token]:
        assert values(hs, "Grip-Foo") == ["bar"]
        return True
    assert values(hs, "Grip-Foo") == []
    assert jwt.verify_hs256(grip_sig(hs), "own-key")["iss"] == "pushpin"
    return False


def claims(exp_in=600, **extra):
    return {"iss": "cdn", "exp": int(time.time()) + exp_in, **extra}


def upstream_proxy(start_proxy, backend, key_value):
    return start_proxy(routes=f"* {backend.addr}\n",
                       conf={"proxy": {"upstream_key": key_value, "sig_key": "own-key"}})


@pytest.mark.parametrize("name,alg", ALGS)
def test_upstream_key_pem_trusts_a_signed_client(start_proxy, backend, keys, name, alg):
    p = upstream_proxy(start_proxy, backend, f"file:{keys / (name + '.pub.pem')}")
    assert trusted(p, pyjwt.encode(claims(), pem(keys, f"{name}.pem"), algorithm=alg))
    # Expired, or signed by another key: not trusted.
    assert not trusted(p, pyjwt.encode(claims(exp_in=-600), pem(keys, f"{name}.pem"), algorithm=alg))
    if name == "ec":
        assert not trusted(p, pyjwt.encode(claims(), pem(keys, "ec2.pem"), algorithm="ES256"))


@pytest.mark.parametrize("name,alg", ALGS)
def test_upstream_key_pem_rejects_none_and_confusion(start_proxy, backend, keys, name, alg):
    p = upstream_proxy(start_proxy, backend, f"file:{keys / (name + '.pub.pem')}")
    body = jwt.b64url_encode(json.dumps(claims()).encode())
    # alg none, with and without a signature part.
    none = jwt.b64url_encode(b'{"alg":"none","typ":"JWT"}') + "." + body
    assert not trusted(p, none + ".")
    assert not trusted(p, none + "." + jwt.b64url_encode(b"x" * 64))
    # HS256 keyed with the public key's PEM text, the classic confusion.
    assert not trusted(p, jwt.sign_hs256(claims(), pem(keys, f"{name}.pub.pem")))
    # The other asymmetric algorithm: RS256 for an EC key, ES256 for an RSA key.
    if name == "ec":
        assert not trusted(p, pyjwt.encode(claims(), pem(keys, "rsa.pem"), algorithm="RS256"))
    else:
        assert not trusted(p, pyjwt.encode(claims(), pem(keys, "ec.pem"), algorithm="ES256"))
    # A valid token with its header relabelled to the other family.
    good = pyjwt.encode(claims(), pem(keys, f"{name}.pem"), algorithm=alg)
    other = "RS256" if alg == "ES256" else "ES256"
    relabelled = jwt.b64url_encode(json.dumps({"alg": other, "typ": "JWT"}).encode()) + good[good.index("."):]
    assert not trusted(p, relabelled)
    # Control: the same proxy still trusts a good token.
    assert trusted(p, good)


@pytest.mark.parametrize("depth,ok", [(127, True), (128, False)])
def test_upstream_claims_depth_limit(start_proxy, backend, depth, ok):
    """Pushpin 1.36 decodes claims with serde_json (recursion limit 128): 127 nested levels pass,
    128 do not. The claims object is one level."""
    p = upstream_proxy(start_proxy, backend, "up-key")
    arrays = "[" * (depth - 1) + "]" * (depth - 1)
    c = '{"iss":"cdn","exp":%d,"x":%s}' % (int(time.time()) + 600, arrays)
    tok = jwt.b64url_encode(GOOD_HEADER.encode()) + "." + jwt.b64url_encode(c.encode())
    tok += "." + jwt.b64url_encode(hmac.new(b"up-key", tok.encode(), hashlib.sha256).digest())
    assert trusted(p, tok) == ok


@pytest.mark.gripd_only("pushpin 1.36 reads upstream_key only as a public key; a private key file "
                        "loads as nothing and nobody is trusted")
@pytest.mark.parametrize("name,alg", ALGS)
def test_upstream_key_private_pem_verifies_with_its_public_half(start_proxy, backend, keys, name, alg):
    p = upstream_proxy(start_proxy, backend, f"file:{keys / (name + '.pem')}")
    assert trusted(p, pyjwt.encode(claims(), pem(keys, f"{name}.pem"), algorithm=alg))
    assert not trusted(p, jwt.sign_hs256(claims(), pem(keys, f"{name}.pem")))


# --- keys that cannot be loaded stop gripd ----------------------------------------------------

@pytest.mark.gripd_only("pushpin 1.36 starts and silently sends no Grip-Sig (or trusts nobody); gripd "
                        "refuses to start and names the file")
@pytest.mark.parametrize("key,file,why", [
    ("sig_key", "missing.pem", "cannot open: No such file or directory"),
    ("sig_key", "notakey.pem", "not a PEM key"),
    ("sig_key", "ec.pub.pem", "a public key cannot sign"),
    ("sig_key", "p384.pem", "EC key on curve secp384r1: ES256 needs P-256"),
    ("upstream_key", "missing.pem", "cannot open: No such file or directory"),
    ("upstream_key", "notakey.pem", "not a PEM key"),
])
def test_unloadable_key_file_stops_startup(start_proxy, backend, keys, key, file, why):
    with pytest.raises(ProxyStartError) as e:
        start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {key: f"file:{keys / file}"}})
    msg = str(e.value)
    assert f"invalid value for {key}: file {keys / file}: {why}" in msg


@pytest.mark.gripd_only("pushpin 1.36 skips the route's key silently (the global key signs); gripd "
                        "refuses to start and names the file")
def test_unloadable_route_key_file_stops_startup(start_proxy, backend, keys):
    with pytest.raises(ProxyStartError) as e:
        start_proxy(routes=f"*,sig_iss=r,sig_key=file:{keys / 'missing.pem'} {backend.addr}\n")
    assert f"sig_key: file {keys / 'missing.pem'}: cannot open" in str(e.value)


# --- WebSocket-over-HTTP requests are signed with the same key --------------------------------

@pytest.mark.parametrize("name,alg", ALGS)
def test_woh_requests_signed_with_pem_key(start_proxy, keys, name, alg):
    from wsutil import WohBackend, connect, recv, run
    woh = WohBackend()
    woh.on_text = lambda t, r: [("TEXT", "m:" + t)]  # "m:": a plain message under the grip extension
    try:
        p = start_proxy(routes=f"* {woh.addr},over_http\n",
                        conf={"proxy": {"sig_key": f"file:{keys / (name + '.pem')}"}})

        async def main():
            ws = await connect(p, "/ws")
            await ws.send("hi")
            assert await recv(ws) == "hi"
            await ws.close()
        run(main())
        r = woh.wait_event("OPEN")
        check_signed(r.header("Grip-Sig"), pem(keys, f"{name}.pub.pem"), alg)
        r = woh.wait_event("TEXT")
        check_signed(r.header("Grip-Sig"), pem(keys, f"{name}.pub.pem"), alg)
    finally:
        woh.stop()


# --- routes reload re-reads key files ---------------------------------------------------------

def signed_with(proxy, path, public_pem, alg) -> bool:
    try:
        pyjwt.decode(grip_sig(up(proxy, path)), public_pem, algorithms=[alg])
        return True
    except pyjwt.InvalidTokenError:
        return False


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_routes_reload_picks_up_a_new_key_file(start_proxy, backend, keys):
    line = "*,path_beg=/r,sig_iss=r,sig_key=file:{} %s\n* %s\n" % (backend.addr, backend.addr)
    p = start_proxy(routes=line.format(keys / "ec.pem"))
    assert signed_with(p, "/r/x", pem(keys, "ec.pub.pem"), "ES256")
    p.write_routes(line.format(keys / "rsa.pem"), atomic=True)
    assert wait_until(lambda: signed_with(p, "/r/x", pem(keys, "rsa.pub.pem"), "RS256"))


@pytest.mark.gripd_only("pushpin 1.36 applies the reload and signs that route with the global key; "
                        "gripd keeps the running routes and logs why")
def test_routes_reload_with_an_unloadable_key_keeps_the_old_routes(start_proxy, backend, keys):
    line = "*,path_beg=/r,sig_iss=r,sig_key=file:{} %s\n* %s\n" % (backend.addr, backend.addr)
    p = start_proxy(routes=line.format(keys / "ec.pem"), conf={"proxy": {"sig_key": "global"}})
    p.write_routes(line.format(keys / "missing.pem") + f"*,path_beg=/new {backend.addr}\n", atomic=True)
    p.signal(signal.SIGHUP)
    assert wait_until(lambda: "routes not reloaded" in p.log())
    assert f"sig_key: file {keys / 'missing.pem'}: cannot open" in p.log()
    assert signed_with(p, "/r/x", pem(keys, "ec.pub.pem"), "ES256")


@pytest.mark.gripd_only("pushpin 1.36's JWT library reads only PKCS#8 private keys: with an `EC PRIVATE "
                        "KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1) file it silently sends no Grip-Sig")
@pytest.mark.parametrize("name,alg,tool", [("ec", "ES256", "ec"), ("rsa", "RS256", "rsa")])
def test_sig_key_traditional_pem_forms(start_proxy, backend, keys, name, alg, tool):
    out = keys / f"{name}.traditional.pem"
    args = ["openssl", tool, "-in", str(keys / f"{name}.pem"), "-out", str(out)]
    if tool == "rsa":
        args.append("-traditional")
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    assert ("EC PRIVATE KEY" if tool == "ec" else "RSA PRIVATE KEY") in out.read_text()
    p = start_proxy(routes=f"* {backend.addr}\n", conf={"proxy": {"sig_key": f"file:{out}"}})
    check_signed(grip_sig(up(p)), pem(keys, f"{name}.pub.pem"), alg)
