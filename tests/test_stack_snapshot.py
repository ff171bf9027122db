"""The crash-loop rule and the stack snapshot, on inspected-container dicts as the engine returns them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pytest_opscheck.probes.resource.stack import (
    CRASH_WINDOW,
    Container,
    ServiceState,
    Stack,
    container_state,
    crash_loop,
    service_state,
    snapshot_of,
)

NOW = 1_750_000_000.0


def stamp(seconds_ago: float, at: float = NOW) -> str:
    """An engine timestamp `seconds_ago` before `at`, with the nanoseconds the engine writes."""
    return datetime.fromtimestamp(at - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def inspected(
    status: str, *, restarts: int = 0, started: float | None = 600, finished: float | None = None,
    code: int = 0, policy: str = "no", retries: int = 0, health: str | None = None, at: float = NOW,
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Status": status,
        "Running": status == "running",
        "Restarting": status == "restarting",
        "ExitCode": code,
        "StartedAt": stamp(started, at) if started is not None else "0001-01-01T00:00:00Z",
        "FinishedAt": stamp(finished, at) if finished is not None else "0001-01-01T00:00:00Z",
    }
    if health:
        state["Health"] = {"Status": health, "Log": []}
    return {
        "Id": "c0ffee",
        "State": state,
        "RestartCount": restarts,
        "HostConfig": {"RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}},
    }


def test_restarting_and_up_3_seconds_after_restarts_are_the_same_verdict() -> None:
    """The same fault caught at two instants: between two runs, and 3 s into the next one."""
    between = inspected("restarting", restarts=4, started=5, finished=1, code=1, policy="always")
    up = inspected("running", restarts=4, started=3, finished=4, code=1, policy="always", health="starting")
    assert crash_loop(between, NOW) == "restarting (4 restarts, last exit code 1, 1 s ago)"
    assert crash_loop(up, NOW) == "restarted 4x by its restart policy, the last 3 s ago"
    assert container_state(between, now=NOW)[0] == container_state(up, now=NOW)[0] == "crash-looping"
    assert service_state("backend", [between], now=NOW).state == service_state("backend", [up], now=NOW).state
    assert service_state("backend", [up], now=NOW).restarts == 4


def test_a_restart_long_ago_is_no_crash_loop() -> None:
    healed = inspected("running", restarts=2, started=CRASH_WINDOW + 60, finished=CRASH_WINDOW + 61, policy="always")
    assert crash_loop(healed, NOW) is None
    assert service_state("backend", [healed], now=NOW) == ServiceState("backend", "running", "running (up 3 min)", 2)


def test_a_plain_running_container_is_no_crash_loop() -> None:
    assert crash_loop(inspected("running", started=2), NOW) is None
    assert container_state(inspected("running", started=2, health="healthy"), now=NOW) == (
        "running", "running (up 2 s, healthy)"
    )


def test_exit_0_of_a_job_is_completed() -> None:
    done = inspected("exited", started=130, finished=125, code=0)
    assert crash_loop(done, NOW) is None
    assert service_state("prestart", [done], job=True, now=NOW) == ServiceState(
        "prestart", "completed", "exited (0) 2 min ago"
    )
    # The same exit of a service nobody waits on: it is simply not running.
    assert service_state("web", [done], job=False, now=NOW).state == "stopped"


def test_a_job_that_failed_was_restarted_and_then_succeeded_is_completed() -> None:
    done = inspected("exited", restarts=2, started=8, finished=5, code=0, policy="on-failure")
    assert crash_loop(done, NOW) is None
    assert container_state(done, job=True, now=NOW) == ("completed", "exited (0) 5 s ago")


def test_a_non_zero_exit_that_the_policy_restarts_is_a_crash_loop() -> None:
    exited = inspected("exited", started=10, finished=1, code=3, policy="unless-stopped")
    assert crash_loop(exited, NOW) == "exited with code 3 1 s ago, restart policy unless-stopped"
    retried = inspected("exited", restarts=1, started=300, finished=200, code=3, policy="on-failure", retries=5)
    assert crash_loop(retried, NOW) is None  # the engine would restart it, but 200 s on it has not: given up


def test_a_non_zero_exit_without_a_restart_policy_is_stopped() -> None:
    crashed = inspected("exited", started=10, finished=2, code=1)
    assert crash_loop(crashed, NOW) is None
    assert service_state("worker", [crashed], now=NOW) == ServiceState("worker", "stopped", "exited (1) 2 s ago")
    exhausted = inspected("exited", restarts=3, started=CRASH_WINDOW + 5, finished=CRASH_WINDOW, code=1,
                          policy="on-failure", retries=3)
    assert crash_loop(exhausted, NOW) is None


def test_the_snapshot_covers_declared_services_without_a_container() -> None:
    snapshot = snapshot_of(
        ["backend", "later", "prestart"],
        [
            ("backend", inspected("running", started=40)),
            ("backend", inspected("restarting", restarts=7, started=3, finished=1, code=2, policy="always")),
            ("prestart", inspected("exited", started=100, finished=99, code=0)),
            ("extra", inspected("created", started=None)),
        ],
        jobs={"prestart"},
        now=NOW,
    )
    assert snapshot.taken == NOW
    assert {name: s.state for name, s in snapshot.services.items()} == {
        "backend": "crash-looping",  # one replica of two crash-looping is the service crash-looping
        "extra": "stopped",
        "later": "stopped",
        "prestart": "completed",
    }
    assert snapshot.services["later"].detail == "no container"
    assert snapshot.services["backend"].restarts == 7
    assert snapshot.services["extra"].detail == "created"


class Listed(Stack):
    """A backend with no engine behind it: what the interface asks of a Swarm (or any) backend."""

    def __init__(self, opened: list[Container], now: list[Container]) -> None:
        self.containers, self.now, self.engine_host, self.engine_info = opened, now, "127.0.0.1", {}

    name = property(lambda self: "demo")
    declared = property(lambda self: ["backend", "prestart"])

    def jobs(self) -> set[str]:
        return {"prestart"}

    def command(self, args: str) -> str:
        return f"docker stack {args}"

    def host_network_ports(self, service: str) -> list[int] | None:
        return None

    def refreshed(self, container: Container) -> Container | None:
        return container

    def stats_or_reason(self, container: Container) -> dict[str, Any] | str | None:
        return None

    def engine_lost(self) -> str | None:
        return None

    def engine_df(self) -> dict[str, Any]:
        return {}

    def inspected_now(self) -> list[Container]:
        return self.now

    def close(self) -> None:
        pass


def test_snapshot_as_opened_or_fresh() -> None:
    """A snapshot is taken now (`time.time()`): the inspections are dated from now."""
    now = time.time()
    up = Container("demo-backend-1", "backend", inspected("running", started=900, at=now), None)
    again = inspected("running", restarts=3, started=2, policy="always", at=now)
    looping = Container("demo-backend-1", "backend", again, None)
    stack = Listed([up], [looping])
    assert {s: v.state for s, v in stack.snapshot(fresh=False).services.items()} == {
        "backend": "running", "prestart": "stopped"
    }
    assert stack.snapshot(fresh=True).services["backend"].state == "crash-looping"
    assert stack.snapshot().services["backend"].restarts == 3
    assert stack.kind == "container stack" and stack.services == ["backend", "prestart"]
