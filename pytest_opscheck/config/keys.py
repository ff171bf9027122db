"""Reading one dotted key of the settings (a team's `extra.*` keys included) and why it is not configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import SkipKind, Skipped
from .settings import Settings


def value_of(settings: Settings, key: str) -> Any:
    """The value of dotted `key` in the settings; None when absent."""
    value: Any = settings
    for part in key.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
    return value


def skipped_for(settings: Settings, key: str) -> Skipped | None:
    """Why `key` is not configured (typed: absent, or a `${VAR}` it needs is unset), None when it is."""
    if value_of(settings, key) not in (None, "", [], {}):
        return None
    variable = settings.unset(key)  # the key, a value inside it or the table it is in: its ${VAR} unset
    return Skipped(SkipKind.UNSET_VARIABLE, key, variable) if variable else Skipped(SkipKind.NOT_CONFIGURED, key)
