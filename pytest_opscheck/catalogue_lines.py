"""Coverage by line: each command of a diagnosis section's code blocks, and each numbered step, with the checks
that automate it, or why none does.

A check declares the lines it automates on itself, as glob patterns (`@pytest.mark.automates("docker compose
ps", "free -m")`); a pattern matches a runbook line (its command or the comment describing it, lowercased,
quotes dropped, `docker-compose` read as `docker compose`) equal to it or starting with it and a space.
A line no check automates is either a step for people (`MANUAL`: a dashboard, the stakeholders; a fix in a
resolution, as checks only read) or listed as NOT AUTOMATED: what is still done by hand.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .catalogue import coverage, format_coverage
from .model import CheckMeta
from .runbook.parse import Runbook, Section, fenced_lines, label_of, part_of
from .runbook.text import plain

# What the sweep's log evidence step reads for the checks of a topic when they fail (the backend's log lines
# matching the regex, `sweep/failure_evidence.py`), and the runbook lines that evidence automates for them.
LOG_GREPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "websocket": (r"websocket|socket", ("docker compose logs * | grep -i *socket*",)),
    "auth": (r"auth|token|jwt", ("docker compose logs * | grep -i *auth*", "docker compose logs * | grep -i *token*")),
}

# The lines of built-in checks whose files do not carry the `automates` marker yet (their owners add it; the
# marker, once there, replaces this row).
UNMARKED: dict[str, tuple[str, ...]] = {
    "auth.secret_configured": ("docker compose exec * python -c *secret_key*", "docker compose exec * env | grep jwt*",
                               "*jwt_secret is set*", "*secret_key is set*"),
    "auth.login": ("curl -x post */login*", "*test auth endpoint*", "*verify token generation*"),
    "ws.handshake": ("wscat -c *", "*test websocket endpoint*"),
    "ws.connections_gauge": ("curl */metrics* | grep *websocket*", "*check websocket connections*"),
}

# The commands people write for the same diagnosis as a check, beside the patterns the check declares: a
# runbook says `pg_isready` or `psql -c 'select 1'` where the check's marker says `docker compose exec db psql`.
# Matched against the line and against its command alone (`core`: without sudo, VAR=value, docker/compose/
# kubectl exec and their options).
EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "db.reachable": ("pg_isready*", "psql*select 1*", "psql*select version()*", "psql * -c \\conninfo*"),
    "db.migrations_current": ("alembic current*", "alembic history*", "alembic heads*", "prisma migrate status*",
                              "npx prisma migrate status*"),
    "db.connections_headroom": ("psql*pg_stat_activity*", "psql*max_connections*"),
    "backend.health": ("curl*/health*", "wget*/health*", "http */health*", "http get */health*"),
    "frontend.root": ("curl*:5173*", "curl*:3000*", "curl*:8080/*"),
    "stack.services_running": ("docker ps*", "docker compose ps*", "docker compose top*", "docker container ls*"),
    "stack.no_crash_loop": ("docker ps -a*", "docker inspect * restartcount*", "docker compose ps -a*"),
    "stack.logs_clean": ("docker logs *", "docker compose logs *"),
    "stack.healthchecks": ("docker inspect * health*", "docker inspect *state.health*"),
    "host.disk_free": ("df*", "docker system df*"),
    "host.memory_free": ("free*", "cat /proc/meminfo*", "vmstat*"),
    "stack.memory_headroom": ("docker stats*",),
    "stack.cpu": ("docker stats*", "top*", "htop*"),
    "tls.cert_expiry": ("openssl s_client*", "openssl x509*", "curl -v https*", "curl -vi https*"),
    "email.smtp_session": ("swaks*", "openssl s_client*-starttls smtp*", "nc * 25", "nc * 587", "telnet * 25",
                           "telnet * 587"),
    "ws.handshake": ("wscat*", "websocat*"),
}
# What stands before the command itself on a runbook line: sudo, VAR=value, `docker compose exec [options]
# SERVICE`, `docker exec [options] CONTAINER`, `kubectl exec [options] POD --`.
_PREFIX = re.compile(
    r"^(?:sudo(?:\s+-\S+)*\s+|[a-z_][a-z0-9_]*=\S*\s+"
    r"|docker(?:\s+compose|-compose)?\s+exec"
    r"(?:\s+(?:(?:-u|--user|-e|--env|-w|--workdir|--index)(?:=|\s+)\S+|-[a-z]+|--[a-z-]+))*\s+\S+\s+"
    r"|kubectl\s+exec\b.*?\s--\s+)"
)

# Lines the sweep's own evidence steps do, on every failing check they concern: (patterns, what does it).
EVIDENCE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("*rollback if recent deploy*", "*recent deploy*"),
     "evidence of every failing stack and backend check: when each container was created, from which image"),
)

# Lines for people, not for a sweep: (patterns, reason).
MANUAL: tuple[tuple[tuple[str, ...], str], ...] = (
    (("*sentry*",), "a human step: read the error tracker's dashboard"),
    (("*acknowledge*", "*communicate*", "*stakeholder*", "post in *", "update *status page*", "*notify*"),
     "a human step: telling people"),
    (("if *",), "a condition for the steps after it"),
    (("edit *", "*set correct *", "ensure *", "check for * in client code", "analyze and optimize*", "then restore *",
      "*restore from backup*"),
     "a human change: the fix itself"),
)
FIX = "a fix, applied by hand: checks only read"
_PART_NAMES = {"diagnosis": "Diagnosis", "resolution": "Resolution", "initial response": "Initial response",
               "verification": "Verification", "symptoms": "Symptoms"}
_STEP_PARTS = {"diagnosis", "resolution", "initial response", "verification"}
_NUMBERED = re.compile(r"^ {0,3}\d+[.)][ \t]+(.*)$")


@dataclass(frozen=True)
class RunbookLine:
    """One command (with the comment above it) or one numbered step, in the part of the section it is in."""

    part: str  # diagnosis, resolution, initial response, verification
    text: str  # the command, or the step's text
    note: str = ""  # the comment describing the command
    step: bool = False
    header: bool = False  # a numbered step whose commands follow it in a code block: they are judged, not it


@dataclass(frozen=True)
class LineVerdict:
    """Who automates a line: the checks, or why nobody does (`reason` empty: not automated)."""

    line: RunbookLine
    checks: tuple[str, ...]
    reason: str = ""
    by: str = ""  # an evidence step of the sweep that does it, when no check does

    @property
    def status(self) -> str:
        return "automated" if self.checks or self.by else "manual" if self.reason else "not automated"

    def format(self) -> str:
        shown = f"{self.line.text}  # {self.line.note}" if self.line.note else self.line.text
        if self.line.header:
            return f"    {shown}:"
        verdict = ", ".join(self.checks) if self.checks else self.by or (f"manual: {self.reason}" if self.reason
                                                                          else "NOT AUTOMATED")
        return f"    {shown}  -> {verdict}"


def normal(text: str) -> str:
    """A line (or a pattern) as patterns match it: lowercase, quotes dropped, spaces collapsed, `docker-compose`
    read as `docker compose`. (Steps outside code are plain text already; code is taken as it is.)"""
    text = text.lower().replace('"', "").replace("'", "")
    text = re.sub(r"\bdocker-compose\b", "docker compose", text)
    return " ".join(text.split())


def core(command: str) -> str:
    """The command itself (normalised): `docker compose exec -T db pg_isready -U app` is `pg_isready -u app`,
    `sudo PGPASSWORD=x psql -c select 1` is `psql -c select 1`."""
    text = normal(command)
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text or not stripped:
            return text
        text = stripped


def matches(pattern: str, line: RunbookLine, notes: bool = True) -> bool:
    """Whether the glob `pattern` names the line: its text, the command alone (`core`), or the comment
    describing it (with `notes`), whole or as its first words."""
    wanted = normal(pattern)
    texts = (normal(line.text), "" if line.step else core(line.text), normal(line.note) if notes else "")
    return any(fnmatchcase(text, wanted) or fnmatchcase(text, wanted + " *") for text in texts if text)


def _commands(block: list[str]) -> Iterator[tuple[str, str]]:
    """(command, the comment above it) of one code block; a comment with no command under it stands alone."""
    lines = [line.strip() for line in block]
    note = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            if note:
                yield "", note
            note = ""
            continue
        if line.startswith("#"):
            if note:
                yield "", note
            note = line.lstrip("#").strip()
            continue
        command = line
        while (command.endswith("\\") or _open_quote(command)) and index < len(lines):
            command = (command.removesuffix("\\").rstrip() + " " + lines[index]).strip()
            index += 1
        command, _, inline = command.partition("  #")
        yield command.strip(), " ".join(part for part in (note, inline.strip()) if part)
        note = ""
    if note:
        yield "", note


def _open_quote(command: str) -> bool:
    """Whether a double or single quote of `command` is left open (the command goes on on the next line)."""
    unescaped = re.sub(r"\\.", "", command)
    return unescaped.count('"') % 2 == 1 or (unescaped.count("'") % 2 == 1 and '"' not in unescaped)


def section_lines(section: Section) -> list[RunbookLine]:
    """The commands and numbered steps of a diagnosis section, each in its part (Diagnosis, Resolution, ...)."""
    body = section.body.splitlines()
    fenced = fenced_lines(body, Path("<section>"))
    found: list[RunbookLine] = []
    part = "diagnosis"
    block: list[str] | None = None
    header: int | None = None  # the numbered step just before, whose commands a block may hold
    for line, inside in zip(body, fenced, strict=True):
        if inside:
            if block is None:
                block = []
                if header is not None:
                    found[header] = dataclasses.replace(found[header], header=True)
                header = None
            elif re.match(r"^\s*(`{3,}|~{3,})\s*$", line):
                if part in _STEP_PARTS:
                    found += [RunbookLine(part, c, n) if c else RunbookLine(part, n, step=True)
                              for c, n in _commands(block)]
                block = None
            else:
                block.append(line)
            continue
        heading = re.match(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", line)
        label = label_of(line)
        name = heading.group(1) if heading else label[0] if label else None
        named = part_of(name) if name else None
        if named is not None:
            part = named
            rest = label[2].strip() if label and not heading else ""
            if rest and part in _STEP_PARTS:
                found.append(RunbookLine(part, plain(rest), step=True))
            continue
        numbered = _NUMBERED.match(line)
        if numbered and part in _STEP_PARTS:
            header = len(found)
            found.append(RunbookLine(part, plain(numbered.group(1)).strip(), step=True))
        elif line.strip():
            header = None
    return found


def automated_by(line: RunbookLine, metas: Iterable[CheckMeta]) -> tuple[str, ...]:
    """The checks that automate `line`: by their `automates` patterns, or by the log evidence of their topic."""
    found = []
    for meta in metas:
        base = meta.check_id.partition("[")[0]
        patterns = (*(meta.automates or UNMARKED.get(base, ())), *EQUIVALENTS.get(base, ()))
        greps = [p for topic in meta.topics if topic in LOG_GREPS for p in LOG_GREPS[topic][1]]
        if any(matches(p, line) for p in (*patterns, *greps)):
            found.append(meta.check_id.partition("[")[0])
    return tuple(sorted(set(found)))


def verdict(line: RunbookLine, metas: list[CheckMeta]) -> LineVerdict:
    """Who automates `line`, else why it is for people (a fix in a resolution is), else nobody: NOT AUTOMATED."""
    checks = () if line.header else automated_by(line, metas)
    if checks or line.header:
        return LineVerdict(line, checks)
    for patterns, by in EVIDENCE:
        if any(matches(p, line) for p in patterns):
            return LineVerdict(line, (), by=by)
    for patterns, reason in MANUAL:
        if any(matches(p, line, notes=False) for p in patterns):
            return LineVerdict(line, (), reason)
    if line.part == "resolution":
        return LineVerdict(line, (), FIX)
    return LineVerdict(line, ())


def line_listing(section: Section, metas: list[CheckMeta]) -> list[str]:
    """The section's lines under their parts, each with its checks or its reason."""
    out: list[str] = []
    part = None
    for line in section_lines(section):
        if line.part != part:
            part = line.part
            out.append(f"  {_PART_NAMES.get(part, part)}:")
        out.append(verdict(line, metas).format())
    return out


def coverage_by_line(runbook: Runbook, metas: list[CheckMeta]) -> list[str]:
    """The coverage listing: each diagnosis section with its checks and, under it, each of its lines with the
    checks that automate it or why none does; then the uncovered sections and the count of lines by status."""
    declared = {m.check_id: (m.runbook, m.topics) for m in metas}
    rows = coverage(runbook, declared)
    sections = format_coverage(rows)
    out: list[str] = []
    counts = {"automated": 0, "manual": 0, "not automated": 0}
    for row, heading in zip(rows, sections, strict=False):
        out.append(heading)
        out += line_listing(row.section, metas)
        for line in section_lines(row.section):
            if not line.header:
                counts[verdict(line, metas).status] += 1
    out += sections[len(rows):]
    if rows:
        out.append(
            f"runbook lines: {counts['automated']} automated, {counts['manual']} for people (reason given), "
            f"{counts['not automated']} not automated"
        )
    return out
