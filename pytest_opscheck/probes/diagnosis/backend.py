"""The backend's health: its health endpoint says healthy (the memory it reports: `health_memory.py`)."""

from __future__ import annotations

from typing import Any

from .. import facts
from ..result import Finding
from ..transport.web import Answer

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
        return Finding.failed(f"health {answer.path} answers {answer.status} {answer.reason}", evidence,
                              facts=facts.answered(answer.status, answer.text, answer.path))
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
