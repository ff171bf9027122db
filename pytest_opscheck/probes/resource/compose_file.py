"""The compose file as Compose reads it: declared services, profiles, jobs and host-mode ports, with its
`${VAR}` interpolation and the project name derived the way Compose derives it. No engine needed."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import Settings
from ..result import TargetUnreachable
from ..transport.files import Refused, read_regular


@dataclass(frozen=True)
class ComposeFile:
    """What the compose file declares that the engine cannot tell: services, profiles, host-mode ports."""

    path: Path
    name: str | None = None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def active_services(self) -> list[str]:
        """Services `docker compose up` starts: without `profiles:`, or in an active COMPOSE_PROFILES."""
        active = {p.strip() for p in self.variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
        out = []
        for name, spec in self.services.items():
            profiles = spec.get("profiles") or []
            if not profiles or "*" in active or active & {str(p) for p in profiles}:
                out.append(name)
        return sorted(out)

    def jobs(self) -> set[str]:
        """Services others wait on to finish (`condition: service_completed_successfully`): exit 0 is done."""
        jobs: set[str] = set()
        for spec in self.services.values():
            depends = spec.get("depends_on")
            if isinstance(depends, dict):
                for name, cond in depends.items():
                    if isinstance(cond, dict) and cond.get("condition") == "service_completed_successfully":
                        jobs.add(str(name))
        return jobs

    def host_ports(self, service: str) -> list[int]:
        """The TCP ports a host-network service listens on, as its `ports:` (container side) and `expose:` say."""
        spec = self.services.get(service) or {}
        ports: set[int] = set()
        for entry in [*(spec.get("ports") or []), *(spec.get("expose") or [])]:
            if isinstance(entry, dict):
                target, protocol = str(entry.get("target", "")), str(entry.get("protocol", "tcp"))
            else:
                text = interpolate(str(entry), self.variables)
                text, _, protocol = text.partition("/")
                target = text.rsplit(":", 1)[-1]
            if protocol not in ("", "tcp"):
                continue
            ports.update(_port_range(interpolate(target, self.variables)))
        return sorted(ports)

    def network_mode(self, service: str) -> str:
        return interpolate(str((self.services.get(service) or {}).get("network_mode", "")), self.variables)


def _port_range(text: str) -> list[int]:
    low, _, high = text.strip().partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return []
    return list(range(int(low), int(high or low) + 1))[:100]


_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` and `$$` in one value."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2) or "", match.group(3) or ""
        value = variables.get(name)
        if operator in (":-", ":?"):
            return value if value else (default if operator == ":-" else "")
        if operator in ("-", "?"):
            return value if value is not None else (default if operator == "-" else "")
        if operator in (":+", "+"):
            return default if (value if operator == ":+" else value is not None) else ""
        return value or ""

    return _VARIABLE.sub(replace, text)


def compose_variables(folder: Path) -> dict[str, str]:
    """The variables Compose interpolates with: the `.env` of the project folder under the environment."""
    values: dict[str, str] = {}
    dotenv = folder / ".env"
    if dotenv.is_file():
        from ...config.env import EnvFileError, read_env_file

        try:
            values = read_env_file(dotenv, os.environ)
        except (OSError, UnicodeDecodeError, EnvFileError):
            values = {}
    values.update(os.environ)
    return values


def read_compose_file(path: Path, timeout: float) -> ComposeFile:
    """The compose file's name and services (PyYAML when installed, else `docker compose config`)."""
    try:  # a regular file of at most 1 MB, read within the timeout: not a FIFO, not /dev/zero
        text = read_regular(path, 1_000_000, timeout).decode("utf-8")
    except (OSError, UnicodeDecodeError, Refused) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc) if isinstance(exc, Refused) else "not UTF-8"
        raise TargetUnreachable("stack", f"cannot read compose file {path}: {reason}") from None
    variables = compose_variables(path.parent)
    try:
        import yaml
    except ImportError:
        match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", text, re.MULTILINE)
        name = interpolate(match.group(1), variables) if match else None
        services: dict[str, dict[str, Any]] = {s: {} for s in _services_from_cli(path, timeout)}
        return ComposeFile(path, name, services, variables)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise TargetUnreachable("stack", f"compose file {path} is not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise TargetUnreachable("stack", f"compose file {path} is not a mapping of services")
    raw_services = data.get("services") or {}
    services = {str(k): (v if isinstance(v, dict) else {}) for k, v in raw_services.items()} \
        if isinstance(raw_services, dict) else {}
    name = interpolate(str(data["name"]), variables) if data.get("name") else None
    return ComposeFile(path, name or None, services, variables)


def _services_from_cli(path: Path, timeout: float) -> list[str]:
    """Declared services through Compose itself, for when no YAML parser is installed."""
    try:
        done = subprocess.run(
            ["docker", "compose", "-f", str(path), "config", "--services"],
            capture_output=True, text=True, timeout=timeout + 5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip()) if done.returncode == 0 else []


def project_name(settings: Settings, compose: ComposeFile | None) -> str:
    """The Compose project: `compose_project`, else derived from the compose file the way Compose does."""
    if settings.compose_project:
        return settings.compose_project
    assert compose is not None
    from_env = compose.variables.get("COMPOSE_PROJECT_NAME")
    if from_env:
        return from_env
    if compose.name:
        return compose.name
    return re.sub(r"[^a-z0-9_-]", "", compose.folder.name.lower())
