"""Collection: each check's declaration read off the check, checks ordered worst first, the coverage listing."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Generator
from typing import Any

import pytest

from ..catalogue import TOPICS
from ..catalogue_lines import coverage_by_line
from ..context import META, SweepContext
from ..declare import MarkerError, evaluate
from ..model import CheckMeta, Severity
from ..runbook import RunbookError
from ..steps import frontend_service, render
from ..steps import values as step_values
from ..swarm_steps import swarm_terms
from ..targets import depends_of, service_role


class Collection:
    """Reads what each check declares (severity, resolution, runbook, topics, dependencies, service)."""

    def __init__(self, ctx: SweepContext, coverage_only: bool) -> None:
        self.ctx = ctx
        self.coverage_only = coverage_only
        # The user's values for the resolutions' {placeholders}, computed once.
        self.step_values = step_values(ctx.settings)

    def declare(self, item: pytest.Function) -> CheckMeta:
        """The check's metadata with its runbook linked, dependencies resolved to checks and service named."""
        meta = evaluate(item.path, item.name, item.get_closest_marker, item.function.__doc__)
        unknown = [t for t in meta.topics if t not in TOPICS]
        if unknown:
            raise MarkerError(f"@pytest.mark.topics: unknown topic {unknown[0]!r}; known: {', '.join(TOPICS)}")
        settings = self.ctx.settings
        role = service_role(meta.service, meta.depends, item.fixturenames)
        roles = {"backend": settings.backend_service, "db": settings.db_service, "frontend": frontend_service(settings)}
        service = roles.get(role or "", role)
        depends = tuple(c for c in depends_of(meta.depends) if c != meta.check_id)
        # The check's own steps with the user's values; a linked runbook section stays as the team wrote it.
        steps = swarm_terms(meta.resolution, settings.swarm_stack) if settings.swarm_stack else meta.resolution
        meta = dataclasses.replace(meta, resolution=render(steps, self.step_values))
        return dataclasses.replace(self.ctx.runbooks.link(meta), depends=depends, service=service)

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report = yield
        if not isinstance(collector, pytest.Module | pytest.Class) or report.outcome != "passed":
            return report
        problems = []
        for item in report.result:
            if not isinstance(item, pytest.Function):
                continue
            try:
                item.stash[META] = self.declare(item)
            except (MarkerError, RunbookError) as exc:
                problems.append(f"{item.nodeid}: {exc}")
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self) -> None:
        # Everything long-lived is imported by now: keep it out of the collector's work, so pytest's forced
        # collections at the end of the session (about 0.4 s on a heap this size) scan only the sweep's garbage.
        gc.freeze()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
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
