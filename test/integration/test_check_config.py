"""`gripd --check-config`: checks the config, routes, key files and certificates without opening a
port, as `nginx -t` does; the systemd unit runs it before a start and a reload. Pushpin has no such
option: every test here is gripd_only."""

import subprocess
from pathlib import Path

import pytest

from harness.proxy import DEBIAN_CONF, edit_conf, proxy_command, unique_free_port

pytestmark = pytest.mark.gripd_only("pushpin 1.36 has no --check-config")


def write_config(d: Path, routes: str, conf: dict = None) -> Path:
    base = {"runner": {"http_port": str(unique_free_port())}, "proxy": {"routesfile": "routes"}}
    for sec, kv in (conf or {}).items():
        base.setdefault(sec, {}).update(kv)
    path = d / "pushpin.conf"
    path.write_text(edit_conf(DEBIAN_CONF.read_text(), base))
    (d / "routes").write_text(routes)
    return path


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(proxy_command() + ["--config", str(path), "--check-config"], capture_output=True,
                          text=True, timeout=20)


def test_a_good_config_passes_and_says_how_many_routes(tmp_path):
    path = write_config(tmp_path, "* 127.0.0.1:8080\napi.example 127.0.0.1:8081,over_http\n")
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"gripd: configuration OK: {path}, 2 routes"


def test_a_bad_route_line_fails_naming_file_and_line(tmp_path):
    path = write_config(tmp_path, "* 127.0.0.1:8080\n* 127.0.0.1:8081,,\n")
    r = check(path)
    assert r.returncode == 1
    assert f"{tmp_path / 'routes'}:2:" in r.stderr
    assert "configuration check failed" in r.stderr


def test_an_unloadable_signing_key_fails(tmp_path):
    path = write_config(tmp_path, f"*,sig_key=file:{tmp_path / 'missing.pem'} 127.0.0.1:8080\n")
    r = check(path)
    assert r.returncode == 1
    assert "missing.pem" in r.stderr


def test_https_ports_without_certificates_fails(tmp_path):
    path = write_config(tmp_path, "* 127.0.0.1:8080\n", {"runner": {"https_ports": str(unique_free_port())}})
    r = check(path)
    assert r.returncode == 1
    assert "runner/certs" in r.stderr


def test_an_empty_routes_file_fails(tmp_path):
    r = check(write_config(tmp_path, "# nothing\n"))
    assert r.returncode == 1
    assert "no routes" in r.stderr


def test_a_bad_config_value_fails_before_anything_else(tmp_path):
    path = write_config(tmp_path, "* 127.0.0.1:8080\n", {"runner": {"client_maxconn": "lots"}})
    r = check(path)
    assert r.returncode != 0
    assert "client_maxconn" in r.stderr


def test_warnings_are_printed_but_do_not_fail(tmp_path):
    path = write_config(tmp_path, "* 127.0.0.1:8080,no_such_option=1\n")
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert "no_such_option" in r.stderr and "[WARN]" in r.stderr


def test_the_check_opens_no_port(tmp_path):
    port = unique_free_port()
    path = write_config(tmp_path, "* 127.0.0.1:8080\n", {"runner": {"http_port": str(port)}})
    import socket
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:  # the port is taken: a check that tried to listen would fail
        r = check(path)
        assert r.returncode == 0, r.stderr
    finally:
        holder.close()
