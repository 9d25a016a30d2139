"""Minimal JWT (JWS compact) helpers for Grip-Sig checks: HS256 sign/verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def decode(token: str):
    """(header, payload, signing_input, signature) without verification."""
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), f"{h}.{p}".encode(), b64url_decode(s)


def key_bytes(key) -> bytes:
    """Config-style key: "base64:..." prefix or plain text."""
    if isinstance(key, bytes):
        return key
    if key.startswith("base64:"):
        return base64.b64decode(key[len("base64:"):])
    return key.encode()


def verify_hs256(token: str, key) -> dict:
    """Return the payload; raise AssertionError if alg/signature is wrong."""
    header, payload, signing_input, sig = decode(token)
    assert header.get("alg") == "HS256", f"alg is {header.get('alg')!r}"
    expect = hmac.new(key_bytes(key), signing_input, hashlib.sha256).digest()
    assert hmac.compare_digest(expect, sig), "Grip-Sig signature does not verify with the key"
    return payload


def sign_hs256(payload: dict, key) -> str:
    h = b64url_encode(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    p = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    s = b64url_encode(hmac.new(key_bytes(key), f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{s}"


def now() -> int:
    return int(time.time())
