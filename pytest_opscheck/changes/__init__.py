"""What changed since the last green sweep: the stack's fingerprint kept between sweeps (`--opscheck-state`), and a
failing sweep's summary told what changed before it (SPEC.md: "Changes since the last green sweep").

`History.from_config` reads the two options once; `History.update` is called once at the sweep's end with the
final summary and the opened targets: it takes the fingerprint (`fingerprint`), compares it with the last green
one (`compare`), writes the state (`state`) and returns the summary with `last_green`, `changes` and the
resolutions of the failures a new image or a rotated secret explains.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import Settings
from ..model import Change, CheckRecord, Summary
from ..redact import Redactor
from .fingerprint import Fingerprint, gather, iso, seal, sources_of
from .state import State, StateError, locked, read_state, write_state

if TYPE_CHECKING:
    from .compare import Diff

__all__ = ["History", "StateError"]

STATE_FILE = "state.json"


def _usage(option: str, path: Path, problem: str) -> pytest.UsageError:
    return pytest.UsageError(f"{option} {path}: {problem}")


class History:
    """The fingerprints of the sweeps, in one state file; one per sweep, on the process that reports."""

    def __init__(self, path: Path | None, settings: Settings, baseline: bool = False,
                 option: str = "--opscheck-state", cache_of: pytest.Config | None = None) -> None:
        # None: in pytest's cache folder, asked for when first needed (`cache_of.cache`, set up by pytest's cache
        # plugin after the sweep starts).
        self._path = path
        self._cache_of = cache_of
        self.settings = settings
        self.baseline = baseline
        self.option = option
        # What the last update measured, for the bench and the report: seconds spent gathering and writing; and
        # why it kept nothing, when it did not.
        self.timings: dict[str, float] = {}
        self.problem: str | None = None

    @property
    def path(self) -> Path:
        """The state file; in pytest's cache folder (`config.cache.mkdir`) unless a path was given."""
        if self._path is None:
            cache = getattr(self._cache_of, "cache", None)
            if cache is None:
                raise StateError("pytest's cache is off: pass --opscheck-state PATH to keep the sweeps' state")
            self._path = cache.mkdir("opscheck") / _default_name(self.settings)
        return self._path

    @classmethod
    def from_config(cls, config: pytest.Config, settings: Settings) -> History | None:
        """The sweep's history from `--opscheck-state PATH` (default: pytest's cache folder) and
        `--opscheck-baseline`; None on an xdist worker, or when there is nowhere to keep it (the cache plugin off and
        no path given). A file that is not this product's is a usage error, checked now, before any connection."""
        if hasattr(config, "workerinput"):
            return None
        given = config.getoption("opscheck_state", None)
        baseline = bool(config.getoption("opscheck_baseline", None))
        cache = getattr(config, "cache", None)
        if given:
            path = Path(given).expanduser()
            if not path.is_absolute():
                path = Path(config.invocation_params.dir) / path
            option = "--opscheck-state"
        elif cache is not None:
            path, option = cache.mkdir("opscheck") / _default_name(settings), "pytest's cache (--opscheck-state)"
        elif config.pluginmanager.hasplugin("cacheprovider"):  # its cache is set up after the sweep starts
            return cls(None, settings, baseline, "pytest's cache (--opscheck-state)", cache_of=config)
        else:
            if baseline:
                raise pytest.UsageError("--opscheck-baseline needs somewhere to keep it: pass --opscheck-state PATH "
                                        "(pytest's cache is off: -p no:cacheprovider)")
            return None
        if path.is_dir():
            raise _usage(option, path, "is a folder: give a file path, e.g. .opscheck-state.json")
        if not path.parent.is_dir():
            raise _usage(option, path, f"folder {path.parent} does not exist: create it or choose another path")
        if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK)):
            raise _usage(option, path, "cannot be written here (permissions): choose a path this user can write")
        try:
            read_state(path)
        except StateError as exc:
            raise _usage(option, path, str(exc)) from None
        return cls(path, settings, baseline, option)

    def update(self, summary: Summary, targets: Any) -> Summary:
        """Fingerprint the stack now, keep it, and return `summary` with what changed since the last green sweep.
        Whatever goes wrong here changes no verdict and silences no reporter: the summary is returned as it came,
        and `problem` says why."""
        self.problem = None
        try:
            return self._update(summary, targets)
        except Exception as exc:  # noqa: BLE001 - the sweep's reports matter more than its history
            self.problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            return summary

    def _update(self, summary: Summary, targets: Any) -> Summary:
        started = time.perf_counter()
        stack = targets.opened("stack")
        redact = Redactor([*self.settings.secrets, *(getattr(stack, "secrets", None) or ())])
        sources, kind = sources_of(targets, self.settings, redact)
        now = iso(time.time()) or ""
        taken = gather(sources, self.settings.timeout, now, kind)
        gathered = time.perf_counter()
        ok = not summary.failed and bool(summary.passed_records)
        try:
            with locked(self.path):
                try:
                    state = read_state(self.path) or State()
                except StateError as exc:  # not the product's (replaced since the sweep started): left alone
                    self.problem = f"{self.path}: {exc}"
                    return summary
                current = seal(taken, state.salt, state.last, now)
                previous_green, previous = state.last_green, state.last
                if self.baseline or ok:
                    state.last_green = _kept(current, previous_green)
                    state.baseline = self.baseline
                state.last = current
                write_state(self.path, state)
        except OSError as exc:  # a state that cannot be written changes no verdict; the next sweep tries again
            self.problem = f"{self.path}: {exc.strerror or type(exc).__name__}"
            return summary
        finally:
            self.timings = {"gather": gathered - started, "total": time.perf_counter() - started}
        if self.baseline or ok or previous_green is None or not summary.failed:  # only a failure is explained
            green = state.last_green.taken if state.last_green is not None else None
            return dataclasses.replace(summary, last_green=green, changes=())
        from .compare import diff, token_failures  # a failing sweep's only

        found = diff(previous_green, current, token_failures(summary.failed))
        kept = (previous_green, previous)
        failed = [self._resolved(r, found, kind, stack, kept, current, redact) for r in summary.failed]
        changes = tuple(Change(redact(c.what), _redacted(redact, c.before), _redacted(redact, c.after), c.at)
                        for c in found.changes)  # every value the sweep knows as a secret, masked here too
        return dataclasses.replace(summary, last_green=previous_green.taken, changes=changes, failed=failed)

    def _resolved(self, record: CheckRecord, found: Diff, kind: str, stack: Any,
                  kept: tuple[Fingerprint, Fingerprint | None], now: Fingerprint, redact: Redactor) -> CheckRecord:
        """`record` with the steps its failure gets from what changed: the rollback to the previous image of its
        service, for the token checks the secret that changed, for a database ahead of the code the release that
        brought its head."""
        green = kept[0].taken
        from ..probes import facts
        from .compare import release_step, rollback_step, rotation_step, services_of, token_failures

        steps: list[str] = []
        roles = {"backend": self.settings.backend_service, "db": self.settings.db_service}
        services = services_of(record, roles)
        for image in found.images:
            if image.service.partition(" #")[0] not in services:
                continue
            compose = stack.command if stack is not None and kind == "Compose" else (lambda a: f"docker compose {a}")
            swarm_name = stack.full_name(image.service) if stack is not None and kind == "Swarm" else image.service
            steps.append(rollback_step(image, kind, compose, swarm_name))
        if token_failures([record]):
            steps.extend(rotation_step(r, green) for r in found.rotated)
        if record.has_fact(facts.MIGRATIONS_AHEAD) and (step := release_step(kept, now, roles["backend"])):
            steps.append(step)
        if not steps:
            return record
        resolution = "\n".join([record.resolution.rstrip(), *(redact(s) for s in steps)]).strip()
        return dataclasses.replace(record, resolution=resolution)


def _redacted(redact: Redactor, text: str | None) -> str | None:
    return None if text is None else redact(text)


def _default_name(settings: Settings) -> str:
    """The state file's name in pytest's cache: one per named environment (staging's green is not prod's)."""
    if not settings.env_name:
        return STATE_FILE
    return f"state-{re.sub(r'[^A-Za-z0-9_.-]', '_', settings.env_name)[:64]}.json"


def _kept(current: Fingerprint, green: Fingerprint | None) -> Fingerprint:
    """The new green fingerprint: this sweep's, plus the entries of a source it did not read from the last green."""
    if green is None:
        return current
    missing = green.sources - current.sources
    if not missing:
        return current
    kept = tuple(e for e in green.entries if e.source in missing)
    return dataclasses.replace(current, sources=current.sources | missing,
                               entries=tuple(sorted((*current.entries, *kept), key=lambda e: e.key)))
