"""The backend's health: its health endpoint says healthy, and the memory figure it reports has headroom."""

from __future__ import annotations

import json
from typing import Any

from ..result import Finding
from ..transport.web import EXCERPT, Answer

HEALTHY = {"ok", "healthy", "up", "pass", "passed", "passing", "green"}


def _unhealthy_parts(data: dict[str, Any]) -> list[str]:
    """`name: status` of each sub-check in the health JSON (`checks`, `details`) that is not healthy."""
    parts = []
    for key in ("checks", "details", "components"):
        section = data.get(key)
        if not isinstance(section, dict):
            continue
        for name, value in section.items():
            status = value.get("status") if isinstance(value, dict) else None
            if isinstance(status, str) and status.lower() not in HEALTHY:
                parts.append(f"{name}: {status}")
    return parts


def health(answer: Answer) -> Finding:
    """2xx; when the body is JSON with a status field, that field says healthy (ok/healthy/up/pass)."""
    evidence = {"health": answer.line(), "body": answer.excerpt()}
    if not 200 <= answer.status < 300:
        return Finding.failed(f"health {answer.path} answers {answer.status} {answer.reason}", evidence)
    data = answer.json()
    if data is False:
        return Finding.failed(f"health {answer.path} answers false", evidence)
    if isinstance(data, dict) and "status" in data:
        status = str(data["status"])
        if status.lower() not in HEALTHY:
            failing = _unhealthy_parts(data)
            detail = f" ({', '.join(failing)})" if failing else ""
            return Finding.failed(f"health {answer.path} reports status {status[:40]!r}{detail}", evidence)
    return Finding.passed(evidence)


def memory_section(answer: Answer, dotted: str) -> dict[str, Any] | None:
    """The memory section of the health JSON at `dotted` (e.g. checks.memory); None when there is none."""
    node = answer.json()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


_UNITS = {"": 1, "b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}


def _quantity(value: Any) -> float | None:
    """A number, or a string such as "45.2%", "512 MB", "1.5GiB" as a number (bytes for sizes)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "").rstrip("%")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):]
    try:
        return float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        return None


def memory_percent(section: dict[str, Any]) -> tuple[float, str] | None:
    """The memory use in percent, and how it was read: a percent field, or a used/total pair."""
    for key, value in section.items():
        lowered = key.lower()
        if "percent" in lowered or lowered in ("pct", "usage_pct"):
            number = _quantity(value)
            if number is not None:
                return number, f"{key} = {value}"
    lowered_keys = {k.lower(): k for k in section}
    for key in section:
        lowered = key.lower()
        if "used" not in lowered:
            continue
        total_key = lowered_keys.get(lowered.replace("used", "total"))
        if total_key is None:
            continue
        used, total = _quantity(section[key]), _quantity(section[total_key])
        if used is not None and total:
            return 100.0 * used / total, f"{key} / {total_key} = {section[key]} / {section[total_key]}"
    return None


def memory_headroom(section: dict[str, Any], dotted: str, limit: float) -> Finding:
    """The memory figure of the health JSON under `limit` percent."""
    figure = memory_percent(section)
    shown = json.dumps(section)[:EXCERPT]
    if figure is None:
        return Finding.failed(
            f"health JSON has a memory section at {dotted} but no percent or used/total figure in it",
            {dotted: shown},
        )
    percent, how = figure
    evidence = {"memory": f"{dotted}: {how} → {percent:.1f}% (limit {limit:g}%)", dotted: shown}
    if percent >= limit:
        return Finding.failed(f"backend reports memory at {percent:.0f}% (limit {limit:g}%)", evidence)
    return Finding.passed(evidence)
