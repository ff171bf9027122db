"""What changed between the last green sweep's fingerprint and this one's, as `Change`s newest first; and what a
failure gets from it: the rollback to the previous image, and the rotated secret behind refused tokens.

Only sources read by both sweeps compare (a database not reached this time changed nothing that is known). A
container created again says so once: its new start and restart count are not listed beside it, and a new image
is one change (reference and id together). An environment value or a secret file is named, never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..model import Change, CheckRecord, base_id
from ..probes.resource.secret_env import SECRET_NAME, SETTING_NAME
from .fingerprint import (
    CONFIG_HASH,
    CONTAINER,
    DIGEST,
    ENV,
    IMAGE,
    IMAGE_ID,
    MIGRATION_HEAD,
    RESTARTS,
    SECRET_FILE,
    SPEC_VERSION,
    STARTED,
    Entry,
    Fingerprint,
)

# The checks that fail when tokens signed before a secret changed are refused.
TOKEN_CHECKS = frozenset({"auth.token_accepted"})
_SHADOWED_BY_NEW_CONTAINER = (STARTED, RESTARTS)
_IMAGE_PARTS = (IMAGE, IMAGE_ID, DIGEST)
_FIRST = (": image", ": secret", ": variable", ": spec version", ": config hash", ": container")


@dataclass(frozen=True)
class NewImage:
    """A service whose image changed since the last green sweep: what it runs now, what it ran then, since when."""

    service: str
    before: str  # the reference it ran ("app:1.2")
    before_id: str  # the image id (Compose) or digest (Swarm) it ran, "" when unknown
    after: str
    after_id: str
    at: str | None


@dataclass(frozen=True)
class Rotated:
    """A secret that may sign tokens (a variable or a secret file) whose value changed since the last green sweep."""

    service: str
    name: str
    at: str | None


@dataclass(frozen=True)
class Diff:
    """The changes, newest first, and the typed facts failures read (new images, rotated secrets)."""

    changes: tuple[Change, ...]
    images: tuple[NewImage, ...]
    rotated: tuple[Rotated, ...]


def short_id(image_id: str) -> str:
    """An image id or digest as `docker images` shows it: the first 12 hex digits."""
    algorithm, _, hexa = image_id.partition(":")
    return hexa[:12] if hexa else algorithm[:12]


def image_text(reference: str | None, image_id: str | None) -> str | None:
    if reference is None and image_id is None:
        return None
    return f"{reference or '?'} ({short_id(image_id)})" if image_id else str(reference)


def hhmm(at: str | None) -> str:
    """"2026-12-06T14:02:11Z" as "14:02 UTC"."""
    return f"{at[11:16]} UTC" if at and len(at) >= 16 else "an unknown time"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not SETTING_NAME.search(name)


# What a token signing key is called (JWT_SECRET, SECRET_KEY, NEXTAUTH_SECRET, APP_KEY, /run/secrets/jwt), and what
# a secret that signs no token is (a database's or a mail relay's password, a cloud key).
_SIGNING = re.compile(r"JWT|SECRET|SIGN|APP_KEY|TOKEN", re.IGNORECASE)
_NOT_SIGNING = re.compile(r"PASS|PWD|DSN|DATABASE|POSTGRES|MYSQL|REDIS|SMTP|MAIL|AWS|S3_|STRIPE|SENTRY|ACCESS_KEY",
                          re.IGNORECASE)


def signs_tokens(name: str) -> bool:
    """Whether a secret of this name may be the key tokens are signed with: its change refuses older tokens."""
    name = name.rpartition("/")[2]  # a secret file by its own name: /run/secrets/jwt is "jwt"
    return bool(_SIGNING.search(name)) and not _NOT_SIGNING.search(name)


def diff(green: Fingerprint, now: Fingerprint, tokens_refused: bool = False) -> Diff:
    """What changed from `green` to `now`, newest first. `tokens_refused`: the token checks fail, so a rotated
    secret is said with what it does to tokens already issued."""
    common = green.sources & now.sources
    before = {k: e for k, e in green.by_key().items() if e.source in common}
    after = {k: e for k, e in now.by_key().items() if e.source in common}
    changed = {k for k in before.keys() | after.keys()
               if (before.get(k) is None) != (after.get(k) is None) or
               (k in before and k in after and before[k].value != after[k].value)}
    recreated = {(s, subj) for (s, subj, aspect) in changed if aspect == CONTAINER and (s, subj, aspect) in after}
    out: list[Change] = []
    images: list[NewImage] = []
    rotated: list[Rotated] = []
    done: set[tuple[str, str]] = set()
    for key in sorted(changed):
        source, subject, aspect = key
        old, new = before.get(key), after.get(key)
        at = _when(new or old)
        if aspect in _SHADOWED_BY_NEW_CONTAINER and (source, subject) in recreated:
            continue
        if aspect == STARTED and (source, subject, RESTARTS) in changed:
            continue  # its restart count says it, with the same time
        if aspect in _IMAGE_PARTS:
            if (source, subject) in done:
                continue
            done.add((source, subject))
            image = _image_change(subject, before, after, source)
            if image is None:
                continue
            images.append(image)
            out.append(Change(f"{subject}: image", image_text(image.before, image.before_id),
                              image_text(image.after, image.after_id), image.at))
            continue
        either = new or old
        if either is not None and either.hidden:
            name = aspect.removeprefix(ENV).removeprefix(SECRET_FILE)
            secret = aspect.startswith(SECRET_FILE) or is_secret_name(name)
            kind = "secret file" if aspect.startswith(SECRET_FILE) else ("secret" if secret else "variable")
            if old is not None and new is not None:
                signing = secret and signs_tokens(name)
                if signing:
                    rotated.append(Rotated(subject, name, at))
                note = f": tokens issued before {hhmm(at)} are refused" if signing and tokens_refused else ""
                out.append(Change(f"{subject}: {kind} {name} changed", "(earlier value)", f"(new value){note}", at))
            elif new is not None:
                out.append(Change(f"{subject}: {kind} {name} added", None, "(set)", at))
            else:  # gone with the container (or spec) that came without it
                out.append(Change(f"{subject}: {kind} {name} removed", "(set)", None,
                                  _deployed(after, source, subject) or now.taken))
            continue
        what = f"{subject}: {aspect}"
        if aspect == CONTAINER:
            what = f"{subject}: container created again" if old and new else what
        cut = 12 if aspect == CONFIG_HASH else None  # a hash is told apart by its first digits, as git does
        out.append(Change(what, str(old.value)[:cut] if old else None, str(new.value)[:cut] if new else None,
                          at if new else now.taken))
    # Newest first; at one instant (a redeploy), the image first, then what came with it.
    out.sort(key=lambda c: next((n for n, w in enumerate(_FIRST) if w in c.what), len(_FIRST)))
    out.sort(key=lambda c: c.at or "", reverse=True)
    return Diff(tuple(out), tuple(images), tuple(rotated))


def _deployed(side: dict[tuple[str, str, str], Entry], source: str, subject: str) -> str | None:
    """When the subject's current container (or Swarm spec) came about."""
    for aspect in (CONTAINER, SPEC_VERSION):
        entry = side.get((source, subject, aspect))
        if entry is not None and entry.at:
            return entry.at
    return None


def _when(entry: Entry | None) -> str | None:
    """When an entry's value came about: as the target says, else when a sweep first saw it."""
    if entry is None:
        return None
    return entry.at or entry.seen


def _image_change(subject: str, before: dict[tuple[str, str, str], Entry], after: dict[tuple[str, str, str], Entry],
                  source: str) -> NewImage | None:
    def value(side: dict[tuple[str, str, str], Entry], aspect: str) -> str:
        entry = side.get((source, subject, aspect))
        return str(entry.value) if entry else ""

    old_ref, new_ref = value(before, IMAGE), value(after, IMAGE)
    old_id = value(before, IMAGE_ID) or value(before, DIGEST)
    new_id = value(after, IMAGE_ID) or value(after, DIGEST)
    if not (old_ref or old_id) or not (new_ref or new_id) or (old_ref, old_id) == (new_ref, new_id):
        return None  # a service that came or went is said by its container; the same image is no change
    entry = after.get((source, subject, IMAGE)) or after.get((source, subject, IMAGE_ID)) or \
        after.get((source, subject, DIGEST))
    return NewImage(subject, old_ref, old_id, new_ref, new_id, _when(entry))


def rollback_step(image: NewImage, kind: str, compose: Callable[[str], str], swarm_name: str) -> str:
    """One resolution line: the image to roll back to and, for Compose and Swarm, the exact command (`compose`
    makes a `docker compose` command line of the project from its arguments)."""
    then = image_text(image.before, image.before_id)
    line = (f"Since the last green sweep {image.service} runs a new image, {image_text(image.after, image.after_id)}"
            f" (from {hhmm(image.at)}); before it ran {then}. If this failure began with it, roll back: ")
    service = image.service.partition(" #")[0]
    if kind == "Swarm":
        pinned = f"{image.before}@{image.before_id}" if image.before_id.startswith("sha256:") else image.before
        return line + f"docker service rollback {swarm_name} (or docker service update --image {pinned} {swarm_name})"
    if kind == "Compose":
        if image.before == image.after and image.before_id:
            return line + (f"docker tag {image.before_id} {image.before} && "
                           f"{compose(f'up -d --no-deps --pull never {service}')}")
        return line + (f"set image: {image.before} for {service} in the Compose file (or the variable that sets it), "
                       f"then {compose(f'up -d --no-deps {service}')}")
    return line + f"redeploy {service} with {then}"


def services_of(record: CheckRecord, roles: dict[str, str]) -> set[str]:
    """The stack services a failed check is about: those its deploy evidence and its facts name (a fact's subject
    is a service for the stack's diagnoses), and its declared role's."""
    found = {d.service for d in record.deploys} | {f.subject for f in record.facts if f.subject}
    if record.service:
        found.add(roles.get(record.service, record.service))
    return found


def token_failures(records: Iterable[CheckRecord]) -> bool:
    return any(base_id(r.check_id) in TOKEN_CHECKS for r in records)


def rotation_step(rotated: Rotated, green: str | None) -> str:
    """One resolution line for a token check: the secret that changed and what it does to tokens already issued."""
    since = f" (last green sweep {green})" if green else ""
    return (f"{rotated.name} of {rotated.service} changed at {hhmm(rotated.at)}{since}: tokens issued before "
            f"{hhmm(rotated.at)} are refused. Clients log in again; if the change was not meant, restore the previous "
            f"value and redeploy {rotated.service}")


def release_step(sweeps: Iterable[Fingerprint | None], now: Fingerprint, service: str) -> str | None:
    """For a database ahead of the code: which release brought its migration head. The head the database is at now
    was first seen by the earliest of the kept `sweeps` (oldest first: the last green, the last) that has it;
    `service`'s image in that sweep is the release that ran when it appeared. None when the head is unknown, no
    sweep saw the service's image beside it, or that release still runs."""
    heads = [e for e in now.entries if e.aspect == MIGRATION_HEAD]
    if not heads:
        return None
    head = heads[0]
    for sweep in (*sweeps, now):
        if sweep is None:
            continue
        then = sweep.by_key()
        if then.get(head.key) is None or then[head.key].value != head.value:
            continue
        image = then.get(("stack", service, IMAGE))
        if image is None:
            return None
        ident = then.get(("stack", service, IMAGE_ID)) or then.get(("stack", service, DIGEST))
        running = now.by_key().get(("stack", service, IMAGE))
        release = image_text(str(image.value), str(ident.value) if ident else None)
        if running is not None and running.value == image.value:
            return None  # the same release runs now: no rollback left the database ahead
        return (f"The database's head, {head.value}, was first seen at {hhmm(then[head.key].seen)} "
                f"({str(then[head.key].seen)[:10]}), when {service} ran {release}: the release that brought it. "
                f"Redeploy that release, or downgrade the database to the head the running code expects")
    return None
