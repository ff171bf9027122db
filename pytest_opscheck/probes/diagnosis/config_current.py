"""Stale configuration: containers still running with the definition from before `.env` or the compose file
changed ("I fixed SECRET_KEY and it still fails"): the config hash each was created with against today's.

What the sweep cannot reproduce (a value `up` took from a shell this sweep does not have) is said, never
failed on."""

from __future__ import annotations

from ..resource.compose_hash import CONFIG_HASH, Definition, Prepared, Today, labels_of, today, without
from ..resource.stack import Container, Stack
from ..result import Evidence, Finding, table
from .stack import _steps


def _shell_and_unset(used: set[str], environ: dict[str, str], dotvars: dict[str, str]) -> tuple[set[str], set[str]]:
    """Of the variables a service interpolates, those the sweep's shell sets (`up`'s shell may have had other
    values) and those set nowhere here (`up`'s shell may have set them)."""
    used = {v for v in used if not v.startswith("COMPOSE_")}  # Compose's own, set from the project
    return {v for v in used if v in environ}, {v for v in used if v not in environ and v not in dotvars}


def config_current(stack: Stack, prepared: Prepared | str | None, timeout: float) -> Finding | str:
    """Each container's Compose config hash against today's (`prepared`, None: no container has one); a
    one-line reason (to skip) when nothing can be compared."""
    labelled = [c for c in stack.containers if labels_of(c).get(CONFIG_HASH)]
    if not labelled or prepared is None:
        return f"no container of {stack.kind} {stack.name} carries a Compose config hash ({CONFIG_HASH})"
    if isinstance(prepared, str):
        return prepared
    found, cli, environ, now, dotvars = (prepared.found, prepared.cli, prepared.environ, prepared.now,
                                         prepared.dotvars)
    if any(now.hashes.get(c.service) not in (None, labels_of(c)[CONFIG_HASH]) for c in labelled):
        now = today(cli, stack.name, found, environ, timeout)  # what each differing service is made of
        if now.error:
            return f"cannot compare the config hashes: {now.error}"
    verdicts: dict[str, str] = {}  # container name -> current / stale: ... / a reason it cannot be told
    suspects: dict[str, set[str]] = {}  # container name -> the shell variables that may explain the difference
    for c in labelled:
        want = now.hashes.get(c.service)
        if want is None:
            verdicts[c.name] = "not in today's config (removed, or under a profile this shell does not enable)"
        elif want == labels_of(c)[CONFIG_HASH]:
            verdicts[c.name] = "current"
        else:
            verdicts[c.name], shell = _differing(c, now, environ, dotvars)
            if shell:
                suspects[c.name] = shell
    if suspects:
        # Brought up from a shell without those variables? Then .env and the defaults alone give its hash.
        again = today(cli, stack.name, found, without(environ, set().union(*suspects.values())), timeout, False)
        for c in labelled:
            if c.name in suspects and again.hashes.get(c.service) == labels_of(c)[CONFIG_HASH]:
                verdicts[c.name] = f"current (brought up without the shell's {', '.join(sorted(suspects[c.name]))})"
    return _finding(stack, labelled, verdicts, now, found)


def _differing(c: Container, now: Today, environ: dict[str, str], dotvars: dict[str, str]) -> tuple[str, set[str]]:
    """Why a container's hash differs from today's: "stale: <what differs>" when the sweep can reproduce it,
    else "cannot tell: ..."; and the shell variables that may explain it (to try without them)."""
    sources = now.sources(c.service)
    definite, unsure, shell_used = [], [], set()
    running = c.env
    for key, value in sorted(now.environment(c.service).items()):
        if running.get(key) == value or (value is None and key not in running):
            continue
        shell, unset = _shell_and_unset(sources.get(f"env:{key}", set()), environ, dotvars)
        if shell or unset:
            unsure.append(_unknown(key, shell, unset))
            shell_used |= shell
        else:
            used = sorted(sources.get(f"env:{key}", set()))
            definite.append(f"{key} (set from .env's {', '.join(used)})" if used else f"{key} (in the compose files)")
    image = str(now.resolved.get(c.service, {}).get("image") or "")
    created_from = str((c.attrs.get("Config") or {}).get("Image") or "")
    if image and image != created_from:
        shell, unset = _shell_and_unset(sources.get("image", set()), environ, dotvars)
        if shell or unset:
            unsure.append(_unknown("the image", shell, unset))
            shell_used |= shell
        else:
            definite.append(f"image {created_from} -> {image}")
    if definite:
        return "stale: created with another " + ", ".join(definite), set()
    if unsure:
        return "cannot tell: " + "; ".join(unsure), shell_used
    shell, unset = _shell_and_unset(sources.get("other", set()), environ, dotvars)
    if shell or unset:
        return "cannot tell: " + _unknown("its definition", shell, unset), shell
    return "stale: its definition changed (not its environment nor its image: command, ports, volumes, ...)", set()


def _unknown(what: str, shell: set[str], unset: set[str]) -> str:
    parts = []
    if shell:
        parts.append(f"{', '.join(sorted(shell))} from this shell (the values `up` saw are unknown here)")
    if unset:
        parts.append(f"{', '.join(sorted(unset))}, set neither in .env nor in this shell")
    return f"{what} differs and interpolates " + " and ".join(parts)


def _finding(
    stack: Stack, labelled: list[Container], verdicts: dict[str, str], now: Today, found: Definition
) -> Finding | str:
    rows = [
        [c.name, c.service, labels_of(c)[CONFIG_HASH][:12], (now.hashes.get(c.service) or "-")[:12], verdicts[c.name]]
        for c in labelled
    ]
    env_files = ", ".join(str(p) for p in found.env_files) or f"{found.folder / '.env'} (Compose's default)"
    evidence: Evidence = {
        "config hash": table(["container", "service", "created with", "today", "verdict"], rows),
        "compared with": f"{', '.join(str(p) for p in found.files)} (from {found.found}); env file {env_files}; "
                         f"docker compose config --hash=<service>",
    }
    stale = [c for c in labelled if verdicts[c.name].startswith("stale")]
    told = [c for c in labelled if verdicts[c.name].startswith(("stale", "current"))]
    if not told:
        unknown = "; ".join(f"{c.service}: {verdicts[c.name]}" for c in labelled)
        return f"cannot compare any container's config hash: {unknown}"
    untold = [f"{c.service} ({c.name}): {verdicts[c.name]}" for c in labelled if c not in told]
    if untold:
        evidence["not compared"] = "\n".join(untold)
    if not stale:
        return Finding.passed(evidence)
    services = sorted({c.service for c in stale})
    evidence |= _steps(stack, services, "up -d {s}   # recreates it with today's configuration")

    return Finding.failed(
        "running with a configuration older than today's compose files and .env: "
        + "; ".join(f"{c.service} ({c.name}): {verdicts[c.name].removeprefix('stale: ')}" for c in stale)
        + f"; docker compose up -d {' '.join(services)} recreates them",
        evidence,
    )
