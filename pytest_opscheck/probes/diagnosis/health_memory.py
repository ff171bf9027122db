"""The memory a backend reports in its health JSON, read as real services write it:

- a percent field (`percent`, `usedPercent`, `heap_pct`, "45.2%"), or a ratio (`ratio: 0.45`);
- a used figure against a limit: `used`/`max`, `used`/`limit`, `heapUsedMB`/`heapLimitMB`,
  `heap_used`/`heap_size_limit`, `rss`/`limit`; units in the key (`MB`, `_mib`, `Bytes`) or in the value
  ("512 MB", "1.5GiB"); a bare number is bytes;
- Node's `process.memoryUsage()` (`rss`, `heapTotal`, `heapUsed`, `external`): `heapTotal` is the heap V8
  has reserved so far, not its limit, and `heapUsed` is close to it whenever a collection is due, so that
  pair is no headroom: without a limit such a section is unreadable, never a failure;
- NestJS Terminus (`info.memory_heap.status`, `error.memory_rss` with its message; `details` has both): a
  status and no figure, the backend's own verdict against its own threshold.

A section that cannot be read is a skip naming its path and the keys found, never a failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..result import Finding
from ..transport.web import EXCERPT, Answer

DEFAULT_PATH = "checks.memory"
_UP = {"up", "ok", "pass", "passed", "healthy", "green"}
_DOWN = {"down", "error", "fail", "failed", "critical", "unhealthy", "red"}
_UNITS = {"": 1.0, "b": 1.0, "byte": 1.0, "bytes": 1.0, "kb": 1e3, "kib": 1024.0, "mb": 1e6, "mib": 1024.0**2,
          "gb": 1e9, "gib": 1024.0**3}
_UNIT_IN_KEY = re.compile(r"(?:(?<=[a-z0-9])(MiB|MB|KiB|KB|kB|GiB|GB|Bytes|B)|_(?i:(mib|mb|kib|kb|gib|gb|bytes|b)))$")
_ROLE_WORDS = {"used", "usage", "limit", "max", "maximum", "total", "capacity", "size"}
_LIMITS = ("limit", "max", "maximum", "capacity", "total")  # preferred first
_MEMORY_KEYS = re.compile(r"mem|heap|rss", re.IGNORECASE)
_TERMINUS = ("details", "info", "error")


@dataclass(frozen=True)
class Reading:
    """One memory section read: a percent (or the backend's own status), or why it cannot be read."""

    path: str
    percent: float | None = None
    how: str = ""
    down: str | None = None  # the backend's own verdict: memory over its threshold (the message)
    unreadable: str | None = None


def memory_check(answer: Answer, dotted: str, limit: float) -> Finding | str:
    """The memory the health JSON reports under `limit` percent; a string is why there is nothing to check."""
    data = answer.json()
    if data is None or not answer.body.strip():
        kind = answer.content_type or "no content type"
        return f"the health path {answer.path} answers {kind}, not JSON: no memory figures to read"
    sections = find_sections(data, dotted) if isinstance(data, dict) else []  # FastAPI's health is `true`
    if not sections:
        return f"the health JSON has no memory section at {dotted}"
    readings = [read_section(path, section) for path, section in sections]
    evidence = {path: json.dumps(section)[:EXCERPT] for path, section in sections}
    evidence["memory"] = "\n".join(_line(r, limit) for r in readings)
    down = [r for r in readings if r.down is not None]
    over = [r for r in readings if r.percent is not None and r.percent >= limit]
    if down or over:
        causes = [f"backend reports memory at {r.percent:.0f}% (limit {limit:g}%)" for r in over]
        causes += [f"backend reports {r.path} down: {r.down}" for r in down]
        return Finding.failed("; ".join(causes), evidence)
    if all(r.unreadable for r in readings):
        return "; ".join(f"{r.path}: {r.unreadable}" for r in readings)
    return Finding.passed(evidence)


def find_sections(data: dict[str, Any], dotted: str) -> list[tuple[str, Any]]:
    """The memory sections: the one at `dotted`; for Terminus the same key under info/error/details (a
    failing check moves from info to error); at the default path, any memory-named section found."""
    found = _at(data, dotted)
    if isinstance(found, dict):
        return [(dotted, found)]
    head, _, key = dotted.partition(".")
    if head in _TERMINUS and key:
        for other in ("error", "details", "info"):  # a failing indicator is in error (and details)
            section = _at(data, f"{other}.{key}")
            if isinstance(section, dict):
                return [(f"{other}.{key}", section)]
    if dotted != DEFAULT_PATH:
        return []
    sections: list[tuple[str, Any]] = []
    if isinstance(data.get("memory"), dict):
        sections.append(("memory", data["memory"]))
    seen: set[str] = set()
    for parent in ("checks", *_TERMINUS, "components"):
        group = data.get(parent)
        if not isinstance(group, dict):
            continue
        for key, section in group.items():
            if _MEMORY_KEYS.search(key) and isinstance(section, dict) and key not in seen:
                seen.add(key)  # Terminus repeats info/error in details: once each
                sections.append((f"{parent}.{key}", section))
    return sections


def read_section(path: str, section: dict[str, Any]) -> Reading:
    """A percent, a used/limit pair, or the backend's own status; else why it cannot be read."""
    keys = [k for k in section if isinstance(k, str)]
    status = section.get("status")
    down = None
    if isinstance(status, str) and status.lower() in _DOWN:
        message = section.get("message")
        down = str(message)[:200] if message else status
    figure = _percent_field(section) or _used_over_limit(section)
    if figure is not None:
        return Reading(path, figure[0], figure[1], down)
    if down is not None or (isinstance(status, str) and status.lower() in _UP):
        return Reading(path, None, f"status {status}", down)
    if {"heapUsed", "heapTotal"} <= set(keys) or {"heapUsed", "rss"} <= set(keys):
        return Reading(path, unreadable=(
            f"Node's process.memoryUsage() figures ({', '.join(keys)}) but no limit to compare them with "
            "(heapTotal is the heap V8 has reserved so far, not its limit): report heapLimit "
            "(v8.getHeapStatistics().heap_size_limit) or a percent to have it checked"
        ))
    return Reading(path, unreadable=f"no percent or used/limit figure to read (keys: {', '.join(keys) or 'none'})")


def _percent_field(section: dict[str, Any]) -> tuple[float, str] | None:
    for key, value in section.items():
        words = set(_words(key)[0])
        number, unit = _quantity(value, "")
        if number is None:
            continue
        if words & {"percent", "pct", "percentage"} or unit == "%":
            return number, f"{key} = {value}"
        if words & {"ratio", "fraction"} and 0 <= number <= 1:
            return 100 * number, f"{key} = {value}"
    return None


def _used_over_limit(section: dict[str, Any]) -> tuple[float, str] | None:
    """The best used/limit pair: named alike (heapUsedMB with heapLimitMB), then a generic limit."""
    named = {key: _words(key) for key in section if isinstance(key, str)}
    pairs = []
    for used_key, (words, unit) in named.items():
        if not ({"used", "usage"} & set(words) or words[-1:] == ["rss"]):
            continue
        base = [w for w in words if w not in _ROLE_WORDS]
        for limit_key, (limit_words, limit_unit) in named.items():
            role = next((r for r in _LIMITS if r in limit_words), None)
            limit_base = [w for w in limit_words if w not in _ROLE_WORDS]
            if role is None or limit_key == used_key or limit_base not in (base, []):
                continue
            if role == "total" and "heap" in limit_words:  # V8's reserved heap, not a limit
                continue
            used, _ = _quantity(section[used_key], unit)
            total, _ = _quantity(section[limit_key], limit_unit)
            if used is not None and total:
                rank = (limit_base != base, limit_unit != unit, _LIMITS.index(role))
                shown = f"{used_key} / {limit_key} = {section[used_key]} / {section[limit_key]}"
                pairs.append((rank, 100.0 * used / total, shown))
    if not pairs:
        return None
    _, percent, shown = min(pairs, key=lambda pair: pair[0])
    return percent, shown


def _words(key: str) -> tuple[list[str], str]:
    """The lower-case words of a key (camelCase or snake_case) and the unit its end names ("" for none)."""
    match = _UNIT_IN_KEY.search(key)
    unit = (match.group(1) or match.group(2)).lower() if match else ""
    stem = key[: match.start()] if match else key
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", stem)
    return [w for w in re.split(r"[^a-zA-Z0-9]+", spaced.lower()) if w], unit


def _quantity(value: Any, unit: str) -> tuple[float | None, str]:
    """A number in bytes (a size) or as written (a percent, unit "%"): from a number and the key's unit, or a
    string such as "45.2%", "512 MB", "1.5GiB"."""
    if isinstance(value, bool):
        return None, ""
    if isinstance(value, int | float):
        return float(value) * _UNITS.get(unit, 1.0), unit
    if not isinstance(value, str):
        return None, ""
    text = value.strip().lower().replace(" ", "")
    if text.endswith("%"):
        try:
            return float(text[:-1]), "%"
        except ValueError:
            return None, ""
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    written = text[len(number):] or unit
    try:
        return float(number) * _UNITS[written], written
    except (ValueError, KeyError):
        return None, ""


def _at(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _line(reading: Reading, limit: float) -> str:
    if reading.unreadable:
        return f"{reading.path}: not read: {reading.unreadable}"
    if reading.percent is not None:
        return f"{reading.path}: {reading.how} → {reading.percent:.1f}% (limit {limit:g}%)"
    verdict = f"down: {reading.down}" if reading.down else "under its threshold"
    return f"{reading.path}: {reading.how} (the backend's own check: {verdict})"
