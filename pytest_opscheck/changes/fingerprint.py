"""The stack's fingerprint at one sweep: plain entries read off the handles the sweep already opened, read-only.

One `Entry` per thing that can change under an application: per service its image (reference, id, digest), its
container (created, started, restart count), its Compose config hash or Swarm spec version, each environment
variable's name with a salted hash of its value, the files of its Compose secrets; the database's migration head;
each https target's certificate; the backend's version string. A value that is a secret (an environment value,
a secret file's content) is kept only as `Pending` until `seal` hashes it with the state file's salt: it is never
written, shown or compared in the clear. Every gatherer runs under one deadline (`gather`); a source that did
not answer in time is left out of this sweep's fingerprint (and out of the comparison), never guessed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Settings

# The aspects of a service, in the order a change list reads them.
IMAGE, IMAGE_ID, DIGEST = "image", "image id", "image digest"
CONTAINER, STARTED, RESTARTS = "container created", "started", "restarts"
CONFIG_HASH, SPEC_VERSION = "config hash", "spec version"
ENV, SECRET_FILE = "env ", "secret file "
MIGRATION_HEAD, CERTIFICATE, VERSION = "migration head", "certificate", "version"
COMPOSE_HASH = "com.docker.compose.config-hash"
COMPOSE_NUMBER = "com.docker.compose.container-number"
SECRET_FILE_MAX = 65536
VERSION_HEADERS = ("x-app-version", "x-version", "x-api-version", "x-release", "x-build-version")
VERSION_FIELDS = ("version", "app_version", "build.version", "release", "info.version")
VERSION_MAX = 120
# The config keys of the https/wss endpoints, and the target each one is.
TLS_TARGETS = {"backend_url": "backend", "frontend_url": "frontend", "websocket_url": "ws"}


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second ("2026-12-06T14:02:11Z"); None stays None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def engine_time(value: Any) -> str | None:
    """An engine timestamp (RFC 3339, nanoseconds) as `iso`; None for the zero time or nothing."""
    text = str(value or "")
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    zone = rest.lstrip("0123456789") if rest else ""
    try:
        parsed = datetime.fromisoformat((head + (zone or "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return iso(parsed.timestamp())


@dataclass(frozen=True)
class Pending:
    """A secret value waiting for the state file's salt (`seal`); never written, shown or compared as it is."""

    raw: str = ""

    def __repr__(self) -> str:  # a traceback or a debugger shows no secret either
        return "Pending(***)"


@dataclass(frozen=True)
class Entry:
    """One fingerprinted thing: `source` (stack, db, tls, backend), `subject` (a service, a database, an
    endpoint), `aspect` (image, env NAME...), its `value`, when it happened where the target says (`at`), and
    when a sweep first saw this value (`seen`, carried over while the value stays)."""

    source: str
    subject: str
    aspect: str
    value: str | Pending
    at: str | None = None
    seen: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.source, self.subject, self.aspect

    @property
    def hidden(self) -> bool:
        """Its value is a salted hash: a change is said, the value never shown."""
        return self.aspect.startswith((ENV, SECRET_FILE))

    def row(self) -> list[str | None]:
        if isinstance(self.value, Pending):
            raise TypeError(f"{self.subject}: {self.aspect}: seal() the fingerprint before writing it")
        return [self.source, self.subject, self.aspect, self.value, self.at, self.seen]

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        source, subject, aspect, value, at, seen = row[:6]
        return cls(str(source), str(subject), str(aspect), str(value), None if at is None else str(at),
                   None if seen is None else str(seen))


@dataclass(frozen=True)
class Fingerprint:
    """The entries of one sweep, taken at `taken` (ISO), and the sources that answered (only those compare)."""

    taken: str
    sources: frozenset[str]
    entries: tuple[Entry, ...]
    stack_kind: str = ""  # "Compose" or "Swarm": which rollback command fits

    def by_key(self) -> dict[tuple[str, str, str], Entry]:
        return {e.key: e for e in self.entries}

    def to_dict(self) -> dict[str, Any]:
        return {"taken": self.taken, "sources": sorted(self.sources), "stack_kind": self.stack_kind,
                "entries": [e.row() for e in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        return cls(str(data["taken"]), frozenset(str(s) for s in data.get("sources", ())),
                   tuple(Entry.from_row(list(r)) for r in data.get("entries", ())), str(data.get("stack_kind", "")))


def digest(salt: str, raw: str) -> str:
    """The salted hash of a secret value as the state file keeps it: HMAC-SHA256 under the file's salt."""
    mac = hmac.new(salt.encode(), raw.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()[:32]


def seal(fingerprint: Fingerprint, salt: str, before: Fingerprint | None, now: str) -> Fingerprint:
    """The fingerprint with every `Pending` value hashed under `salt`, and each entry's `seen`: carried from
    `before` while the value is the same, else `now`."""
    earlier = before.by_key() if before is not None else {}
    sealed = []
    for entry in fingerprint.entries:
        value = digest(salt, entry.value.raw) if isinstance(entry.value, Pending) else entry.value
        old = earlier.get(entry.key)
        seen = old.seen if old is not None and old.value == value and old.seen else now
        sealed.append(Entry(entry.source, entry.subject, entry.aspect, value, entry.at, seen))
    return replace(fingerprint, entries=tuple(sealed))


# --- the stack ------------------------------------------------------------------------------------------------


def compose_entries(stack: Any, redact: Callable[[str], str]) -> list[Entry]:
    """A Compose project's containers as the sweep inspected them when it opened the stack (no engine request but
    one `docker image inspect` per image, for its repository digest)."""
    entries: list[Entry] = []
    images: dict[str, tuple[str | None, frozenset[str]]] = {}
    for container in stack.containers:
        attrs = container.attrs
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        number = str(labels.get(COMPOSE_NUMBER) or "1")
        subject = container.service if number == "1" else f"{container.service} #{number}"
        created = engine_time(attrs.get("Created"))
        state = attrs.get("State") or {}
        started = engine_time(state.get("StartedAt"))
        reference, image_id = container.image
        add = _adder(entries, "stack", subject)
        add(IMAGE, redact(reference), created)
        add(IMAGE_ID, image_id, created)
        if image_id not in images:
            images[image_id] = _image_facts(stack, image_id)
        repo_digest, image_env = images[image_id]
        if repo_digest:
            add(DIGEST, repo_digest, created)
        add(CONTAINER, created or "?", created)
        if started:
            add(STARTED, started, started)
        add(RESTARTS, str(int(attrs.get("RestartCount") or 0)), started)
        if labels.get(COMPOSE_HASH):
            add(CONFIG_HASH, str(labels[COMPOSE_HASH]), created)
        for name, value in sorted(container.env.items()):
            if f"{name}={value}" not in image_env:  # the image's own (PATH, GPG_KEY...) change with the image
                add(ENV + name, Pending(value), created)
        entries.extend(_secret_files(attrs, subject, stack.engine_is_local))
    return entries


def _adder(entries: list[Entry], source: str, subject: str) -> Callable[[str, str | Pending, str | None], None]:
    def add(aspect: str, value: str | Pending, at: str | None) -> None:
        entries.append(Entry(source, subject, aspect, value, at))

    return add


def _image_facts(stack: Any, image_id: str) -> tuple[str | None, frozenset[str]]:
    """The image's repository digest (`repo@sha256:...`) where the engine has one (pulled, or pushed), and the
    environment it sets itself (`NAME=value`); one `docker image inspect`. Nothing when the engine cannot say."""
    if stack.engine_lost():  # the SDK would leave its socket open on an engine that is gone
        return None, frozenset()
    try:
        found = stack.client.api.inspect_image(image_id)
    except Exception:  # noqa: BLE001 - a removed image has no digest to compare
        return None, frozenset()
    digests = ", ".join(sorted(str(d) for d in found.get("RepoDigests") or [])) or None
    return digests, frozenset(str(e) for e in (found.get("Config") or {}).get("Env") or [])


def _secret_files(attrs: Mapping[str, Any], subject: str, local: bool) -> list[Entry]:
    """Compose's secrets (files bind-mounted under /run/secrets), hashed: a rotated file under a running container
    changes no container, only this. Read only when the engine is on this host and the file is small."""
    found: list[Entry] = []
    if not local:
        return found
    for mount in attrs.get("Mounts") or []:
        target = str(mount.get("Destination") or "")
        source = str(mount.get("Source") or "")
        if mount.get("Type") != "bind" or not target.startswith("/run/secrets/"):
            continue
        try:
            path = Path(source)
            if not path.is_file() or path.stat().st_size > SECRET_FILE_MAX:
                continue
            content = path.read_bytes().decode("utf-8", "surrogateescape")
            changed = iso(os.stat(path).st_mtime)
        except OSError:
            continue
        found.append(Entry("stack", subject, SECRET_FILE + target, Pending(content), changed))
    return found


def swarm_entries(stack: Any, redact: Callable[[str], str]) -> list[Entry]:
    """A Swarm stack's services as the manager keeps them: image (with its digest, as the swarm pins it), spec
    version and when it was updated, the environment of the spec, when its newest current task was created and
    how many of its retained tasks failed (a restart is a new task); one engine request per service."""
    entries: list[Entry] = []
    for service in stack.swarm_services:
        try:
            raw = stack.client.api.inspect_service(service.id)
        except Exception:  # noqa: BLE001 - removed since the sweep listed it: its listing stands
            raw = {"Spec": service.spec, "Version": {}, "UpdatedAt": None}
        spec = raw.get("Spec") or {}
        container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        updated = engine_time(raw.get("UpdatedAt"))
        add = _adder(entries, "stack", service.short)
        image = str(container.get("Image") or "?")
        reference, _, pinned = image.partition("@")
        add(IMAGE, redact(reference), updated)
        if pinned:
            add(DIGEST, pinned, updated)
        version = (raw.get("Version") or {}).get("Index")
        if version is not None:
            add(SPEC_VERSION, str(version), updated)
        for item in container.get("Env") or []:
            name, _, value = str(item).partition("=")
            add(ENV + name, Pending(value), updated)
        for secret in container.get("Secrets") or []:  # a rotated Docker secret is a new secret object
            target = str((secret.get("File") or {}).get("Name") or secret.get("SecretName") or "?")
            path = target if target.startswith("/") else f"/run/secrets/{target}"
            add(SECRET_FILE + path, Pending(str(secret.get("SecretID") or secret.get("SecretName") or "")), updated)
        # Its tasks, as listed when the sweep opened the stack: a restart is a new task (the swarm keeps a few).
        tasks = [t for t in stack.tasks if t.service == service.short]
        current = [t for t in stack.current_tasks(tasks) if t.created]
        if current:
            newest = iso(max(t.created for t in current))
            add(CONTAINER, newest or "?", newest)
        failed = [t for t in tasks if t.state in ("failed", "rejected")]
        last_failed = iso(max(t.timestamp for t in failed)) if failed else None
        add(RESTARTS, str(len(failed)), last_failed)
    return entries


# --- the database, TLS, the backend ----------------------------------------------------------------------------


def migration_entries(db: Any, settings: Settings) -> list[Entry]:
    """The migration head the database is at: Alembic's `alembic_version` (no time is recorded: first seen), else
    Prisma's last finished migration (with its finish time). One or two read-only queries."""
    tool = settings.migrations.tool if settings.migrations is not None else None
    subject = f"database {db.address}" if getattr(db, "address", None) else "database"
    if tool in (None, "alembic") and db.rows("SELECT to_regclass('alembic_version') IS NOT NULL")[0][0]:
        heads = sorted(str(r[0]) for r in db.rows("SELECT version_num FROM alembic_version"))
        return [Entry("db", subject, MIGRATION_HEAD, "alembic " + (", ".join(heads) or "(empty)"))]
    if tool in (None, "prisma"):
        from psycopg import sql

        table = sql.Identifier(*([db.schema] if db.schema else []), "_prisma_migrations")
        if db.rows("SELECT to_regclass(%s) IS NOT NULL", (table.as_string(db.connection),))[0][0]:
            rows = db.rows(sql.SQL(
                "SELECT migration_name, finished_at FROM {} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
                " ORDER BY finished_at DESC, migration_name DESC LIMIT 1").format(table))
            if rows:
                name, finished = rows[0]
                return [Entry("db", subject, MIGRATION_HEAD, f"prisma {name}", iso(finished.timestamp()))]
            return [Entry("db", subject, MIGRATION_HEAD, "prisma (none applied)")]
    return []


def tls_entries(settings: Settings, keys: Iterable[str] | None = None) -> list[Entry]:
    """Each https/wss target's certificate (of the config `keys` given: those whose target answered this sweep):
    serial and expiry, `at` when it became valid (its issue). One TLS handshake per endpoint, under the probe
    timeout; a certificate the client does not trust is left out (the TLS check says why)."""
    import ssl

    from ..probes.diagnosis.tls import https_endpoints
    from ..probes.result import TargetUnreachable
    from ..probes.transport.tls import client_context, peer_certificate

    entries = []
    context = client_context(settings)
    wanted = None if keys is None else set(keys)
    for endpoint in https_endpoints(settings):
        if wanted is not None and endpoint.key not in wanted:
            continue
        try:
            cert = peer_certificate(endpoint, context, settings.timeout)
        except (ssl.SSLError, OSError, TargetUnreachable):
            continue
        serial = str(cert.get("serialNumber") or "?")
        expires = iso(ssl.cert_time_to_seconds(str(cert["notAfter"]))) if cert.get("notAfter") else "?"
        issued = iso(ssl.cert_time_to_seconds(str(cert["notBefore"]))) if cert.get("notBefore") else None
        entries.append(Entry(f"tls {endpoint.key}", f"{endpoint.key} {endpoint}", CERTIFICATE,
                             f"serial {serial}, expires {expires}", issued))
    return entries


def version_entries(site: Any, settings: Settings, redact: Callable[[str], str]) -> list[Entry]:
    """The backend's version string where the app exposes one: `extra.version_path` (and `extra.version_field`,
    a dotted path into its JSON) or `extra.version_header` when configured; else a version header or a `version`
    field of the health answer the sweep already has (no request)."""
    extra = getattr(settings, "extra", None) or {}
    header = str(extra.get("version_header") or "").lower()
    path = extra.get("version_path")
    fields = (str(extra["version_field"]),) if extra.get("version_field") else VERSION_FIELDS
    answer = site.first
    if path:
        answer = site.sample(str(path))
        if isinstance(answer, str):  # the request failed: no version this sweep
            return []
    if answer is None:
        return []
    found = answer.headers.get(header) if header else None
    if found is None and not header:
        found = next((answer.headers[h] for h in VERSION_HEADERS if h in answer.headers), None)
        body = answer.json()
        for dotted in fields if found is None else ():
            value: Any = body
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found = str(value)
                break
    if found is None:
        return []
    return [Entry("backend", "backend", VERSION, redact(" ".join(str(found).split()))[:VERSION_MAX])]


# --- one sweep's fingerprint ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One gatherer of the fingerprint: its name (a source of entries) and a function returning them."""

    name: str
    gather: Callable[[], list[Entry]]


def sources_of(targets: Any, settings: Settings, redact: Callable[[str], str]) -> tuple[list[Source], str]:
    """The gatherers the sweep's opened targets allow (a target not configured or not reached adds none), and the
    stack's kind (Compose or Swarm)."""
    found: list[Source] = []
    kind = ""
    stack = targets.opened("stack")
    if stack is not None:
        kind = str(getattr(stack, "tool", ""))
        if hasattr(stack, "swarm_services"):
            found.append(Source("stack", lambda: swarm_entries(stack, redact)))
        else:
            found.append(Source("stack", lambda: compose_entries(stack, redact)))
    db = targets.opened("db")
    if db is not None:
        found.append(Source("db", lambda: migration_entries(db, settings)))
    # Only the endpoints whose target answered this sweep: a dead one would cost a handshake's timeout for nothing.
    answered = [key for key, target in TLS_TARGETS.items()
                if str(getattr(settings, key) or "").startswith(("https:", "wss:")) and targets.opened(target)]
    for key in answered:  # a source each: an endpoint not read this time compares nothing
        found.append(Source(f"tls {key}", functools.partial(tls_entries, settings, [key])))
    backend = targets.opened("backend")
    if backend is not None:
        found.append(Source("backend", lambda: version_entries(backend, settings, redact)))
    return found, kind


def gather(sources: Iterable[Source], deadline: float, now: str | None = None, kind: str = "") -> Fingerprint:
    """Every source at once, each in a thread, all within `deadline` seconds: a source that fails or is late is
    left out of the fingerprint (its entries are then not compared this time)."""
    from concurrent.futures import ThreadPoolExecutor, wait

    listed = list(sources)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, len(listed)), thread_name_prefix="opscheck-fingerprint")
    futures = {pool.submit(s.gather): s.name for s in listed}
    done, _ = wait(futures, timeout=max(0.0, deadline - (time.monotonic() - started)))
    pool.shutdown(wait=False, cancel_futures=True)
    entries: list[Entry] = []
    answered: set[str] = set()
    for future in done:
        if future.exception() is None:
            entries.extend(future.result())
            answered.add(futures[future])
    entries.sort(key=lambda e: e.key)
    return Fingerprint(now or iso(time.time()) or "", frozenset(answered), tuple(entries), kind)
