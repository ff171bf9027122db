"""Application not starting / service outage / logs: the stack's containers, their state, crashes, health,
environment and logs. Every diagnosis takes a `Stack` (any backend) and returns a Finding; every failure's
evidence ends with the commands for the failing services, ready to paste."""

from __future__ import annotations

import re

from ...model import Fact
from .. import facts
from ..resource.stack import LOG_LINES, Container, Stack, _would_restart, crash_loop, restarted_once
from ..result import Evidence, Finding, table
from ..secrets import MIN_SECRET_LENGTH, PLACEHOLDERS
from . import oom
from .common import engine_lost as _engine_lost
from .common import excerpt, last_lines, with_decisive
from .common import size as _bytes
from .swarm import swarm_variant  # on a Swarm stack, the diagnoses marked with it run their Swarm variant

STRONG_SECRETS = {"SECRET_KEY", "JWT_SECRET"}
LAST_RUN_LINES = 20


def ps_table(stack: Stack) -> str:
    """A `docker compose ps`-like table of the project."""
    rows = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            rows.append(["-", service, "no container", "-", "-"])
        for c in containers:
            health = c.health["Status"] if c.health else "-"
            state = c.describe() + (" (completed)" if stack.is_completed_job(c) else "")
            rows.append([c.name, service, state, health, str(c.restart_count)])
    return table(["NAME", "SERVICE", "STATE", "HEALTH", "RESTARTS"], rows)


def _steps(stack: Stack, services: list[str], *commands: str) -> Evidence:
    """Commands for the failing services, ready to paste ({s} is the service)."""
    lines = [stack.command(command.format(s=service)) for service in services for command in commands]
    return {"commands to run": "\n".join(dict.fromkeys(lines))} if lines else {}


@swarm_variant
def services_running(stack: Stack) -> Finding:
    """Every service has a running container; a declared service with none counts as down."""
    evidence = {"docker compose ps": ps_table(stack)}
    if not stack.services:
        return Finding.failed(
            f"no containers found for {stack.kind} {stack.name} (is the {stack.noun} name right? {stack.list_command})",
            evidence,
        )
    down: list[str] = []
    reasons = []
    for service in stack.services:
        containers = stack.of_service(service)
        if not containers:
            down.append(service)
            reasons.append(f"{service} (no container)")
        elif not any(c.status == "running" or stack.is_completed_job(c) for c in containers):
            down.append(service)
            reasons.append(f"{service} ({containers[0].name} {containers[0].describe()})")
    if down:
        evidence |= _steps(stack, down, "logs {s} --tail=100", "up -d {s}")
        return Finding.failed(f"not running: {', '.join(reasons)}", evidence,
                              facts=tuple(Fact(facts.NOT_RUNNING, s, r) for s, r in zip(down, reasons, strict=True)))
    return Finding.passed(evidence)


@swarm_variant
def no_crash_loop(stack: Stack) -> Finding:
    """No container restarting, exited non-zero, restarted during the sweep, or just restarted by its policy."""
    if lost := _engine_lost(stack):
        return lost
    problems: list[str] = []
    failing: list[str] = []
    evidence: Evidence = {}
    found: list[Fact] = []
    for container in stack.containers:
        now = stack.refreshed(container)
        if now is None:
            problems.append(f"{container.service} ({container.name}) was removed during the sweep")
            continue
        grew = now.restart_count - container.restart_count
        exited = now.status == "exited" and now.state.get("ExitCode") not in (0, None)
        looping = crash_loop(now.attrs)
        if not (looping or exited or grew > 0):
            continue
        detail = now.describe() if now.status in ("exited", "restarting") or looping is None else looping
        if grew > 0:
            detail += f", restarted {grew}x during the sweep"
        problems.append(f"{now.service} ({now.name}) {detail}")
        failing.append(now.service)
        last_exit = now.state.get("ExitCode") if now.status != "running" else "(running again)"
        evidence[f"{now.name}: state"] = (
            f"exit code {last_exit}, restart count {now.restart_count}, restart policy {now.restart_policy}, "
            f"last finished {now.state.get('FinishedAt') or '-'}, error {now.state.get('Error') or '-'}"
        )
        logged = now.logs(LOG_LINES)
        evidence[f"{now.name}: last {LOG_LINES} log lines"] = logged or "(empty)"
        kind = facts.RESTARTING if looping or grew > 0 or _would_restart(now.attrs) else facts.EXITED
        # What its last run's log says is why it exits (the database refused, a table missing).
        found += [Fact(kind, now.service, detail), *facts.signatures(last_lines(logged, LAST_RUN_LINES), now.service)]
    if problems:
        evidence |= _steps(stack, sorted(set(failing)), "logs {s} --tail=100")
        return Finding.failed("; ".join(problems), evidence, facts=tuple(found))
    settled = {f"{c.name}": once for c in stack.containers if (once := restarted_once(c.attrs))}
    return Finding.passed({"containers": f"{len(stack.containers)} checked", **settled})


@swarm_variant
def no_oom_kill(stack: Stack) -> Finding:
    """No container killed by the kernel's OOM killer, nor any process inside one (counted by its memory cgroup
    where the engine is local: such a kill leaves the container running, OOMKilled false)."""
    killed = [c for c in stack.containers if c.state.get("OOMKilled") or oom.killed_unflagged(c)]
    inside = oom.killed_inside(stack.containers)
    if not killed and not inside:
        return Finding.passed({"containers": f"{len(stack.containers)} checked", **oom.not_counted(stack.containers)})

    def memory(c: Container) -> str:
        limit = c.attrs.get("HostConfig", {}).get("Memory") or 0
        sample = stack.stats(c)
        mem = (sample or {}).get("memory_stats") or {}
        usage = mem.get("max_usage") or mem.get("usage")
        last = _bytes(usage) if usage else f"not measured ({c.describe()})"
        return f"memory limit {_bytes(limit) if limit else 'none (the host ran out)'}, last usage {last}"

    evidence: Evidence = {}
    same_kernel = any(c.oom_kills is not None for c in stack.containers)  # a cgroup of the stack was read here
    logs = {c.name: oom.kernel_log(c) for c in [*killed, *inside]}  # the kernel log read once per container
    for c in killed:
        evidence[c.name] = f"{memory(c)}, state {c.describe()}"
        if same_kernel:
            evidence |= oom.log_evidence(c, logs[c.name])
    for c in inside:
        evidence |= oom.inside_evidence(c, memory(c), logs[c.name])
    evidence |= _steps(stack, sorted({c.service for c in [*killed, *inside]}), "logs {s} --tail=100")
    evidence["on the host"] = "dmesg | grep -i oom\ndocker stats --no-stream"
    names = [f"{c.service} ({c.name})" for c in killed] + [oom.inside_cause(c, logs[c.name]) for c in inside]
    found = tuple(
        Fact(facts.OOM_KILLED, c.service, oom.kill_detail(c, logs.get(c.name)), oom.kill_time(c, logs.get(c.name)))
        for c in [*killed, *inside]
    )
    return Finding.failed(f"killed by the OOM killer: {', '.join(names)}", evidence, facts=found)


@swarm_variant
def healthchecks(stack: Stack) -> Finding:
    """Every container with a healthcheck reports healthy."""
    bad = []
    evidence = {}
    found: list[Fact] = []
    for c in stack.containers:
        health = c.health
        if health is None or health.get("Status") == "healthy" or c.status != "running":
            continue
        bad.append(f"{c.service} ({c.name}) {health.get('Status')}")
        found.append(Fact(facts.UNHEALTHY, c.service, str(health.get("Status"))))
        outputs = [
            f"exit {entry.get('ExitCode')}: {' '.join(str(entry.get('Output', '')).split())[:300]}"
            for entry in (health.get("Log") or [])[-5:]
        ]
        evidence[f"{c.name}: last healthcheck outputs"] = c.scrub("\n".join(outputs)) or "(none yet)"
    if bad:
        names = sorted({b.split(" ")[0] for b in bad})
        evidence |= _steps(stack, names, "logs {s} --tail=100")
        return Finding.failed(f"healthcheck not healthy: {', '.join(bad)}", evidence, facts=tuple(found))
    return Finding.passed()


def required_env(stack: Stack, required: dict[str, list[str]]) -> Finding:
    """The named variables are set, non-empty, not placeholders, and strong enough (values never shown)."""
    rows = []
    problems = []
    found: list[Fact] = []
    for service, names in sorted(required.items()):
        containers = stack.of_service(service)
        if not containers:
            problems.append(f"{service}: no container to inspect")
            continue
        for container in containers:
            env = container.env
            for name in names:
                verdict = env_verdict(name, env.get(name))
                value = env.get(name)
                rows.append([container.name, name, "set" if value is not None else "missing",
                             str(len(value or "")), verdict or "ok"])
                if verdict:
                    problems.append(f"{service} ({container.name}): {name} {verdict}")
                    found += env_facts(container, name, verdict)
    evidence = {"variables (values never shown)": table(["container", "variable", "present", "length", "verdict"],
                                                         rows)}
    if problems:
        evidence |= _steps(stack, sorted(required), "exec {s} env | cut -d= -f1")
        evidence["then"] = "grep POSTGRES .env   # and the other names above, in the .env the stack uses"
        return Finding.failed("; ".join(problems), evidence, facts=tuple(dict.fromkeys(found)))
    return Finding.passed(evidence)


def env_facts(container: Container, name: str, verdict: str) -> list[Fact]:
    """A variable found wrong; and, when the container keeps exiting and its last run's log names the variable,
    that this is why it exits (the reason of its crash loop)."""
    found = [Fact(facts.ENV_INVALID, container.service, f"{name} {verdict}")]
    down = crash_loop(container.attrs) is not None or container.status in ("restarting", "exited")
    if down and re.search(rf"\b{re.escape(name)}\b", container.last_run_logs(LAST_RUN_LINES)):
        found.append(Fact(facts.EXITS_ON_ENV, container.service, f"its log names {name}, which {verdict}"))
    return found


def env_verdict(name: str, value: str | None) -> str | None:
    """What is wrong with one variable's value, without repeating it; None when fine."""
    if value is None:
        return "is not set"
    if not value.strip():
        return "is empty"
    if value.strip().strip("'\"").lower() in PLACEHOLDERS:
        return "holds a placeholder value"
    if name in STRONG_SECRETS and len(value) < MIN_SECRET_LENGTH:
        return f"is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH})"
    return None


@swarm_variant
def logs_clean(stack: Stack, patterns: list[str]) -> Finding:
    """No error pattern in the log tail of any container since it (last) started."""
    if lost := _engine_lost(stack):
        return lost
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    evidence = {}
    dirty = []
    services: list[str] = []
    found: list[Fact] = []
    for c in stack.containers:
        # A crash loop's tracebacks are in its earlier runs: a restarting or exited container counts them all.
        looping = crash_loop(c.attrs) is not None or c.status in ("restarting", "exited")
        # The window the resolution tells the user to read (`logs <service> --tail=100`): an error that has left it
        # is not this check's failure any more.
        lines = (c.logs(LOG_LINES) if looping else c.logs_since_start(LOG_LINES)).splitlines()
        hits = [i for i, line in enumerate(lines) if regex.search(line)]
        if not hits:
            continue
        runs = f" across its runs (restart count {c.restart_count})" if looping and c.restart_count else ""
        dirty.append(f"{c.service} ({c.name}): {len(hits)} matching line(s){runs}")
        services.append(c.service)
        if looping:
            evidence[f"{c.name}: last lines of its last run ({c.describe()})"] = c.last_run_logs(LAST_RUN_LINES) \
                or "(empty)"
        evidence[f"{c.name}: matching lines"] = excerpt(lines, hits)
        shown = [lines[i] for i in with_decisive(lines, hits)]
        found.append(Fact(facts.LOG_ERRORS, c.service, f"{len(hits)} matching line(s)"))
        found += facts.signatures(shown, c.service)
    if dirty:
        evidence |= _steps(stack, sorted(set(services)), "logs {s} --tail=100")
        return Finding.failed("; ".join(dirty), evidence, facts=tuple(dict.fromkeys(found)))
    return Finding.passed({"containers": f"{len(stack.containers)} scanned, last {LOG_LINES} lines each"})

