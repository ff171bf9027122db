"""Compose's config hash: the one each container was created with (its `com.docker.compose.config-hash` label)
and today's, from the compose files and `.env` as they are now (`docker compose config --hash`).

What the hash covers (docker/compose `ServiceHash`): the service's whole definition after interpolation, as
JSON, less `build`, `pull_policy`, `scale`, `deploy.replicas`, `depends_on` and `profiles`. So an edited `.env`
value the service interpolates, an edited `env_file`, a changed image tag, command, port or volume all change
it; a rebuilt image under the same tag does not (the image id does: see the containers' deploy evidence).
Compose interpolates shell variables too: a value the sweep's shell does not have is not reproducible here.
Runs the Compose CLI only (`config` reads files; it starts, pulls and changes nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .stack import Container, Stack

CONFIG_HASH = "com.docker.compose.config-hash"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
ENVIRONMENT_FILE = "com.docker.compose.project.environment_file"
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Definition:
    """The files a project is defined by, as the sweep can read them, and where they were found."""

    files: tuple[Path, ...]
    folder: Path
    env_files: tuple[Path, ...] = ()
    found: str = "the labels of its containers"


@dataclass(frozen=True)
class Today:
    """Today's hash of each service, and each service's definition as Compose reads it now: `raw` before
    interpolation (what it interpolates), `resolved` after (values may be secrets: compared, never shown)."""

    hashes: dict[str, str]
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    def environment(self, service: str) -> dict[str, str | None]:
        """The service's environment as it would be created today (env_file entries included)."""
        return dict(self.resolved.get(service, {}).get("environment") or {})

    def sources(self, service: str) -> dict[str, set[str]]:
        """What each part of the service's definition interpolates: "env:NAME" for each environment variable,
        "image", and "other" for the rest (command, ports, volumes, ...)."""
        spec = dict(self.raw.get(service) or {})
        found: dict[str, set[str]] = {}
        env = spec.pop("environment", None) or {}
        entries = env.items() if isinstance(env, dict) else (str(e).partition("=")[::2] for e in env)
        for key, value in entries:
            # `- FOO` and `FOO:` with no value pass the variable through from the environment.
            found[f"env:{key}"] = variables_in(value) if value not in (None, "") else {str(key)}
        found["image"] = variables_in(spec.pop("image", ""))
        found["other"] = variables_in(spec)
        return found


PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def compose_cli() -> list[str] | None:
    """The Compose v2 command line: the docker CLI's compose plugin where the CLI looks for it, else a
    standalone `docker-compose` (found without running anything: a start of the CLI costs a few tenths)."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    folders = (config / "cli-plugins", *map(Path, PLUGIN_DIRS))
    if shutil.which("docker") and any((folder / "docker-compose").is_file() for folder in folders):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def definition(labels: Mapping[str, str], compose_file: Path | None, env_file: Path | None) -> Definition | str:
    """The project's files: those its containers were created from when they are on this machine, else the
    configured compose file; a one-line reason when neither can be read."""
    env_files: tuple[Path, ...] = (env_file,) if env_file is not None and env_file.is_file() else ()
    labelled = tuple(Path(p) for p in (labels.get(CONFIG_FILES) or "").split(",") if p)
    folder = labels.get(WORKING_DIR)
    if labelled and folder and all(p.is_file() for p in labelled):
        recorded = tuple(Path(p) for p in (labels.get(ENVIRONMENT_FILE) or "").split(",") if p)
        if recorded and all(p.is_file() for p in recorded):
            env_files = recorded
        return Definition(labelled, Path(folder), env_files)
    if compose_file is not None and compose_file.is_file():
        return Definition((compose_file,), compose_file.parent, env_files, "compose_file")
    where = ", ".join(str(p) for p in labelled) or "(no label)"
    return f"the compose files the project was created from ({where}) are not on this machine, and no compose_file"


def dotenv(definition: Definition) -> dict[str, str]:
    """The variables of the project's env files (`--env-file`s, else the project folder's `.env`)."""
    files = definition.env_files or (definition.folder / ".env",)
    values: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            continue
        from dotenv import dotenv_values

        try:
            values.update({k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None})
        except (OSError, UnicodeDecodeError):
            continue
    return values


def variables_in(spec: object) -> set[str]:
    """The names a service's definition (before interpolation) interpolates: `${NAME...}` and `$NAME`, not `$$`."""
    text = json.dumps(spec).replace("$$", "")
    return {a or b for a, b in _VARIABLE.findall(text)}


def _command(cli: list[str], project: str, definition: Definition, *args: str) -> list[str]:
    command = [*cli, "-p", project, "--project-directory", str(definition.folder)]
    for path in definition.files:
        command += ["-f", str(path)]
    for path in definition.env_files:
        command += ["--env-file", str(path)]
    return [*command, *args]


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "level=warning" not in line]
    return (lines[-1] if lines else "no output")[:200]


def today(
    cli: list[str], project: str, definition: Definition, environ: Mapping[str, str], timeout: float,
    variables: bool = True,
) -> Today:
    """Today's hashes (`config --hash=*`) and, with `variables`, what each service interpolates
    (`config --no-interpolate`), both run at once under `environ`."""
    env = dict(environ)
    runs = {"hash": _command(cli, project, definition, "config", "--hash=*")}
    if variables:
        runs["raw"] = _command(cli, project, definition, "config", "--no-interpolate", "--format", "json")
        runs["resolved"] = _command(cli, project, definition, "config", "--format", "json")
    started = {
        name: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               stdin=subprocess.DEVNULL)
        for name, argv in runs.items()
    }
    outputs: dict[str, tuple[int, str, str]] = {}
    for name, process in started.items():
        try:
            out, err = process.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return Today({}, error=f"docker compose config took over {timeout + 10:g} s")
        outputs[name] = (process.returncode, out, err)
    code, out, err = outputs["hash"]
    if code != 0:
        return Today({}, error=f"docker compose config failed: {_first_error(err)}")
    hashes = dict(line.split(None, 1) for line in out.splitlines() if len(line.split()) == 2)
    return Today(hashes, _services(outputs.get("raw")), _services(outputs.get("resolved")))


def _services(output: tuple[int, str, str] | None) -> dict[str, dict[str, Any]]:
    """The services of a `config --format json` run, {} when it failed."""
    if output is None or output[0] != 0:
        return {}
    try:
        services = json.loads(output[1]).get("services") or {}
    except ValueError:
        return {}
    return {str(k): v for k, v in services.items() if isinstance(v, dict)}


def without(environ: Mapping[str, str], names: set[str]) -> dict[str, str]:
    """`environ` less `names`: how Compose would have interpolated had the shell not had them."""
    return {k: v for k, v in environ.items() if k not in names}


def labels_of(container: Container) -> dict[str, str]:
    return dict((container.attrs.get("Config") or {}).get("Labels") or {})


@dataclass(frozen=True)
class Prepared:
    """What comparing needs, computed once (in the background while the stack opens): the project's files,
    the Compose CLI, the environment it ran under, today's definition and the project's .env variables."""

    found: Definition
    cli: list[str]
    environ: dict[str, str]
    now: Today
    dotvars: dict[str, str]


def prepare(name: str, labels: dict[str, str], compose_file: Path | None, env_file: Path | None,
            timeout: float) -> Prepared | str:
    """Today's definition of the project whose container carries `labels`; a one-line reason when it
    cannot be had (the files are not here, no Compose v2, `config` fails)."""
    found = definition(labels, compose_file, env_file)
    if isinstance(found, str):
        return f"cannot compute today's config hash: {found}"
    cli = compose_cli()
    if cli is None:
        return "cannot compute today's config hash: no Compose v2 here (docker compose version fails)"
    environ = environment()
    now = today(cli, name, found, environ, timeout, variables=False)
    if now.error:
        return f"cannot compute today's config hash: {now.error}"
    return Prepared(found, cli, environ, now, dotenv(found))


def first_labels(stack: Stack) -> dict[str, str] | None:
    """The labels of the first container that carries a Compose config hash, None when none does."""
    return next((labels_of(c) for c in stack.containers if labels_of(c).get(CONFIG_HASH)), None)


def environment() -> dict[str, str]:
    """The sweep's environment, as the Compose CLI runs under it."""
    return dict(os.environ)
