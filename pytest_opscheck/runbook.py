"""The team's Markdown runbook: sections by GitHub-style anchor, their resolution steps, the severity
table, the escalation path, and the diagnosis sections the checks must cover."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RESOLUTION = re.compile(r"^\s*(?:\*\*|__)?\s*(resolution|recovery actions?)\s*:?\s*(?:\*\*|__)?\s*:?\s*$", re.I)
_LABEL = re.compile(r"^\s*(?:\*\*|__)[^*_]+:?(?:\*\*|__):?\s*(.*)$")
_NOT_INCIDENTS = re.compile(
    r"classification|severity|escalation|post-incident|post-mortem|postmortem|contacts|useful commands|monitoring"
    r"|checklist|template|initial response",
    re.I,
)


class RunbookError(Exception):
    """A runbook that cannot be used; the message names the file (and line) and what to do."""


@dataclass
class Section:
    """One heading and the lines under it, up to the next heading of the same or a higher level."""

    title: str
    anchor: str
    level: int
    line: int
    body: list[str] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return _trim("\n".join(self.body))

    @property
    def own_text(self) -> str:
        """The section's text before its first sub-heading."""
        own = []
        for line in self.body:
            if _HEADING.match(line):
                break
            own.append(line)
        return _trim("\n".join(own))


def _trim(text: str) -> str:
    """Text without surrounding blank lines and trailing horizontal rules."""
    return re.sub(r"(\n\s*(---+|\*\*\*+)\s*)+$", "", text.strip()).strip()


@dataclass
class Runbook:
    """A parsed runbook."""

    path: Path
    sections: list[Section]

    def section(self, anchor: str) -> Section:
        """The section at `anchor`; RunbookError naming it and the nearest existing anchors otherwise."""
        for section in self.sections:
            if section.anchor == anchor:
                return section
        close = difflib.get_close_matches(anchor, [s.anchor for s in self.sections], n=3, cutoff=0.3)
        hint = f" (nearest: {', '.join('#' + c for c in close)})" if close else ""
        raise RunbookError(f"{self.path}: no section #{anchor}{hint}")


def slug(title: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped (but - and _), spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", title).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse_runbook(path: Path) -> Runbook:
    """Read `path` into sections; RunbookError for a missing file, an unclosed fence, or no heading."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RunbookError(f"{path}: runbook not found (check runbook in the config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"{path}: cannot read the runbook: {exc}") from None
    sections: list[Section] = []
    stack: list[Section] = []
    seen: dict[str, int] = {}
    fence_opened: int | None = None
    for number, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            fence_opened = None if fence_opened is not None else number
        heading = _HEADING.match(line) if fence_opened is None else None
        if heading is None:
            for open_section in stack:
                open_section.body.append(line)
            continue
        level, title = len(heading.group(1)), heading.group(2)
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        section = Section(title, base if count == 0 else f"{base}-{count}", level, number)
        while stack and stack[-1].level >= level:
            stack.pop()
        if stack:
            stack[-1].children.append(section)
        for open_section in stack:
            open_section.body.append(line)
        stack.append(section)
        sections.append(section)
    if fence_opened is not None:
        raise RunbookError(f"{path}:{fence_opened}: a ``` code block opened here is never closed")
    if not sections:
        raise RunbookError(f"{path}:1: no Markdown heading: a runbook needs '## Section' headings")
    return Runbook(path, sections)


def resolution(section: Section) -> str:
    """The section's "Resolution" / "Recovery Actions" part (fenced code kept), else the whole section."""
    for child in section.children:
        if _RESOLUTION.match(child.title):
            return child.text
    lines = section.body
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and _RESOLUTION.match(line):
            part: list[str] = []
            fenced = False
            for rest in lines[index + 1 :]:
                if _FENCE.match(rest):
                    fenced = not fenced
                if not fenced and ((_LABEL.match(rest) and not _RESOLUTION.match(rest)) or _HEADING.match(rest)):
                    break
                part.append(rest)
            return "\n".join(part).strip()
    return section.text


def severity_targets(runbook: Runbook) -> dict[str, str]:
    """Response times per severity from the runbook's severity list or table; empty when it has none."""
    targets: dict[str, str] = {}
    current: str | None = None
    response_column: int | None = None
    for section in runbook.sections:
        if not re.search(r"severity|classification", section.title, re.I):
            continue
        for line in section.body:
            cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.strip().startswith("|") else []
            if cells and response_column is None:
                lowered = [c.lower() for c in cells]
                response_column = next((i for i, c in enumerate(lowered) if "response" in c), None)
                continue
            if cells and response_column is not None:
                level = re.match(r"\**\s*(P[1-4])\b", cells[0])
                if level and response_column < len(cells):
                    targets[level.group(1)] = cells[response_column]
                continue
            level = re.match(r"^\s*(?:\*\*|__)?(P[1-4])\b", line)
            if level:
                current = level.group(1)
                continue
            response = re.match(r"^\s*[-*]\s*Response time:\s*(.+?)\s*$", line, re.I)
            if response and current:
                targets[current] = response.group(1)
        if targets:
            break
    return targets


def escalation(runbook: Runbook) -> list[str]:
    """The numbered steps under the "Escalation" heading, bold markers stripped."""
    for section in runbook.sections:
        if "escalation" in section.title.lower():
            steps = [re.sub(r"^\s*\d+\.\s*", "", line) for line in section.body if re.match(r"^\s*\d+\.\s", line)]
            return [re.sub(r"\*\*|__", "", step).strip() for step in steps]
    return []


def escalate_after(runbook: Runbook) -> str | None:
    """How long a P1 may stay unresolved before escalating ("30 minutes"), from the escalation steps."""
    for step in escalation(runbook):
        match = re.search(r"(\d+\s*(?:minutes?|min|hours?|h))\b.*P1|P1.*?(\d+\s*(?:minutes?|min|hours?|h))\b", step)
        if match:
            return match.group(1) or match.group(2)
    return None


def diagnosis_sections(runbook: Runbook) -> list[Section]:
    """The incident sections: headings under the incidents part that hold a diagnosis or a resolution."""
    found = []
    for section in runbook.sections:
        if section.level == 1 or _NOT_INCIDENTS.search(section.title) or _RESOLUTION.match(section.title):
            continue
        if re.fullmatch(r"(symptoms|diagnosis|common causes?)", section.title.strip(), re.I):
            continue
        own = section.own_text.lower()
        parts = {slug(child.title).split("-")[0] for child in section.children}
        if "diagnosis" in own or "diagnosis" in parts or (
            ("symptoms" in own or "symptoms" in parts) and ("resolution" in own or "resolution" in parts)
        ):
            found.append(section)
    return found


def anchor_url(path: str, anchor: str) -> str:
    """A relative link to a section: `docs/runbook.md#anchor`."""
    return f"{path}#{anchor}"
