"""Black-box integration tests for gripd, runnable against the reference pushpin.

    GRIPD_TARGET=pushpin /usr/bin/python3 -m pytest -q test/integration   # reference
    GRIPD_BIN=build/gripd /usr/bin/python3 -m pytest -q test/integration  # gripd

Fixtures (see README.md):
    backend        a started harness.backend.Backend (echo handler by default)
    make_backend   factory for more backends: make_backend(handler=None)
    start_proxy    factory: start_proxy(routes="* test", conf={...}, args=[...], wait=True)
    proxy          proxy routed "* <backend>"; override per test with
                   @pytest.mark.proxy(routes="* {backend},...", conf={"proxy": {...}}, args=[...])
    target         "gripd" or "pushpin"
Markers:
    gripd_only("reason")    skipped against pushpin (gripd deliberately differs)
    pushpin_only("reason")  skipped against gripd
"""

from __future__ import annotations

import signal

import pytest

from harness.backend import Backend
from harness.proxy import IS_PUSHPIN, TARGET, Proxy

TEST_TIMEOUT = 60  # hard per-phase bound (seconds)


def pytest_configure(config):
    config.addinivalue_line("markers", "gripd_only(reason): gripd deliberately differs from pushpin; skipped on pushpin")
    config.addinivalue_line("markers", "pushpin_only(reason): reference-only behaviour; skipped on gripd")
    config.addinivalue_line("markers", "proxy(routes=None, conf=None, args=None): configure the `proxy` fixture")
    config.addinivalue_line("markers", "fd_exhaustion: runs the proxy out of file descriptors on purpose "
                            "(UBSan's vptr reports are not reliable then and are ignored)")
    config.addinivalue_line("markers", "crossloop: exercises delivery across worker loops (CI reruns these under "
                            "TSan with GRIPD_WORKERS=4)")
    config.addinivalue_line("markers", "deploy: haproxy + three gripd instances + Redis (harness/deployment.py; "
                            "`-m deploy` runs them alone)")


def pytest_report_header(config):
    return f"gripd integration target: {TARGET}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        m = item.get_closest_marker("gripd_only")
        if m is not None and IS_PUSHPIN:
            item.add_marker(pytest.mark.skip(reason="gripd only: " + (m.args[0] if m.args else "")))
        m = item.get_closest_marker("pushpin_only")
        if m is not None and not IS_PUSHPIN:
            item.add_marker(pytest.mark.skip(reason="pushpin only: " + (m.args[0] if m.args else "")))


# --- hard time bound per test phase (SIGALRM in the main thread) --------------

def _alarm(signum, frame):
    raise TimeoutError(f"test phase exceeded {TEST_TIMEOUT}s")


def _bounded(phase):
    @pytest.hookimpl(hookwrapper=True)
    def hook(item, *a, **kw):
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TEST_TIMEOUT)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    hook.__name__ = f"pytest_runtest_{phase}"
    return hook


pytest_runtest_setup = _bounded("setup")
pytest_runtest_call = _bounded("call")
pytest_runtest_teardown = _bounded("teardown")


# --- attach proxy logs to failing reports ---------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for i, p in enumerate(getattr(item, "_gripd_proxies", [])):
            try:
                rep.sections.append((f"{TARGET} log #{i} ({p.dir})", p.log()))
            except Exception as e:  # pragma: no cover
                rep.sections.append((f"{TARGET} log #{i}", f"unavailable: {e!r}"))


# --- fixtures -------------------------------------------------------------------

@pytest.fixture
def target():
    return TARGET


@pytest.fixture(params=["h1", "h2"])
def client_proto(request):
    """Runs a test once with HTTP/1.1 clients and once with HTTP/2 clients (h2c with prior
    knowledge): griputil.hold() and griputil.client() speak it. HTTP/2 is gripd's own (pushpin 1.36
    serves HTTP/1.1 only), so the h2 run is skipped on pushpin."""
    import griputil
    if request.param == "h2" and IS_PUSHPIN:
        pytest.skip("pushpin 1.36 serves HTTP/1.1 only (HTTP/2 is gripd's, issue 16)")
    griputil.CLIENT_PROTO = request.param
    yield request.param
    griputil.CLIENT_PROTO = "h1"


@pytest.fixture
def make_backend():
    made = []

    def _make(handler=None):
        b = Backend(handler)
        made.append(b)
        return b

    yield _make
    for b in made:
        b.stop()


@pytest.fixture
def backend(make_backend):
    return make_backend()


@pytest.fixture
def proxy_wait_publish():
    """Whether proxy startup also waits for the publish (control API) port.
    Test modules that only exercise proxying override this to return False."""
    return True


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "runtime error:")


@pytest.fixture
def start_proxy(request, proxy_wait_publish):
    """Factory: start_proxy(routes="* test", conf=None, args=None, wait=True,
    conf_template=None, http_port=None, plumbing=True, wait_publish=None, before_start=None)
    -> harness.proxy.Proxy (before_start(dir) runs before the process starts)
    (stopped at teardown). conf: {"proxy": {"sig_key": "k"}} or {"proxy.sig_key": "k"};
    a None value deletes the key."""
    started = []
    request.node._gripd_proxies = started

    def _start(routes="* test", conf=None, args=None, wait=True, conf_template=None, http_port=None,
               plumbing=True, wait_publish=None, before_start=None):
        p = Proxy(routes=routes, conf=conf, args=args, wait=False,
                  conf_template=conf_template, http_port=http_port, plumbing=plumbing,
                  wait_publish=proxy_wait_publish if wait_publish is None else wait_publish,
                  before_start=before_start)
        started.append(p)
        if wait:
            p.wait_ready()
        return p

    yield _start
    reports = []
    # While the process is out of descriptors, UBSan's own vptr check cannot work: it probes memory
    # through a pipe (sanitizer_common's IsAccessibleMemoryRange), pipe() fails with EMFILE, and every
    # live object it checks is reported as having an "invalid vptr". Tests that exhaust descriptors on
    # purpose (marked fd_exhaustion) drop those reports; every other sanitizer report still fails them.
    fd_exhaustion = request.node.get_closest_marker("fd_exhaustion") is not None
    for p in started:
        p.close()
        # A sanitizer build reports at exit too (leaks, errors while stopping): that fails the test.
        log = p.log()
        if fd_exhaustion:
            log = "\n".join(l for l in log.splitlines()
                            if not ("runtime error:" in l and "which does not point to an object of type" in l))
        for marker in SANITIZER_MARKERS:
            at = log.find(marker)
            if at >= 0:
                reports.append(log[max(0, at - 200):at + 3000])
                break
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed and not reports:
        for p in started:
            p.cleanup()  # failing tests keep their dir (shown in the report) for post-mortem
    if reports:
        pytest.fail("the proxy's sanitizer reported:\n" + "\n----\n".join(reports), pytrace=False)


@pytest.fixture
def proxy(request, backend, start_proxy):
    """Proxy routed to `backend` ("* <backend>"). Per test:
    @pytest.mark.proxy(routes="...{backend}...", conf={...}, args=[...])"""
    m = request.node.get_closest_marker("proxy")
    kw = dict(m.kwargs) if m else {}
    routes = kw.pop("routes", "* {backend}")
    if routes is not None:
        routes = routes.replace("{backend}", backend.addr)
    return start_proxy(routes=routes, **kw)
