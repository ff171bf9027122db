"""Bounds a hostile target cannot break: a nested `Content-Encoding: gzip, gzip` bomb (1,829 bytes that inflate
to 1 GiB) is capped across its layers, under --opscheck-wait too, and nothing of a probe outlives the sweep;
a 100 MB WebSocket frame is named as a message over the limit, refused unread."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# 1 GiB of zeros, gzipped twice: 1,827 bytes (made by bench/hostile.py's `nested_bomb()`, kept as data).
NESTED = (Path(__file__).parent / "data" / "gzip-gzip-1GiB.bin").read_bytes()


class Peers:
    """Raw TCP peers on 127.0.0.1, one thread per connection, closed at the end."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()

    def serve(self, handler: Callable[[socket.socket], None]) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        listener.settimeout(0.2)
        self.sockets.append(listener)

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                self.sockets.append(conn)
                threading.Thread(target=self._guard, args=(handler, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return int(listener.getsockname()[1])

    @staticmethod
    def _guard(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            handler(conn)

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def peers() -> Iterator[Peers]:
    found = Peers()
    yield found
    found.close()


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def nested_bomb(conn: socket.socket) -> None:
    """503, with a body of 1,829 bytes in two gzip layers that inflate to 1 GiB."""
    while read_head(conn):
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Encoding: gzip, gzip\r\n"
                     + f"Content-Length: {len(NESTED)}\r\n\r\n".encode() + NESTED)


def dripping(conn: socket.socket) -> None:
    read_head(conn)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Pad: " + b"a" * 10_000:
        time.sleep(0.3)
        conn.sendall(bytes([byte]))


def huge_frame(conn: socket.socket) -> None:
    """Upgrades, then starts a 100 MB binary frame."""
    head = read_head(conn)
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    size = 100 * 1024 * 1024
    conn.sendall(b"\x82\x7f" + struct.pack("!Q", size))
    chunk = b"x" * 65536
    for _ in range(size // len(chunk)):
        conn.sendall(chunk)


# A small launcher: the sweep's peak RSS is its own (a child forked from a big process starts that big).
LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(os.wait4(child.pid, 0)[2].ru_maxrss)")


def measured_sweep(root: Path, *args: str) -> tuple[float, dict[str, dict[str, object]]]:
    """A sweep in its own process: its peak RSS in MB (from wait4, that process alone) and its records."""
    run = subprocess.run(
        [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider",
         "--opscheck-json", "out.json", *args], cwd=root, capture_output=True, text=True, timeout=120,
    )
    records = {r["id"]: r for r in json.loads((root / "out.json").read_text())["checks"]}
    return int(run.stdout.strip().splitlines()[-1]) / 1024, records


@pytest.mark.parametrize("wait", [False, True], ids=["sweep", "under --opscheck-wait"])
def test_nested_gzip_bomb_is_capped_across_layers(pytester: pytest.Pytester, peers: Peers, wait: bool) -> None:
    assert len(NESTED) < 2_000
    port = peers.serve(nested_bomb)
    pytester.makefile(".toml", opscheck=f'backend_url = "http://127.0.0.1:{port}"\n'
                                        f'frontend_url = "http://127.0.0.1:{port}"\ntimeout = 3\n')
    extra = ("--opscheck-wait", "4") if wait else ()
    peak_mb, records = measured_sweep(pytester.path, "-k", "backend.health or frontend.root", *extra)
    for check in ("backend.health", "frontend.root"):
        assert records[check]["outcome"] == "failed", records[check]
        assert "503" in str(records[check]["message"]), records[check]
    assert "(body truncated at 2000000 bytes)" in json.dumps(records["backend.health"]["evidence"])
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"


def test_nothing_of_a_probe_outlives_the_sweep(pytester: pytest.Pytester, peers: Peers) -> None:
    bombed, slow = peers.serve(nested_bomb), peers.serve(dripping)
    pytester.makefile(".toml", opscheck=f'backend_url = "http://127.0.0.1:{slow}"\n'
                                        f'frontend_url = "http://127.0.0.1:{bombed}"\ntimeout = 1\n')
    before = set(threading.enumerate())
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "backend. or frontend.")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    deadline = time.monotonic() + 3
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("opscheck")]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [t for t in left if t.is_alive()]
    assert not left, f"still running after the sweep: {[t.name for t in left]}"


def test_a_100_mb_websocket_frame_is_a_message_over_the_limit(pytester: pytest.Pytester, peers: Peers) -> None:
    port = peers.serve(huge_frame)
    pytester.makefile(".toml", opscheck=f'websocket_url = "ws://127.0.0.1:{port}/realtime"\ntimeout = 3\n')
    peak_mb, records = measured_sweep(pytester.path, "-k", "ws.ping")
    record = records["ws.ping"]
    assert record["outcome"] == "failed"
    assert record["message"].startswith("the server sent a message over the 1 MiB message limit (a frame of "
                                        "104,857,600 bytes)"), record["message"]
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"


def test_body_reader_decodes_each_layer_under_one_cap() -> None:
    import zlib

    from pytest_opscheck.probes.transport.web import INFLATE_LIMIT, BodyReader

    def fed(encoding: str, data: bytes, limit: int = 1000) -> BodyReader:
        reader = BodyReader(encoding, limit)
        for at in range(0, len(data), 700):
            reader.feed(data[at : at + 700])
        return reader

    raw_deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert bytes(fed("deflate", raw_deflate.compress(b"raw") + raw_deflate.flush()).body) == b"raw"
    assert bytes(fed("deflate", zlib.compress(b"wrapped")).body) == b"wrapped"
    assert bytes(fed("identity, GZIP", gzip_bytes(b"hello")).body) == b"hello"
    cut = fed("gzip", gzip_bytes(b"y" * 50_000))
    assert len(cut.body) == 1000 and cut.truncated
    bomb = fed("gzip, gzip", NESTED, limit=10**10)  # no body cap: the inflation cap across layers still holds
    assert bomb.truncated and bomb.inflated <= INFLATE_LIMIT + 65_536 and "inflates past" in bomb.note
    assert fed("br", b"\x1b\x00").note == "content-encoding br not decoded"
    assert fed("gzip, gzip, gzip, gzip", b"x").note == "4 content-encoding layers, not decoded"
    broken = fed("gzip", b"this is not gzip")
    assert broken.truncated and broken.note == "body does not decode as gzip: cut there"


def gzip_bytes(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


def test_an_smtp_greeting_that_never_ends_is_cut_off_not_kept() -> None:
    """A server that sends "220-" continuation lines without end, each well within the socket's timeout: the
    session is cut off once it has sent a megabyte, with that as its cause (it used to be kept whole)."""
    from pytest_opscheck.config import Settings, Smtp
    from pytest_opscheck.probes.result import TargetUnreachable
    from pytest_opscheck.probes.transport.smtp import SESSION_BYTES, start_session

    server = socket.create_server(("127.0.0.1", 0))
    sent = [0]

    def endless() -> None:
        conn, _ = server.accept()
        line = b"220-" + b"x" * 996 + b"\r\n"
        with contextlib.suppress(OSError), conn:
            while sent[0] < 50 * SESSION_BYTES:
                conn.sendall(line)
                sent[0] += len(line)

    thread = threading.Thread(target=endless, daemon=True)
    thread.start()
    settings = Settings(smtp=Smtp(host="127.0.0.1", port=server.getsockname()[1]), timeout=5)
    started = time.monotonic()
    with pytest.raises(TargetUnreachable) as caught:
        start_session(settings)
    server.close()
    assert time.monotonic() - started < 5
    assert "cut off" in caught.value.cause
    assert sent[0] < 10 * SESSION_BYTES  # the client stopped reading soon after the cap


def test_a_huge_env_file_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    from pytest_opscheck.config import ConfigError, load_settings
    from pytest_opscheck.config.env import ENV_FILE_LIMIT

    (tmp_path / "opscheck.toml").write_text('backend_url = "http://127.0.0.1:9"\n')
    with (tmp_path / ".env").open("wb") as env:
        env.write(b"A=" + b"x" * (ENV_FILE_LIMIT * 3) + b"\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"\.env: larger than 1 MiB: not an env file"):
        load_settings(tmp_path, environ={})
    assert time.monotonic() - started < 5


def test_json_nested_past_the_parsers_depth_is_not_json() -> None:
    from pytest_opscheck.probes.transport.web import Answer

    bomb = b"[" * 200_000 + b"]" * 200_000
    assert Answer("GET", "http://127.0.0.1:9/health", 200, "OK", {}, bomb).json() is None
