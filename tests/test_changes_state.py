"""The state file of `--opscheck-state`: refused when not the product's, written whole under two real sweeping
processes at once, and what a comparison of two fingerprints says (newest first, secrets named not shown)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_opscheck.changes import History
from pytest_opscheck.changes.compare import NewImage, diff, image_text, rollback_step
from pytest_opscheck.changes.fingerprint import Entry, Fingerprint, Pending, seal
from pytest_opscheck.changes.state import MAGIC, State, StateError, read_state, write_state
from pytest_opscheck.config import settings_from_table

WRITER = r"""
import sys
from pathlib import Path
from pytest_opscheck.changes.fingerprint import Entry, Fingerprint
from pytest_opscheck.changes.state import State, locked, read_state, write_state

path, who, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for n in range(rounds):
    with locked(path):
        state = read_state(path) or State()
        entries = tuple(Entry("stack", f"svc{i}", "image", f"{who}:{n}", None, None) for i in range(200))
        state.last = Fingerprint(f"{who}-{n}", frozenset({"stack"}), entries)
        write_state(path, state)
print("done")
"""


def fingerprint(taken: str, *entries: Entry, sources: frozenset[str] = frozenset({"stack", "db"})) -> Fingerprint:
    return Fingerprint(taken, sources, tuple(entries), "Compose")


@pytest.mark.parametrize(
    "content",
    ["", "not json at all", "[1, 2]", '{"format": "something-else", "version": 1}', '{"version": 1}',
     '{"format": "pytest-opscheck-state", "version": 99, "salt": "x"}'],
)
def test_a_file_that_is_not_the_products_is_refused_in_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateError) as caught:
        read_state(path)
    assert "\n" not in str(caught.value)
    assert "--opscheck-state" in str(caught.value)
    assert path.read_text() == content  # left as it was


def test_refused_through_the_option_as_a_usage_error(pytester: pytest.Pytester) -> None:
    """The real option on a real pytest run: exit 4 and one line naming the option and the file, which stays."""
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n')
    foreign = pytester.path / "notes.json"
    foreign.write_text('{"mine": true}')
    result = pytester.runpytest("--opscheck", "--opscheck-state", str(foreign), "-p", "no:hypothesispytest")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if "notes.json" in line]
    assert errors == [f"ERROR: --opscheck-state {foreign}: not a pytest-opscheck state file: point --opscheck-state "
                      "at another path (this file is left as it is)"]
    assert foreign.read_text() == '{"mine": true}'


def test_default_path_is_in_pytests_cache_and_baseline_needs_one(pytester: pytest.Pytester) -> None:
    table = {"backend_url": "http://127.0.0.1:9", "env": {"staging": {"backend_url": "http://127.0.0.1:10"}}}
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n[env.staging]\n'
                                        'backend_url = "http://127.0.0.1:10"\n')
    settings = settings_from_table(table, pytester.path / "opscheck.toml")
    config = pytester.parseconfigure("--opscheck", "-p", "no:hypothesispytest")
    history = History.from_config(config, settings)
    assert history is not None and history.path == config.cache.mkdir("opscheck") / "state.json"
    # a named environment keeps a state of its own: staging's green is not prod's
    staging = settings_from_table(table, pytester.path / "opscheck.toml", env_name="staging")
    config = pytester.parseconfigure("--opscheck", "--opscheck-env", "staging", "-p", "no:hypothesispytest")
    history = History.from_config(config, staging)
    assert history is not None and history.path == config.cache.mkdir("opscheck") / "state-staging.json"
    bare = pytester.runpytest("--opscheck", "--opscheck-baseline", "-p", "no:cacheprovider",
                              "-p", "no:hypothesispytest")
    assert bare.ret == 4
    bare.stderr.fnmatch_lines(["ERROR: --opscheck-baseline needs somewhere to keep it: pass --opscheck-state PATH*"])


def test_state_options_need_opscheck(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--opscheck-baseline", "-p", "no:hypothesispytest")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--opscheck-baseline needs --opscheck*"])


def test_two_processes_writing_at_once_leave_a_whole_state(tmp_path: Path) -> None:
    """Two real processes, each rewriting the state 20 times under the lock, while this one reads it: every read
    is a whole state file, the last one is one writer's, and no temp file is left behind."""
    path = tmp_path / "state.json"
    write_state(path, State())
    salt = read_state(path).salt  # type: ignore[union-attr]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, "20"], stdout=subprocess.PIPE,
                                text=True) for who in ("left", "right")]
    reads = 0
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        state = read_state(path)
        assert state is not None and state.salt == salt
        if state.last is not None:
            assert len(state.last.entries) == 200
            assert len({e.value for e in state.last.entries}) == 1
        reads += 1
    for writer in writers:
        out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0 and out.strip() == "done"
    final = read_state(path)
    assert final is not None and final.last is not None and final.last.taken in ("left-19", "right-19")
    assert reads > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]


def test_the_file_keeps_a_salted_hash_never_the_value(tmp_path: Path) -> None:
    planted = ["PLANTED-jwt-secret-5f1e2d3c", "hunter2-PLANTED", "x"]
    taken = fingerprint("2026-12-06T10:00:00Z", *(Entry("stack", "backend", f"env V{i}", Pending(v), None)
                                                  for i, v in enumerate(planted)))
    state = State()
    state.last = seal(taken, state.salt, None, "2026-12-06T10:00:00Z")
    path = tmp_path / "state.json"
    write_state(path, state)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == MAGIC
    for value in planted[:2]:
        assert value not in text
    hashes = [row[3] for row in data["last"]["entries"]]
    assert all(h.startswith("hmac-sha256:") for h in hashes) and len(set(hashes)) == 3
    # the same value under another file's salt hashes differently: a hash cannot be looked up across files
    other = seal(taken, State().salt, None, "2026-12-06T10:00:00Z")
    assert {e.value for e in other.entries}.isdisjoint(hashes)
    assert "PLANTED" not in repr(taken.entries[0])


def test_changes_newest_first_new_container_said_once_and_secrets_named_only() -> None:
    old = fingerprint(
        "2026-12-06T10:00:00Z",
        Entry("stack", "backend", "image", "app:1.2", "2026-12-05T09:00:00Z"),
        Entry("stack", "backend", "image id", "sha256:" + "a" * 64, "2026-12-05T09:00:00Z"),
        Entry("stack", "backend", "container created", "2026-12-05T09:00:00Z", "2026-12-05T09:00:00Z"),
        Entry("stack", "backend", "started", "2026-12-05T09:00:01Z", "2026-12-05T09:00:01Z"),
        Entry("stack", "backend", "env JWT_SECRET", "hmac-sha256:1", "2026-12-05T09:00:00Z"),
        Entry("stack", "backend", "env LOG_LEVEL", "hmac-sha256:2", "2026-12-05T09:00:00Z"),
        Entry("stack", "worker", "restarts", "0", "2026-12-05T09:00:00Z"),
        Entry("stack", "worker", "started", "2026-12-05T09:00:00Z", "2026-12-05T09:00:00Z"),
        Entry("stack", "proxy", "started", "2026-12-05T09:00:00Z", "2026-12-05T09:00:00Z"),
        Entry("db", "database", "migration head", "alembic a1", None, "2026-12-05T09:00:00Z"),
    )
    new = fingerprint(
        "2026-12-06T14:30:00Z",
        Entry("stack", "backend", "image", "app:1.3", "2026-12-06T14:02:00Z"),
        Entry("stack", "backend", "image id", "sha256:" + "b" * 64, "2026-12-06T14:02:00Z"),
        Entry("stack", "backend", "container created", "2026-12-06T14:02:00Z", "2026-12-06T14:02:00Z"),
        Entry("stack", "backend", "started", "2026-12-06T14:02:01Z", "2026-12-06T14:02:01Z"),
        Entry("stack", "backend", "env JWT_SECRET", "hmac-sha256:9", "2026-12-06T14:02:00Z"),
        Entry("stack", "backend", "env LOG_LEVEL", "hmac-sha256:8", "2026-12-06T14:02:00Z"),
        Entry("stack", "worker", "restarts", "4", "2026-12-06T14:20:00Z"),
        Entry("stack", "worker", "started", "2026-12-06T14:20:00Z", "2026-12-06T14:20:00Z"),
        Entry("stack", "proxy", "started", "2026-12-06T14:10:00Z", "2026-12-06T14:10:00Z"),  # docker restart
        Entry("db", "database", "migration head", "alembic b2", None, "2026-12-06T13:00:00Z"),
    )
    found = diff(old, new, tokens_refused=True)
    whats = [c.what for c in found.changes]
    assert whats[0] == "worker: restarts" and whats[-1] == "database: migration head"
    assert [c.at for c in found.changes] == sorted((c.at for c in found.changes), reverse=True)
    assert "backend: started" not in whats  # the new container says it
    assert "worker: started" not in whats  # its restart count says it
    assert "proxy: started" in whats  # restarted by hand: the restart count stays
    image = next(c for c in found.changes if c.what == "backend: image")
    assert (image.before, image.after) == ("app:1.2 (aaaaaaaaaaaa)", "app:1.3 (bbbbbbbbbbbb)")
    secret = next(c for c in found.changes if c.what == "backend: secret JWT_SECRET changed")
    assert secret.after == "(new value): tokens issued before 14:02 UTC are refused"
    plain = next(c for c in found.changes if c.what == "backend: variable LOG_LEVEL changed")
    assert "hmac" not in f"{plain.before}{plain.after}" and "tokens" not in str(plain.after)
    assert [(r.service, r.name) for r in found.rotated] == [("backend", "JWT_SECRET")]
    # a source one of the two sweeps did not read compares nothing
    unread = fingerprint(new.taken, *new.entries[:-1], sources=frozenset({"stack"}))
    assert "database: migration head" not in [c.what for c in diff(old, unread).changes]


def test_baseline_on_the_command_line_records_a_failing_sweep_as_known_good(pytester: pytest.Pytester) -> None:
    """`--opscheck-baseline` on a real run whose backend refuses connections: the state keeps that sweep as the
    last green one, and the next (failing) sweep is compared with it."""
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\nhealth_path = "/health"\n')
    run = ("--opscheck", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-k", "backend.health",
           "--opscheck-state", "s.json", "--opscheck-json", "out.json")
    first = pytester.runpytest(*run, "--opscheck-baseline")
    assert first.ret == 1
    data = json.loads((pytester.path / "s.json").read_text())
    assert data["baseline"] is True and data["last_green"] == {"same_as_last": True}
    recorded = json.loads((pytester.path / "out.json").read_text())["last_green"]
    assert recorded == data["last"]["taken"]
    again = pytester.runpytest(*run)
    assert again.ret == 1
    out = json.loads((pytester.path / "out.json").read_text())
    assert out["last_green"] == recorded and out["changes"] == []


@pytest.mark.parametrize(
    ("image", "kind", "expected"),
    [
        (NewImage("backend", "app:1.2", "sha256:" + "a" * 64, "app:1.3", "sha256:" + "b" * 64, "2026-12-06T14:02:00Z"),
         "Compose", "set image: app:1.2 for backend in the Compose file (or the variable that sets it), then "
                    "docker compose -p shop up -d --no-deps backend"),
        # the same tag pulled again onto a new image: the old id is tagged back, and Compose told not to pull
        (NewImage("backend #2", "app:latest", "sha256:" + "a" * 64, "app:latest", "sha256:" + "b" * 64, None),
         "Compose", f"docker tag sha256:{'a' * 64} app:latest && docker compose -p shop up -d --no-deps "
                    "--pull never backend"),
        (NewImage("web", "app:1.2", "sha256:" + "c" * 64, "app:1.3", "sha256:" + "d" * 64, None),
         "Swarm", f"docker service rollback shop_web (or docker service update --image app:1.2@sha256:{'c' * 64} "
                  "shop_web)"),
        (NewImage("web", "app:1.2", "", "app:1.3", "", None), "", "redeploy web with app:1.2"),
    ],
)
def test_rollback_commands(image: NewImage, kind: str, expected: str) -> None:
    step = rollback_step(image, kind, lambda args: f"docker compose -p shop {args}", f"shop_{image.service}")
    assert step.endswith("roll back: " + expected)
    assert f"before it ran {image_text(image.before, image.before_id)}" in step


@pytest.mark.parametrize(
    ("given", "problem"),
    [("no/such/folder/state.json", "does not exist: create it or choose another path"),
     (".", "is a folder: give a file path, e.g. .opscheck-state.json")],
)
def test_an_unusable_state_path_is_a_usage_error(pytester: pytest.Pytester, given: str, problem: str) -> None:
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n')
    result = pytester.runpytest("--opscheck", "--opscheck-state", given, "-p", "no:hypothesispytest")
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: --opscheck-state")]
    assert len(errors) == 1 and errors[0].endswith(problem)


def test_a_state_that_cannot_be_written_changes_nothing_and_says_why(tmp_path: Path) -> None:
    """The folder is gone by the sweep's end: the summary comes back as it was, and the history says why."""
    from pytest_opscheck import targets as targets_module
    from pytest_opscheck.model import CheckRecord, summarize

    folder = tmp_path / "gone"
    folder.mkdir()
    settings = settings_from_table({}, tmp_path / "opscheck.toml")
    history = History(folder / "state.json", settings)
    folder.rmdir()
    builtin = getattr(targets_module, "BUILTIN", None)
    targets = targets_module.Targets(settings, builtin) if builtin is not None else targets_module.Targets(settings)
    summary = summarize([CheckRecord("x.y", "x::y", "P2", "failed", 0.1, "", "Steps")])
    try:
        assert history.update(summary, targets) is summary
    finally:
        targets.close()
    assert history.problem is not None and str(folder / "state.json") in history.problem


def test_a_plain_sweep_keeps_its_state_in_pytests_cache(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n')
    result = pytester.runpytest("--opscheck", "-p", "no:hypothesispytest", "-k", "backend.health")
    assert result.ret == 1
    kept = pytester.path / ".pytest_cache" / "d" / "opscheck" / "state.json"
    assert json.loads(kept.read_text())["format"] == MAGIC


@pytest.mark.parametrize(
    ("name", "signs"),
    [("JWT_SECRET", True), ("SECRET_KEY", True), ("NEXTAUTH_SECRET", True), ("APP_KEY", True),
     ("JWT_SIGNING_KEY", True), ("SESSION_SECRET", True), ("/run/secrets/jwt", True), ("TOKEN_SECRET", True),
     ("/run/secrets/api_cert", False),
     ("POSTGRES_PASSWORD", False), ("SMTP_PASSWORD", False), ("AWS_SECRET_ACCESS_KEY", False),
     ("DATABASE_URL", False), ("/run/secrets/db_password", False), ("STRIPE_SECRET_KEY", False),
     ("REDIS_PASSWORD", False), ("SENTRY_DSN", False)],
)
def test_which_secrets_may_sign_tokens(name: str, signs: bool) -> None:
    """A changed database password refuses no token: only a signing key's change is said to."""
    old = fingerprint("2026-12-06T10:00:00Z", Entry("stack", "backend", f"env {name}", "hmac-sha256:1", None, "x"))
    new = fingerprint("2026-12-06T14:30:00Z",
                      Entry("stack", "backend", f"env {name}", "hmac-sha256:2", "2026-12-06T14:02:00Z", "x"))
    found = diff(old, new, tokens_refused=True)
    assert bool(found.rotated) is signs
    assert ("tokens issued before 14:02 UTC are refused" in str(found.changes[0].after)) is signs
