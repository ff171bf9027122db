"""The Swarm variants of the container diagnoses, where Compose's do not hold: a restart is a new task, so a
crash loop is a slot's failed tasks; an OOM kill is an exit 137 whose container says OOMKilled (read where the
container is on the engine talked to); an unhealthy container is killed and replaced; logs come per task
through the manager, ordered here by time."""

from __future__ import annotations

import re
import time
from typing import Any

from ...model import Fact
from .. import facts
from ..resource.stack import CRASH_WINDOW, LOG_LINES, _ago, _span
from ..resource.swarm import SwarmStack
from ..resource.swarm_model import Service, Task, current, slot_crash_loop, slots
from ..result import Evidence, Finding, TargetUnreachable
from .common import engine_lost, excerpt, last_lines, size, with_decisive
from .swarm_evidence import own, steps, task_table

# An OOM kill is reported while its task is its slot's current one, or for this long after it.
OOM_WINDOW = 3600.0
UNHEALTHY = "unhealthy container"
HEALTHCHECK = ".Spec.TaskTemplate.ContainerSpec.Healthcheck"


def _task_logs(stack: SwarmStack, task: Task, lines: int = LOG_LINES) -> str:
    found, unread = stack.task_logs([task], lines)
    if unread:
        return f"(logs not read: {unread[task.id]})"
    return "\n".join(line.text for line in found) or "(empty)"


def no_crash_loop(stack: SwarmStack) -> Finding:
    """No slot of the stack with a task that failed within `CRASH_WINDOW` (read again now)."""
    if lost := engine_lost(stack):
        return lost
    try:
        tasks = stack.tasks_now()
    except TargetUnreachable as exc:
        return Finding.failed(f"the Docker engine stopped answering during the sweep: {exc.cause}")
    seen, now = {t.id for t in stack.tasks}, time.time()
    problems: list[str] = []
    failing: list[str] = []
    evidence: Evidence = {}
    found: list[Fact] = []
    for (service, slot), history in sorted(slots(tasks).items()):
        why = slot_crash_loop(history, now, stack.history_limit)
        if why is None:
            continue
        failed = [t for t in history if t.state == "failed"]
        new = sum(1 for t in failed if t.id not in seen)
        label = current(history).label
        problems.append(f"{label} ({stack.full_name(service)}.{slot}) {why}"
                        + (f", {new} failed during the sweep" if new else ""))
        failing.append(service)
        evidence[f"{label}: tasks"] = task_table(stack, history)
        logged = _task_logs(stack, failed[-1])
        evidence[f"{label}: last {LOG_LINES} log lines of task {failed[-1].id[:12]}"] = logged
        # What its last failed task's log says is why it fails (the database refused, a table missing).
        found += [Fact(facts.RESTARTING, service, why), *facts.signatures(last_lines(logged), service)]
    if problems:
        evidence |= steps(stack, sorted(set(failing)), "docker service ps --no-trunc {s}",
                          "docker service logs --timestamps --tail 100 {s}")
        return Finding.failed("; ".join(problems), evidence, facts=tuple(dict.fromkeys(found)))
    return Finding.passed({"tasks": f"{len(tasks)} checked, {len(slots(tasks))} slots, failures within the last "
                                    f"{_span(CRASH_WINDOW)} count"})


def no_oom_kill(stack: SwarmStack) -> Finding:
    """No task killed by the OOM killer: an exit 137 (or a completed task) whose container says OOMKilled, read
    on this engine; an exit 137 on another node is named with where to confirm it."""
    now = time.time()
    currents = {t.id for t in stack.current_tasks()}
    killed: dict[str, list[Task]] = {}
    elsewhere: dict[str, list[Task]] = {}
    for task in stack.tasks:
        recent = task.id in currents or now - task.timestamp < OOM_WINDOW
        if not task.container_id or not recent or task.state not in ("failed", "complete", "shutdown", "running"):
            continue
        if stack.is_local(task):
            attrs = stack.inspect_task(task)
            if attrs and (attrs.get("State") or {}).get("OOMKilled"):
                killed.setdefault(task.service, []).append(task)
        elif task.exit_code == 137 and UNHEALTHY not in task.err:
            elsewhere.setdefault(task.service, []).append(task)
    for container in stack.containers:  # a process killed in a container that kept running (its cgroup says so)
        running = next((t for t in stack.tasks if t.container_id == container.attrs.get("Id")), None)
        if container.oom_kills and running is not None and running not in killed.get(running.service, []):
            killed.setdefault(running.service, []).append(running)
    if not killed and not elsewhere:
        return Finding.passed({"tasks": f"{len(stack.tasks)} checked"})
    evidence: Evidence = {}
    parts = []
    for service, tasks in sorted(killed.items()):  # the last task that ended says most: its exit
        last = max(tasks, key=lambda t: (t.state != "running", t.timestamp))
        how = last.why if last.state == "failed" else \
            f"{last.state}" + (f" (exit {last.exit_code})" if last.exit_code is not None else "") + \
            ": a process in it was killed"
        parts.append(f"{service} ({_times(tasks)}, the last {_ago(now - last.timestamp)}: {how})")
        evidence[service] = _memory_line(stack, stack.service(service), tasks)
    for service, tasks in sorted(elsewhere.items()):
        last = max(tasks, key=lambda t: t.timestamp)
        parts.append(f"{service} (exit 137 on node {stack.where(last)}, {_times(tasks)}: its OOMKilled flag is on "
                     "that node's engine)")
        evidence[service] = _memory_line(stack, stack.service(service), tasks)
        evidence[f"{service}: on node {stack.where(last)}"] = (
            f"docker inspect --format '{{{{.State.OOMKilled}}}}' {last.container_id[:12]}\ndmesg | grep -i oom")
    services = sorted({*killed, *elsewhere})
    for service in services:
        evidence[f"{service}: tasks"] = task_table(stack, own(stack, stack.service(service) or _unknown(service)))
    evidence |= steps(stack, services, "docker service ps --no-trunc {s}", "docker service logs --tail 100 {s}")
    evidence["on the node"] = "dmesg | grep -i oom\ndocker stats --no-stream"
    return Finding.failed("killed by the OOM killer: " + ", ".join(parts), evidence,
                          facts=tuple(Fact(facts.OOM_KILLED, s, evidence[s]) for s in services))


def _times(tasks: list[Task]) -> str:
    return f"{len(tasks)} task" + ("" if len(tasks) == 1 else "s")


def _unknown(short: str) -> Service:
    return Service("", short, short, "replicated", None)


def _memory_line(stack: SwarmStack, service: Service | None, tasks: list[Task]) -> str:
    limit = service.memory_limit if service else 0
    usage = "not measured"
    for container in stack.of_service(tasks[0].service):
        mem = (stack.stats(container) or {}).get("memory_stats") or {}
        if mem.get("max_usage") or mem.get("usage"):
            usage = f"{size(mem.get('max_usage') or mem['usage'])} ({container.name})"
            break
    return f"memory limit {size(limit) if limit else 'none (the host ran out)'}, last usage {usage}"


def healthchecks(stack: SwarmStack) -> Finding:
    """Every service with a healthcheck: no container killed as unhealthy within `CRASH_WINDOW`, and each slot's
    current task healthy (its replacement waiting in `starting` is not)."""
    now = time.time()
    by_container = {c.attrs.get("Id"): c for c in stack.containers}
    problems: list[str] = []
    failing: list[str] = []
    evidence: Evidence = {}
    for service in stack.swarm_services:
        tasks = own(stack, service)
        local = [by_container[t.container_id] for t in tasks if t.container_id in by_container]
        test = (service.container_spec.get("Healthcheck") or {}).get("Test") or []
        if test[:1] == ["NONE"] or not (test or any(c.health for c in local)):
            continue
        killed = [t for t in tasks if UNHEALTHY in t.err and now - t.timestamp < CRASH_WINDOW]
        bad = []
        for task in (current(h) for h in slots(tasks).values()):
            container = by_container.get(task.container_id)
            health = (container.health or {}).get("Status") if container is not None else None
            if task.state in ("running", "starting") and (health or task.state) not in ("healthy", "running"):
                bad.append(f"{task.label} {health or task.state}")
        if not killed and not bad:
            continue
        said = []
        if killed:
            said.append(f"the swarm killed {_times(killed).replace('task', 'unhealthy container')} in the last "
                        f"{_span(CRASH_WINDOW)}, the last {_ago(now - killed[-1].timestamp)} ({killed[-1].err})")
        said.extend(f"{b} now" for b in bad)
        problems.append(f"{service.short}: " + "; ".join(said))
        failing.append(service.short)
        evidence[f"{service.short}: last healthcheck outputs"] = stack.scrub(service.short,
                                                                             _health_outputs(stack, killed, tasks))
        evidence[f"{service.short}: tasks"] = task_table(stack, tasks)
    if problems:
        evidence |= steps(stack, failing, "docker service ps --no-trunc {s}", "docker service logs --tail 100 {s}",
                          f"docker service inspect --format '{{{{{{{{json {HEALTHCHECK}}}}}}}}}' {{s}}")
        return Finding.failed("healthcheck not healthy: " + "; ".join(problems), evidence,
                              facts=tuple(Fact(facts.UNHEALTHY, s) for s in failing))
    return Finding.passed()


def _health_outputs(stack: SwarmStack, killed: list[Task], tasks: list[Task]) -> str:
    """The last outputs of the healthcheck, from the latest killed container on this engine, else the current one."""
    for task in [*reversed(killed), *sorted(tasks, key=lambda t: -t.created)]:
        attrs = stack.inspect_task(task)
        health: dict[str, Any] = ((attrs or {}).get("State") or {}).get("Health") or {}
        if health.get("Log"):
            return "\n".join(f"exit {e.get('ExitCode')}: {' '.join(str(e.get('Output', '')).split())[:300]}"
                             for e in health["Log"][-5:])
    where = {stack.where(t) for t in killed or tasks}
    return f"(not on this engine: the containers ran on {', '.join(sorted(where))}; docker inspect them there)"


def logs_clean(stack: SwarmStack, patterns: list[str]) -> Finding:
    """No error pattern in the recent logs of each slot's current task, gathered through the manager and
    interleaved by time."""
    if lost := engine_lost(stack):
        return lost
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    now = time.time()
    read = {}  # each slot's current task, and a crash loop's failed tasks too: its tracebacks are in them
    for history in slots(stack.tasks).values():
        read[current(history).id] = current(history)
        if slot_crash_loop(history, now, stack.history_limit) is not None:
            read.update({t.id: t for t in history if t.state == "failed" and now - t.timestamp < CRASH_WINDOW})
    evidence: Evidence = {}
    dirty: list[str] = []
    services: list[str] = []
    unread: list[str] = []
    found: list[Fact] = []
    for service in stack.swarm_services:
        lines, missed = stack.task_logs([t for t in read.values() if t.service == service.short], LOG_LINES)
        unread.extend(missed.values())
        shown = [f"{read[line.task_id].label}.{line.task_id[:12]}@{_host(stack, read[line.task_id])} | {line.text}"
                 for line in lines]
        hits = [i for i, line in enumerate(lines) if regex.search(line.text)]
        if not hits:
            continue
        tasks = len({lines[i].task_id for i in hits})
        dirty.append(f"{service.short}: {len(hits)} matching line(s)" + (f" in {tasks} tasks" if tasks > 1 else ""))
        services.append(service.short)
        evidence[f"{service.short}: matching lines"] = excerpt(shown, hits, [line.text for line in lines])
        bare = [line.text for line in lines]
        found.append(Fact(facts.LOG_ERRORS, service.short, f"{len(hits)} matching line(s)"))
        found += facts.signatures([bare[i] for i in with_decisive(bare, hits)], service.short)
    if unread:
        evidence["logs not read"] = "\n".join(unread)
    if dirty:
        evidence |= steps(stack, services, "docker service logs --timestamps --tail 100 {s}")
        return Finding.failed("; ".join(dirty), evidence, facts=tuple(dict.fromkeys(found)))
    return Finding.passed(evidence | {"services": f"{len(stack.swarm_services)} scanned, the last {LOG_LINES} "
                                                 "lines of each slot's current task, ordered by time"})


def _host(stack: SwarmStack, task: Task) -> str:
    node = stack.node(task.node_id)
    return node.hostname if node else task.node_id[:12]
