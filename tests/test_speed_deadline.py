"""One deadline per check: the paths of api_paths, frontend_routes and the assets of index.html are asked at once
(a bounded number at a time), so ten paths that drip a byte at a time cost about one timeout, not ten. Against
real listeners on 127.0.0.1 that drip, next to paths that answer at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pytest_opscheck.config import Settings
from pytest_opscheck.config.settings import ApiPath
from pytest_opscheck.probes.diagnosis import api, frontend
from pytest_opscheck.probes.resource.site import Site, open_frontend
from pytest_opscheck.probes.transport.concurrent import BOUND

TIMEOUT = 1.0
# What "about one timeout" may take on a loaded shared machine: well below the ten timeouts that asking one
# path after the other would take, with room for a slow scheduler (a bound at TIMEOUT + a little was a
# timing assertion that failed under load, not a property).
ABOUT_ONE_TIMEOUT = 3 * TIMEOUT
INDEX = (
    b'<!doctype html><html><head><title>App</title><link rel="stylesheet" href="/drip/app.css">'
    b'<script src="/drip/app.js"></script><script src="/assets/ok.js"></script></head><body></body></html>'
)


class Dripping:
    """An HTTP server on 127.0.0.1: a path under /drip/ answers one byte every 0.3 s and never ends; /assets/
    answers a script at once; any other path the app shell. Every connection in a thread of its own."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        self.asked: list[str] = []
        threading.Thread(target=self._accept, name="dripping", daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            path = request.split(b" ", 2)[1].decode()
            self.asked.append(path)
            if path.startswith("/drip/"):
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 1000:
                    if self.stop.wait(0.3):
                        return
                    conn.sendall(bytes([byte]))
                return
            kind, body = (b"application/javascript", b"/* ok */") if path.startswith("/assets/") else (
                b"text/html", INDEX)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def dripping() -> Iterator[Dripping]:
    server = Dripping()
    yield server
    server.close()


def settings(server: Dripping) -> Settings:
    url = f"http://127.0.0.1:{server.port}"
    return Settings(backend_url=url, frontend_url=url, timeout=TIMEOUT)


def timed(call: object) -> tuple[float, object]:
    started = time.monotonic()
    result = call()  # type: ignore[operator]
    return time.monotonic() - started, result


def test_ten_dripping_api_paths_share_one_timeout(dripping: Dripping) -> None:
    site = Site("backend", f"http://127.0.0.1:{dripping.port}", settings(dripping))
    paths = [f"/drip/{i}" for i in range(10)]
    healthy = ["/api/items", "/api/users"]
    entries = [ApiPath(p, auth=False) for p in [*paths, *healthy]]
    try:
        elapsed, samples = timed(lambda: api.api_samples(site, entries))
        assert isinstance(samples, list)
        # One after the other this is ten timeouts (10 s); at once, about one.
        assert elapsed < ABOUT_ONE_TIMEOUT, f"{len(paths)} dripping paths took {elapsed:.2f} s"
        by_path = {sample.path: sample.answer for sample in samples}
        for path in paths:
            cause = by_path[path]
            assert isinstance(cause, str) and cause.startswith("timed out after "), cause
            assert cause.endswith(f" s waiting for http://127.0.0.1:{dripping.port}{path}"), cause
        # The paths that answer are not cut by the timeouts of the others (each worker has a client of its own).
        for path in healthy:
            answer = by_path[path]
            assert not isinstance(answer, str), answer
            assert answer.status == 200
        # The latency check reads the same answers: nothing is asked again.
        asked = len(dripping.asked)
        elapsed, finding = timed(lambda: api.latency(api.api_samples(site, entries), 5.0))
        assert len(dripping.asked) == asked
        assert elapsed < TIMEOUT, "asking a dripping path again would wait its timeout"
        assert not finding.ok and finding.cause.startswith("10 API path(s) slower than 5 s")  # type: ignore[attr-defined]
    finally:
        site.close()


def test_paths_beyond_the_bound_wait_inside_the_same_deadline(dripping: Dripping) -> None:
    site = Site("backend", f"http://127.0.0.1:{dripping.port}", settings(dripping))
    paths = [f"/drip/{i}" for i in range(BOUND + 8)]
    try:
        elapsed, samples = timed(lambda: api.api_samples(site, [ApiPath(p, auth=False) for p in paths]))
    finally:
        site.close()
    assert isinstance(samples, list)
    assert elapsed < ABOUT_ONE_TIMEOUT, f"{len(paths)} dripping paths took {elapsed:.2f} s"
    causes = [sample.answer for sample in samples]
    timed_out = [c for c in causes if isinstance(c, str) and c.startswith("timed out after ")]
    not_asked = [c for c in causes if isinstance(c, str) and c.startswith("not asked: the check's 1 s deadline")]
    # At most BOUND exchanges at once: the first BOUND time out, the rest are never started (the counts, not
    # the clock, say that no second round was waited for).
    assert len(timed_out) == BOUND and len(not_asked) == len(paths) - BOUND, causes
    assert len(dripping.asked) == BOUND


def test_dripping_deep_links_and_assets_share_one_timeout(dripping: Dripping) -> None:
    site = open_frontend(settings(dripping))
    routes = [f"/drip/route{i}" for i in range(10)]
    try:
        elapsed, finding = timed(lambda: frontend.spa_routes(site, ["/login", *routes]))
        assert elapsed < ABOUT_ONE_TIMEOUT, f"{len(routes)} dripping deep links took {elapsed:.2f} s"
        assert not finding.ok  # type: ignore[attr-defined]
        assert finding.cause.startswith("10 of 11 deep link(s) fail: /drip/route0 (timed out after ")  # type: ignore[attr-defined]
        assert "/login" not in finding.cause  # type: ignore[attr-defined]
        elapsed, finding = timed(lambda: frontend.frontend_assets(site))
        assert elapsed < ABOUT_ONE_TIMEOUT
        assert finding.cause.startswith("2 of 3 asset(s) do not load: /drip/app.css (timed out")  # type: ignore[attr-defined]
        assert "/assets/ok.js" not in finding.cause  # type: ignore[attr-defined]
    finally:
        site.close()
