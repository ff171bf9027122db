"""Collection: each check's declaration read off the check, checks ordered worst first, the coverage listing."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import pytest

from ..catalogue import TOPICS
from ..catalogue_lines import coverage_by_line
from ..context import META, SweepContext
from ..declare import MarkerError, check_id, evaluate
from ..folders import builtin_checks_dir
from ..model import CheckMeta, Severity
from ..runbook import RunbookError
from ..steps import DEPLOYMENT, frontend_service, render
from ..steps import values as step_values
from ..swarm_steps import swarm_terms


class Collection:
    """Reads what each check declares (severity, resolution, runbook, topics, dependencies, service)."""

    def __init__(self, ctx: SweepContext, coverage_only: bool) -> None:
        self.ctx = ctx
        self.coverage_only = coverage_only
        # The user's values for the resolutions' {placeholders}, computed once. The built-in steps are also
        # fitted to how the stack runs; a team's own steps are its own (placeholders filled, nothing dropped).
        self.step_values = step_values(ctx.settings)
        self.team_values = {k: v for k, v in self.step_values.items() if k not in (DEPLOYMENT, "migrations_tool")}
        self.builtin = builtin_checks_dir()
        # Topics a check may name: the built-in ones and the headings of the team's runbook.
        self.topics = set(TOPICS) | ctx.runbooks.topics()

    def declare(self, item: pytest.Function) -> CheckMeta:
        """The check's metadata with its runbook linked, dependencies resolved to checks and service named; a
        mistake in its markers makes a declaration that fails this check alone, with the mistake as its cause."""
        try:
            meta = evaluate(item.path, item.name, item.get_closest_marker, item.function.__doc__)
        except MarkerError as exc:
            return self.mistaken(item, str(exc))
        unknown = [t for t in meta.topics if t not in self.topics]
        if unknown:
            own = " and the headings of the runbook" if self.ctx.runbooks.configured else ""
            return self.mistaken(item, f"@pytest.mark.topics: unknown topic {unknown[0]!r}: use a built-in topic"
                                       f" ({', '.join(TOPICS)}){own}, or add a runbook section about it")
        settings = self.ctx.settings
        targets = self.ctx.targets
        role = targets.service_role(meta.service, meta.depends, item.fixturenames)
        roles = {"backend": settings.backend_service, "db": settings.db_service, "frontend": frontend_service(settings)}
        service = roles.get(role or "", role)
        depends = tuple(c for c in targets.depends_of(meta.depends) if c != meta.check_id)
        # The check's own steps with the user's values; a linked runbook section stays as the team wrote it.
        steps = swarm_terms(meta.resolution, settings.swarm_stack) if settings.swarm_stack else meta.resolution
        values = self.step_values if item.path.is_relative_to(self.builtin) else self.team_values
        meta = dataclasses.replace(meta, resolution=render(steps, values))
        try:
            meta = self.ctx.runbooks.link(meta)
        except RunbookError as exc:
            return self.mistaken(item, str(exc))
        return dataclasses.replace(meta, depends=depends, service=service)

    def mistaken(self, item: pytest.Function, mistake: str) -> CheckMeta:
        """A check whose declaration is wrong: it fails as P1 (the gate fails whatever its threshold), alone."""
        return CheckMeta(check_id(item.path, item.name), Severity.P1,
                         "Fix the check's markers as its cause says, then sweep again.", mistake=mistake)

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        if isinstance(item, pytest.Function):
            item.stash[META] = self.declare(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self) -> None:
        # Everything long-lived is imported by now: keep it out of the collector's work, so pytest's forced
        # collections at the end of the session (about 0.4 s on a heap this size) scan only the sweep's garbage.
        gc.freeze()

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        duplicate_ids(items)
        for item in items:
            meta = item.stash.get(META, None)
            if meta is None:
                continue
            item.add_marker(meta.severity.name.lower())
            item.add_marker(meta.severity.name)  # -m P1 selects as -m p1 does
            item.extra_keyword_matches.add(meta.check_id)
        # Worst first: at 3 a.m. the P1 checks report before anything else; within a severity, a check that
        # others depend on runs before them, so their causes are known as they report.
        items.sort(key=lambda i: (i.stash[META].severity, len(i.stash[META].depends)) if META in i.stash
                   else (Severity.P4, 0))
        if self.coverage_only:
            metas = [i.stash[META] for i in items if META in i.stash]
            assert self.ctx.runbooks.configured is not None  # --opscheck-coverage needs one (start.context)
            self.ctx.coverage = coverage_by_line(self.ctx.runbooks.configured, metas)
            self.ctx.coverage += _undeclared(metas)
            if items:
                items[0].config.hook.pytest_deselected(items=items[:])
            items[:] = []


def _undeclared(metas: list[CheckMeta]) -> list[str]:
    """A line naming the checks that declare neither topics nor a runbook section: no coverage for them."""
    bare = sorted({m.check_id.partition("[")[0] for m in metas if not m.topics and not m.runbook})
    return [f"checks with no topics and no runbook marker (not counted): {', '.join(bare)}"] if bare else []


def duplicate_ids(items: list[pytest.Item]) -> None:
    """Check ids are unique: a team check with the id of another check (in another file) is a usage error
    naming both files."""
    seen: dict[str, pytest.Item] = {}
    for item in items:
        meta = item.stash.get(META, None)
        if meta is None:
            continue
        other = seen.setdefault(meta.check_id, item)
        if other is not item and other.path != item.path:
            raise pytest.UsageError(
                f"check id {meta.check_id} is taken twice: {other.path}::{other.name} and {item.path}::{item.name}"
                f" — rename one (the id is the file name less test_, a dot, the function name less test_)"
            )


class ChecksFolders:
    """What a sweep collects: the built-in checks and the configured folders, whatever the command line's
    paths (pytest's documented `pytest_collection` with `Session.perform_collect`, not a rewrite of the args)."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        config = session.config
        if not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no":
            return None  # an xdist controller collects nothing: its workers do, each through this hook
        session.perform_collect([str(f) for f in self.folders])
        return True
