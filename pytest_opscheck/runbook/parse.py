"""The team's Markdown runbook as the one source: sections by GitHub-style anchor, their resolution
steps, the severity table, the escalation path, and the diagnosis sections the checks must cover."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from .text import Unreadable, read_bytes
from .text import plain as plain  # read here by the catalogue and the links

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
# A bold label at the start of a line: **Resolution:**, **Resolution**: steps, __Diagnosis__
_LABEL = re.compile(r"^\s{0,3}(\*\*|__)(?P<name>[^*_]+?)(?P<inner>:?)\1(?P<outer>:?)[ \t]*(?P<rest>.*)$")
_PLAIN_LABEL = re.compile(r"^\s{0,3}(?P<name>[A-Za-z][\w ]*?):[ \t]*(?P<rest>.*)$")
_RESOLUTION = r"resolution(?: steps)?|recovery(?: actions?| steps)?|remediation|fix"
# The parts an incident section is divided into, as labels or sub-headings ("Initial Response (First 15 min)").
_PARTS = re.compile(
    rf"(?P<part>symptoms?|diagnosis|diagnostics?|common causes?|initial response|verification|prevention"
    rf"|{_RESOLUTION})\s*(?:\(.*\))?\s*:?",
    re.I,
)
_NOT_INCIDENTS = re.compile(
    r"classification|severity|escalation|post[- ]?incident|post[- ]?mortem|contacts|useful commands|monitoring",
    re.I,
)
_LEVEL = re.compile(r"^\s*(?:#{1,6}\s+)?(?:\*\*|__)?\s*(P[0-9])\b")
_RESPONSE_ITEM = re.compile(r"^\s*[-*+]\s*(?:\*\*|__)?response(?: time)?(?:\*\*|__)?\s*:\s*(?:\*\*|__)?(.+?)$", re.I)
_NUMBERED = re.compile(r"^ {0,3}\d+[.)][ \t]+(.*)$")
_BULLET = re.compile(r"^ {0,3}[-*+][ \t]+(.*)$")
_DURATION = re.compile(r"\b(\d+(?:\.\d+)?\s*(?:minutes?|mins?|hours?|hrs?|days?|[hm])\b)", re.I)


class RunbookError(Exception):
    """A runbook that cannot be used; the one-line message names the file (and line) and what is wrong."""


@dataclass
class Section:
    """A heading and what lies under it, up to the next heading of the same or a higher level.

    `body` includes the sub-sections (also in `children`); `intro` is the text before the first of them.
    """

    title: str
    anchor: str
    level: int
    line: int
    body: str
    intro: str
    children: list[Section] = field(default_factory=list)


@dataclass
class Runbook:
    """A parsed runbook: every section in document order, and the top-level ones as a tree."""

    path: Path
    sections: list[Section]
    roots: list[Section]
    # What the checks ask of it again and again (its diagnosis sections, the best section of a topic), found once.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def anchors(self) -> list[str]:
        return [s.anchor for s in self.sections]

    def section(self, anchor: str) -> Section:
        """The section at `anchor` (a leading `#` is allowed); RunbookError naming the nearest otherwise."""
        wanted = anchor.removeprefix("#")
        for section in self.sections:
            if section.anchor == wanted:
                return section
        close = difflib.get_close_matches(wanted, self.anchors, n=3, cutoff=0.4)
        hint = f" (nearest: {', '.join('#' + c for c in close)})" if close else ""
        raise RunbookError(f"{self.path}: no section #{wanted}{hint}")


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped (but `-` and `_`), spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", plain(title).lower()).replace(" ", "-")


def fenced_lines(lines: list[str], path: Path) -> list[bool]:
    """For each line, whether it belongs to a fenced code block (delimiters included)."""
    inside: list[bool] = []
    opened: tuple[int, str, int] | None = None  # line number, fence character, fence length
    for number, line in enumerate(lines, start=1):
        fence = _FENCE.match(line)
        if opened is None:
            if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
                opened = (number, fence.group(1)[0], len(fence.group(1)))
            inside.append(opened is not None)
            continue
        inside.append(True)
        if fence and fence.group(1)[0] == opened[1] and len(fence.group(1)) >= opened[2] and not fence.group(2).strip():
            opened = None
    if opened is not None:
        fence_text = opened[1] * opened[2]
        raise RunbookError(f"{path}:{opened[0]}: a {fence_text} code block opened here is never closed")
    return inside


def _trim(lines: list[str]) -> str:
    """The lines verbatim, less blank lines and horizontal rules at either end."""
    start, end = 0, len(lines)
    while start < end and (not lines[start].strip() or _RULE.match(lines[start])):
        start += 1
    while end > start and (not lines[end - 1].strip() or _RULE.match(lines[end - 1])):
        end -= 1
    return "\n".join(lines[start:end])


def _read(path: Path) -> list[str]:
    try:
        data = read_bytes(path)
    except Unreadable as exc:
        raise RunbookError(str(exc)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RunbookError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    # Line numbers as editors count them: only \n, \r\n and \r end a line.
    return text.replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n").split("\n") if text else []


class _Slugger:
    """GitHub's de-duplication of anchors: the second `foo` is `foo-1`, the third `foo-2`."""

    def __init__(self) -> None:
        self.occurrences: dict[str, int] = {}

    def __call__(self, title: str) -> str:
        base = result = slug(title)
        while result in self.occurrences:
            self.occurrences[base] += 1
            result = f"{base}-{self.occurrences[base]}"
        self.occurrences[result] = 0
        return result


def parse_runbook(path: Path) -> Runbook:
    """Read the Markdown runbook at `path`; RunbookError for a missing file, an unclosed fence, no heading."""
    lines = _read(path)
    fenced = fenced_lines(lines, path)
    headings: list[tuple[int, int, str]] = []  # index, level, title
    for index, line in enumerate(lines):
        match = None if fenced[index] else _HEADING.match(line)
        if match:
            title = _CLOSING_HASHES.sub("", match.group(2) or "").strip()
            headings.append((index, len(match.group(1)), title))
    if not headings:
        raise RunbookError(f"{path}:1: no Markdown heading: a runbook needs '## Section' headings")
    anchor_of = _Slugger()
    sections: list[Section] = []
    roots: list[Section] = []
    stack: list[Section] = []
    # Where each section ends: the next heading of the same or a higher level, found in one pass from the end.
    ends = [len(lines)] * len(headings)
    open_levels: list[tuple[int, int]] = []  # (level, line index) of later headings, levels increasing
    for position in range(len(headings) - 1, -1, -1):
        index, level, _ = headings[position]
        while open_levels and open_levels[-1][0] > level:
            open_levels.pop()
        ends[position] = open_levels[-1][1] if open_levels else len(lines)
        open_levels.append((level, index))
    for position, (index, level, title) in enumerate(headings):
        end = ends[position]
        after = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        first_child = after if after < end else end
        body, intro = _trim(lines[index + 1 : end]), _trim(lines[index + 1 : first_child])
        section = Section(title, anchor_of(title), level, index + 1, body, intro)
        while stack and stack[-1].level >= level:
            stack.pop()
        (stack[-1].children if stack else roots).append(section)
        stack.append(section)
        sections.append(section)
    return Runbook(path, sections, roots)


def _outside_fences(text: str) -> Iterator[tuple[int, str, bool]]:
    """Each line of `text` with its index and whether it lies inside a fenced block."""
    lines = text.splitlines()
    for index, (line, inside) in enumerate(zip(lines, fenced_lines(lines, Path("<section>")), strict=True)):
        yield index, line, inside


def label_of(line: str) -> tuple[str, bool, str] | None:
    """A bold label line as (name, whether a colon follows it, the text after it)."""
    match = _LABEL.match(line)
    if match is None:
        return None
    colon = bool(match.group("inner") or match.group("outer"))
    return match.group("name").strip(), colon, match.group("rest")


def _is_resolution(name: str) -> bool:
    return part_of(name) == "resolution"


def _label_start(line: str) -> tuple[str, str] | None:
    """A line opening a labelled part (`**Resolution:** text` or `Resolution: text`) as (name, text)."""
    label = label_of(line)
    if label is not None:
        return label[0], label[2]
    match = _PLAIN_LABEL.match(line)
    return (match.group("name"), match.group("rest")) if match else None


def resolution(section: Section) -> str:
    """The section's "Resolution" / "Recovery Actions" part (a bold label or a sub-heading), fenced code
    kept verbatim; the whole section when it has none."""
    lines = section.intro.splitlines()
    start: int | None = None
    first: list[str] = []
    for index, line, inside in _outside_fences(section.intro):
        if inside:
            continue
        if start is None:
            opening = _label_start(line)
            if opening is not None and _is_resolution(opening[0]):
                start, first = index, [opening[1]] if opening[1].strip() else []
            continue
        label = label_of(line)
        if label is not None and label[1]:
            return _trim(first + lines[start + 1 : index])
    if start is not None:
        return _trim(first + lines[start + 1 :])
    for child in section.children:
        if _is_resolution(child.title):
            return child.body
    return section.body


def _table_rows(lines: list[str]) -> Iterator[list[str]]:
    """The cells of each Markdown table row among `lines`; separator rows left out."""
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("|"):
            continue
        cells = [plain(c).strip() for c in stripped.strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        yield cells


def _targets_in(lines: list[str]) -> dict[str, str]:
    targets: dict[str, str] = {}
    column: int | None = None
    current: str | None = None
    for line in lines:
        if line.strip().startswith("|"):
            cells = next(_table_rows([line]), None)
            if cells is None:
                continue
            header = next((i for i, c in enumerate(cells) if "response" in c.lower()), None)
            level = _LEVEL.match(cells[0])
            if header is not None and level is None:
                column = header
            elif level and column is not None and column < len(cells) and cells[column]:
                targets[level.group(1)] = cells[column]
            continue
        column = None
        level = _LEVEL.match(line)
        if level:
            current = level.group(1)
            continue
        response = _RESPONSE_ITEM.match(line)
        if response and current:
            targets[current] = plain(response.group(1)).strip()
    return targets


def severity_targets(runbook: Runbook) -> dict[str, str]:
    """Response time per severity ({"P1": "15 minutes", ...}) from the runbook's severity list or table
    (a "Response Time" column); empty when it has none."""
    for section in runbook.sections:
        if re.search(r"severit|classification|priorit", section.title, re.I):
            targets = _targets_in([line for _, line, inside in _outside_fences(section.body) if not inside])
            if targets:
                return targets
    return {}


def escalation(runbook: Runbook) -> list[str]:
    """The steps listed under the first heading naming "Escalation", as plain text."""
    for section in runbook.sections:
        if "escalation" not in section.title.lower():
            continue
        lines = [line for _, line, inside in _outside_fences(section.body) if not inside]
        for item in (_NUMBERED, _BULLET):
            steps = [plain(m.group(1)).strip() for m in map(item.match, lines) if m]
            if steps:
                return steps
    return []


def escalate_after(runbook: Runbook) -> str | None:
    """How long a P1 may stay unresolved before escalating ("30 minutes"): from the escalation step naming
    P1, else from one naming no severity at all."""
    steps = escalation(runbook)
    for wanted in (lambda s: re.search(r"\bP1\b", s), lambda s: not re.search(r"\bP[0-9]\b", s)):
        for step in steps:
            duration = _DURATION.search(step)
            if duration and wanted(step):
                return duration.group(1)
    return None


def part_of(name: str) -> str | None:
    """What a label or sub-heading names: "symptoms", "diagnosis", "resolution", another part, or None."""
    match = _PARTS.fullmatch(plain(name).strip())
    if match is None:
        return None
    part = match.group("part").lower()
    if re.fullmatch(_RESOLUTION, part):
        return "resolution"
    return "symptoms" if part.startswith("symptom") else "diagnosis" if part.startswith("diagnos") else part


def _parts(section: Section) -> set[str]:
    """The parts a section is divided into: its bold labels and the titles of its sub-headings."""
    names = [child.title for child in section.children]
    for _, line, inside in _outside_fences(section.intro):
        label = None if inside else label_of(line)
        if label:
            names.append(label[0])
    return {part for part in map(part_of, names) if part}


def diagnosis_sections(runbook: Runbook) -> list[Section]:
    """The incident sections: those with a diagnosis (a "Diagnosis" part, or "Symptoms" and a
    "Resolution"), outside the classification, escalation, post-incident, contacts, commands and
    monitoring parts."""
    if "diagnosis" in runbook.memo:  # every check's link asks: found once per runbook
        return list(runbook.memo["diagnosis"])
    found: list[Section] = []

    def visit(sections: list[Section]) -> None:
        for section in sections:
            if _NOT_INCIDENTS.search(section.title) or part_of(section.title):
                continue
            parts = _parts(section)
            if "diagnosis" in parts or ("symptoms" in parts and "resolution" in parts):
                found.append(section)
            visit(section.children)

    visit(runbook.roots)
    runbook.memo["diagnosis"] = found
    return list(found)


def anchor_url(path: str | PurePath, anchor: str) -> str:
    """A relative link to a section: `docs/runbook.md#anchor`."""
    return f"{PurePath(path).as_posix()}#{anchor.removeprefix('#')}"
