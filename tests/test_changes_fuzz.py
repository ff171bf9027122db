"""The comparison and the state file over classes of fingerprints (hypothesis): a fingerprint compared with itself
changes nothing, a hidden value is never shown, the changes come newest first, every change of a source both
sweeps read is listed, and the state file gives back what was written; engine timestamps in every shape the
engine writes them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_opscheck.changes.compare import diff
from pytest_opscheck.changes.fingerprint import Entry, Fingerprint, Pending, engine_time, seal
from pytest_opscheck.changes.state import State, read_state, write_state

SECRET_MARK = "PLANTED"
services = st.sampled_from(["backend", "db", "frontend", "worker #2"])
aspects = st.sampled_from(["image", "image id", "container created", "started", "restarts", "config hash",
                           "env SECRET_KEY", "env LOG_LEVEL", "secret file /run/secrets/jwt", "version"])
times = st.integers(1_700_000_000, 1_800_000_000).map(
    lambda s: f"{s // 86400 % 28 + 1:02d}T{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}Z")


@st.composite
def fingerprints(draw: st.DrawFn) -> Fingerprint:
    entries: dict[tuple[str, str], Entry] = {}
    for _ in range(draw(st.integers(0, 12))):
        subject, aspect = draw(services), draw(aspects)
        hidden = aspect.startswith(("env ", "secret file "))
        text = draw(st.text(min_size=1, max_size=12))
        value: str | Pending = Pending(f"{SECRET_MARK}-{text}") if hidden else text
        at = draw(st.one_of(st.none(), times.map(lambda t: f"2026-12-{t}")))
        entries[(subject, aspect)] = Entry("stack", subject, aspect, value, at)
    return Fingerprint("2026-12-30T00:00:00Z", frozenset({"stack"}), tuple(entries.values()), "Compose")


@settings(max_examples=40, deadline=None)
@given(fingerprints(), fingerprints(), st.booleans())
def test_diff_over_fingerprints(before: Fingerprint, after: Fingerprint, tokens: bool) -> None:
    salt = "0" * 32
    old = seal(before, salt, None, "2026-12-01T00:00:00Z")
    new = seal(after, salt, old, "2026-12-30T00:00:00Z")
    assert diff(old, old).changes == ()
    found = diff(old, new, tokens).changes
    for change in found:
        shown = f"{change.what} {change.before} {change.after}"
        assert SECRET_MARK not in shown and "hmac-sha256" not in shown
    stamps = [c.at or "" for c in found]
    assert stamps == sorted(stamps, reverse=True)
    # every changed subject is named by some change (a new image and a new container may say it together)
    changed = {e.subject for e in new.entries if old.by_key().get(e.key, e).value != e.value}
    assert changed <= {c.what.partition(": ")[0] for c in found}


@settings(max_examples=25, deadline=None)
@given(fingerprints(), fingerprints())
def test_state_file_round_trip(last: Fingerprint, green: Fingerprint) -> None:
    state = State()
    state.last = seal(last, state.salt, None, "2026-12-30T00:00:00Z")
    state.last_green = seal(green, state.salt, None, "2026-12-29T00:00:00Z")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        write_state(path, state)
        text = path.read_text()
        again = read_state(path)
    assert SECRET_MARK not in text
    json.loads(text)
    assert again is not None and (again.salt, again.last, again.last_green) == (state.salt, state.last,
                                                                                 state.last_green)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-12-06T14:02:11.123456789Z", "2026-12-06T14:02:11Z"),
        ("2026-12-06T14:02:11Z", "2026-12-06T14:02:11Z"),
        ("2026-12-06T15:02:11.5+01:00", "2026-12-06T14:02:11Z"),
        ("2026-12-06T14:02:11.000000001-00:00", "2026-12-06T14:02:11Z"),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("not a time", None),
    ],
)
def test_engine_timestamps(stamp: str | None, expected: str | None) -> None:
    assert engine_time(stamp) == expected
