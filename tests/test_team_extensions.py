"""A team's own targets, keys, reporters and mistakes, through the hooks the product itself uses (SPEC.md:
"Extending it"). The team's "cache" is a real TCP service on loopback that answers PING with PONG."""

from __future__ import annotations

import http.server
import json
import re
import socket
import socketserver
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

PLANTED = "cAcHe-S3cret-9f2e71"

CONFTEST = '''
import http.server
import json
import re
import socket

import pytest
from pytest_opscheck import TargetUnreachable


class Cache:
    def __init__(self, sock):
        self.sock = sock

    def ping(self):
        self.sock.sendall(b"PING\\r\\n")
        return self.sock.recv(64)

    def close(self):
        self.sock.close()


def open_cache(url, timeout):
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    try:
        return Cache(socket.create_connection((host, int(port)), timeout=timeout))
    except OSError as exc:
        raise TargetUnreachable("cache", f"{url}: {exc.strerror or exc}") from None


def pytest_opscheck_targets(targets):
    targets.add("cache", opener=open_cache, setting="extra.cache_url", root_check="cache.reachable")


def pytest_opscheck_summary(summary, config):
    records = [{"id": r.check_id, "outcome": r.outcome, "message": r.message, "evidence": r.evidence,
                "caused_by": r.caused_by} for r in summary.records]
    out = {"verdict": summary.verdict, "fix_first": list(summary.fix_first), "swept": list(summary.swept),
           "records": records}
    (config.rootpath / "team-report.json").write_text(json.dumps(out))
'''

CHECKS = '''
import pytest
from pytest_opscheck import expect, fail, Finding


@pytest.mark.severity("P1")
@pytest.mark.resolution("Restart the cache.")
def test_reachable(opscheck_targets, opscheck_config):
    cache = opscheck_targets.get("cache")
    answer = cache.ping()
    expect(Finding.passed({"ping": answer.decode()}) if answer.startswith(b"PONG") else
           Finding.failed(f"cache answered {answer!r} (password {opscheck_config.extra['cache_password']})"))


@pytest.mark.severity("P2")
@pytest.mark.depends_on("cache")
@pytest.mark.topics("queue")
def test_hit_ratio(opscheck_targets, opscheck_config):
    """Warm the cache after a restart."""
    cache = opscheck_targets.get("cache")
    if not cache.ping().startswith(b"PONG"):
        fail("no hit ratio: the cache does not answer")
'''

RUNBOOK = """# Team runbook

## Queue backlog

**Diagnosis:**
1. Check the queue length: `redis-cli llen jobs`

**Resolution:**
1. Scale the workers.
"""


class _Pong(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(64):
            self.request.sendall(b"PONG\r\n")


@pytest.fixture(scope="module")
def cache_server() -> Iterator[int]:
    """A real TCP service on loopback, the team's "cache"."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Pong)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def team_project(pytester: pytest.Pytester, extra: str, top: str = "", runbook: bool = True) -> Path:
    """The team's project: its checks folder (a conftest with its target and reporter), its runbook, its config."""
    if runbook:
        (pytester.path / "runbook.md").write_text(RUNBOOK)
        top += '\nrunbook = "runbook.md"'
    pytester.makefile(".toml", opscheck=f'checks = ["ops"]\n{top}\n[extra]\n{extra}\n')
    ops = pytester.mkdir("ops")
    (ops / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (ops / "test_cache.py").write_text(textwrap.dedent(CHECKS))
    return pytester.path


def sweep(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider", "-k", "cache.",
                                         "--opscheck-json", "out.json", *args)


def test_team_target_healthy_passes_and_is_swept(
    pytester: pytest.Pytester, cache_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PASSWORD", PLANTED)
    team_project(pytester, f'cache_url = "tcp://127.0.0.1:{cache_server}"\ncache_password = "${{CACHE_PASSWORD}}"')
    result = sweep(pytester)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=2)
    team = json.loads((pytester.path / "team-report.json").read_text())
    assert "cache" in team["swept"]
    outcomes = {r["id"]: r["outcome"] for r in team["records"]}
    assert outcomes == {"cache.reachable": "passed", "cache.hit_ratio": "passed"}


def test_team_target_down_is_the_root_of_its_dependents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_PASSWORD", PLANTED)
    port = closed_port()
    team_project(pytester, f'cache_url = "tcp://127.0.0.1:{port}"\ncache_password = "${{CACHE_PASSWORD}}"')
    result = sweep(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*fix first: cache.reachable*"])
    by_id = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert by_id["cache.reachable"]["message"].startswith(f"cache: tcp://127.0.0.1:{port}:")
    assert by_id["cache.reachable"]["caused_by"] is None
    assert by_id["cache.hit_ratio"]["caused_by"] == "cache.reachable"
    team = json.loads((pytester.path / "team-report.json").read_text())
    assert team["fix_first"] == ["cache.reachable"]


def test_team_reporter_gets_the_redacted_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PONG-less cache: the failure's message carries the extra table's secret-named value, which no file shows."""
    monkeypatch.setenv("CACHE_PASSWORD", PLANTED)

    class _Wrong(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(64):
                self.request.sendall(PLANTED.encode() + b"\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Wrong)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        team_project(pytester, f'cache_url = "tcp://127.0.0.1:{server.server_address[1]}"\n'
                               'cache_password = "${CACHE_PASSWORD}"')
        result = sweep(pytester, "--html", "report.html")
    finally:
        server.shutdown()
        server.server_close()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    team = (pytester.path / "team-report.json").read_text()
    assert "cache answered" in team and "***" in team
    for name in ("team-report.json", "out.json", "report.html"):
        assert PLANTED not in (pytester.path / name).read_text(), name
    assert PLANTED not in result.stdout.str()


def test_team_target_key_absent_is_skipped_as_not_configured(pytester: pytest.Pytester) -> None:
    team_project(pytester, 'other = "x"')
    result = sweep(pytester)
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # nothing checked: no verdict
    by_id = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert by_id["cache.reachable"]["message"] == "not configured: extra.cache_url"


def test_team_target_variable_unset_is_counted(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHE_URL", raising=False)
    team_project(pytester, 'cache_url = "${CACHE_URL}"')
    result = sweep(pytester)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["NO VERDICT*2 not run: variable unset*"])


def test_unknown_topic_fails_that_check_alone(pytester: pytest.Pytester, cache_server: int) -> None:
    """Without the team's runbook, "queue" is no topic: that check fails with the mistake, the other passes."""
    team_project(pytester, f'cache_url = "tcp://127.0.0.1:{cache_server}"\ncache_password = "x"', runbook=False)
    result = sweep(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*cache.hit_ratio*", "*unknown topic 'queue'*"])


def test_duplicate_check_id_is_a_usage_error_naming_both_files(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n')
    ops = pytester.mkdir("ops")
    (ops / "test_db.py").write_text("import pytest\n\n@pytest.mark.severity('P1')\ndef test_reachable():\n    pass\n")
    result = pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*check id db.reachable is taken twice*ops/test_db.py::test_reachable*"])
    assert "checks/test_db.py::test_reachable" in result.stderr.str()


def test_disable_switches_checks_off_by_pattern(pytester: pytest.Pytester, cache_server: int) -> None:
    team_project(pytester, f'cache_url = "tcp://127.0.0.1:{cache_server}"\ncache_password = "x"',
                 'disable = ["cache.hit_*"]', runbook=False)  # disabled: its unknown topic is no matter
    result = sweep(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
    by_id = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert by_id["cache.hit_ratio"]["outcome"] == "skipped"
    assert by_id["cache.hit_ratio"]["message"] == "disabled: cache.hit_*"


def test_plain_pytest_beside_a_checks_folder_collects_none_of_it(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.opscheck]\nchecks = ["ops"]\n')
    ops = pytester.mkdir("ops")
    (ops / "test_cache.py").write_text(textwrap.dedent(CHECKS))
    pytester.makepyfile(test_app="def test_app():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert "fixture 'opscheck_targets' not found" not in result.stdout.str()


def readme_team_example() -> dict[str, str]:
    """The README's team target and reporter, as written there: the TOML, the conftest and the checks."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    part = text[text.index("### A team's own target and reporter"):]
    blocks = re.findall(r"```(toml|python)\n(.*?)```", part, re.DOTALL)
    files = {}
    for kind, body in blocks[:3]:
        name = body.splitlines()[0].removeprefix("# ").strip() if kind == "python" else "opscheck.toml"
        files[name] = body
    return files


def test_readme_team_example_runs_as_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's cache target down: the team's chat reporter gets the verdict, fix first, no secret."""
    received: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    files = readme_team_example()
    assert set(files) == {"opscheck.toml", "ops/checks/conftest.py", "ops/checks/test_cache.py"}
    port = closed_port()
    monkeypatch.setenv("CACHE_URL", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("CHAT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
    pytester.makefile(".toml", opscheck='checks = ["ops/checks"]\n' + files["opscheck.toml"].replace(
        "[tool.opscheck.extra]", "[extra]"))
    (pytester.path / "ops" / "checks").mkdir(parents=True)
    for name in ("ops/checks/conftest.py", "ops/checks/test_cache.py"):
        (pytester.path / name).write_text(files[name])
    try:
        result = pytester.runpytest_subprocess("--opscheck", "-p", "no:cacheprovider", "-k", "cache.")
    finally:
        server.shutdown()
        server.server_close()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(failed=2)
    (posted,) = received
    text = json.loads(posted)["text"]
    assert "fix first: cache.reachable" in text
    assert f"cache.reachable: cache: tcp://127.0.0.1:{port}:" in text
    assert "cache.sessions_cached" not in text  # a consequence, not a root: the chat names the root
