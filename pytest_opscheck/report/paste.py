"""What a failure's reader needs on one screen, from its sealed record (already redacted and bounded): the
decisive evidence lines (the exception line, the OOM line, the error a log ends on) and the resolution made
paste-ready with what the failure itself established (the service that crashed, the commands the probe filled
in). Pure functions of a `CheckRecord`, for every reporter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..model import CheckRecord
from ..probes import facts as kinds

# Facts whose detail is a line the stack's own software printed, or says why it was killed.
LINE_FACTS = frozenset({kind for kind, _ in kinds.SIGNATURES} | {kinds.OOM_KILLED, kinds.EXITS_ON_ENV})
# Facts about a container: their subject is the Compose service.
CONTAINER_FACTS = (
    kinds.RESTARTING, kinds.EXITED, kinds.NOT_RUNNING, kinds.UNHEALTHY, kinds.OOM_KILLED, kinds.LOG_ERRORS,
    kinds.ENV_INVALID, kinds.EXITS_ON_ENV,
)
# The evidence entry where a probe puts the commands it filled in for this failure, one per line.
COMMANDS = "commands to run"
# A line that says what broke: an exception or error line of Python, Node, Go, PostgreSQL, the kernel.
_ERROR = re.compile(
    r"^(?:[\w.$]*(?:Error|Exception|Exit|Interrupt)\b(?::|$)|(?:FATAL|PANIC|ERROR|CRITICAL|Error|panic|fatal)\b:?"
    r"|.*\b(?:Out of memory: Killed process|OOMKilled|oom-kill|Killed process \d+)"
    r"|.*\b(?:connection refused|could not connect|does not exist|is not set)\b)",
    re.IGNORECASE,
)
# A log line's own prefix: a timestamp, a level in brackets, a Compose `service  | ` column.
_LOG_PREFIX = re.compile(
    r"^(?:\S+ +\| )?(?:\[?\d{4}-\d\d-\d\d[T ][\d:.,]+(?:Z|[+-]\d\d:?\d\d)?\]? )?(?:\[[A-Za-z]+\] )?"
)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_PLACEHOLDER = re.compile(r"<(service|container)>")
MAX_SERVICES = 3


def _unprefixed(line: str) -> str:
    """A log line without what the logger or Docker put before it; its own indentation kept."""
    return _LOG_PREFIX.sub("", line.rstrip(), count=1)


def _log_lines(value: str) -> Iterator[int]:
    """The indexes of the decisive lines of a log, in order: each traceback's exception line, and the error
    lines outside tracebacks (frames never)."""
    lines = [_unprefixed(line) for line in value.splitlines()]
    inside: set[int] = set()
    for index, line in enumerate(lines):
        if _TRACEBACK.search(line):
            end = kinds.decisive(lines, index)
            if end is not None:
                inside.update(range(index, end))
                yield end
    for index, line in enumerate(lines):
        if index in inside or kinds.is_frame(line) or line.startswith((" ", "\t")):
            continue
        if _ERROR.match(line):
            yield index


def decisive_lines(record: CheckRecord, limit: int = 3) -> list[str]:
    """At most `limit` lines that say what broke, each once: what the facts quote first (typed), then the last
    decisive lines of each multi-line evidence entry (the latest run of a crash loop is the one to read), each
    named by who said it."""
    found: dict[str, str] = {}

    def add(who: str, text: str) -> None:
        text = _unprefixed(text).strip()
        if text and text not in found and not any(text in seen for seen in found):
            found[text] = f"{who}: {text}" if who else text

    for fact in record.facts:
        if fact.kind in LINE_FACTS and fact.detail:
            add(fact.subject, fact.detail)
    for key, value in record.evidence.items():
        if key == COMMANDS or "\n" not in value.strip():
            continue
        lines = value.splitlines()
        who = key.split(":")[0] if ":" in key else ""
        for index in sorted(set(_log_lines(value)))[-limit:]:
            add(who, lines[index])
    return list(found.values())[:limit]


def failing_services(record: CheckRecord) -> list[str]:
    """The Compose services the failure is about, as its facts name them, in order."""
    services = [f.subject for f in record.facts if f.kind in CONTAINER_FACTS and f.subject]
    return list(dict.fromkeys(services))[:MAX_SERVICES]


def _template(line: str) -> re.Pattern[str] | None:
    """A resolution line with `<placeholders>` as a pattern its filled-in commands match."""
    command = line.strip()
    if "<" not in command or not re.search(r"<[a-z_]+>", command):
        return None
    parts = re.split(r"(<[a-z_]+>)", command)
    body = "".join(r"\S+" if re.fullmatch(r"<[a-z_]+>", p) else re.escape(p) for p in parts)
    return re.compile(body)


def paste_ready(record: CheckRecord) -> str:
    """The resolution with what this failure established written in: a line with `<placeholders>` is replaced
    by the probe's filled-in commands it stands for (evidence "commands to run"), else `<service>` and
    `<container>` by the failing services and their containers (one line each); the probe's commands no line
    stood for follow, so that every command shown can be pasted."""
    commands = [c.strip() for c in record.evidence.get(COMMANDS, "").splitlines() if c.strip()]
    services = failing_services(record)
    containers = {d.service: d.container for d in record.deploys}
    used: set[str] = set()
    out: list[str] = []
    for line in record.resolution.strip("\n").rstrip().splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        pattern = _template(line)
        filled = [c for c in commands if pattern is not None and pattern.search(c)]
        if filled:
            used.update(filled)
            out.extend(f"{indent}{c}" for c in filled[:MAX_SERVICES])
            continue
        if services and _PLACEHOLDER.search(line):
            for service in services:
                container = containers.get(service)
                text = line.replace("<service>", service)
                out.append(text.replace("<container>", container) if container else text)
            continue
        out.append(line)
    rest = [c for c in commands if c not in used]
    if rest:
        out.append("commands for this failure:")
        out.extend(f"  {c}" for c in rest)
    return "\n".join(out)
