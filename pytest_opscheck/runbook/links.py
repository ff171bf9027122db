"""The runbook in a sweep: resolution steps from linked sections, its severity table and escalation path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..catalogue import matching_section
from ..config import Settings
from ..model import CheckMeta, Severity
from .parse import (
    Runbook,
    RunbookError,
    Section,
    anchor_url,
    diagnosis_sections,
    escalate_after,
    escalation,
    parse_runbook,
    plain,
    resolution,
)
from .parse import severity_targets as runbook_targets


class Runbooks:
    """Every runbook file a sweep refers to, parsed once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._parsed: dict[Path, Runbook] = {}
        self.configured = self.load(settings.runbook) if settings.runbook else None

    def load(self, relative: str) -> Runbook:
        path = self.settings.path(relative)
        if path not in self._parsed:
            self._parsed[path] = parse_runbook(path)
        return self._parsed[path]

    def link(self, meta: CheckMeta) -> CheckMeta:
        """`meta` with the resolution of its runbook section (marker) or a link to the matching one (built-in)."""
        if meta.runbook:
            file, _, anchor = meta.runbook.partition("#")
            book = self.load(file) if file else self.configured
            if book is None:
                raise RunbookError(f'@pytest.mark.runbook("{meta.runbook}"): no file and no runbook in the config')
            section = book.section(anchor)
            steps = resolution(section)
            text = "\n\n".join(part for part in (meta.resolution, steps) if part)
            link = anchor_url(file or str(self.settings.runbook), anchor)
            return dataclasses.replace(meta, resolution=f"{text}\n\nRunbook: {link} ({section.title})")
        if self.configured is not None and meta.topics:
            found = matching_section(self.configured, meta.topics) or self._named_section(meta.topics)
            if found is not None:
                link = anchor_url(str(self.settings.runbook), found.anchor)
                return dataclasses.replace(meta, resolution=f"{meta.resolution}\n\nRunbook: {link} ({found.title})")
        return meta

    def _named_section(self, topics: tuple[str, ...]) -> Section | None:
        """The first diagnosis section whose anchor or title names one of a team's own topics."""
        assert self.configured is not None
        for topic in topics:
            for section in diagnosis_sections(self.configured):
                words = re.findall(r"[a-z0-9]+", plain(section.title).lower())
                if topic == section.anchor or topic in words:
                    return section
        return None

    def topics(self) -> set[str]:
        """The topics the team's runbook adds to the built-in ones: each diagnosis section's anchor, and the words
        of its title ("Queue backlog" gives "queue-backlog", "queue" and "backlog")."""
        if self.configured is None:
            return set()
        found: set[str] = set()
        for section in diagnosis_sections(self.configured):
            found.add(section.anchor)
            found.update(w for w in re.findall(r"[a-z0-9]+", plain(section.title).lower()) if len(w) > 2)
        return found

    def targets(self, defaults: dict[Severity, str]) -> dict[Severity, str]:
        """Response targets: the runbook's severity table over the defaults."""
        own = runbook_targets(self.configured) if self.configured else {}
        return {level: f"response time: {own[level.name]}" if level.name in own else text
                for level, text in defaults.items()}

    def escalation(self) -> tuple[str, ...]:
        """The escalation path, led by when to escalate a P1."""
        if self.configured is None:
            return ()
        steps = escalation(self.configured)
        after = escalate_after(self.configured)
        lead = [f"escalate a P1 still failing after {after}"] if after else []
        return tuple(lead + [f"{i}. {step}" for i, step in enumerate(steps, start=1)])
