"""pytest-opscheck: an incident runbook as executable smoke checks.

What a check needs, and all it needs: ``from pytest_opscheck import expect, fail, Finding, TargetUnreachable``.
Loaded on first use, so that importing the plugin stays cheap.
"""

__version__ = "0.1.0"
__all__ = ["Fact", "Finding", "TargetUnreachable", "expect", "fail", "skip_unless_configured"]

_WHERE = {
    "expect": "verdict",
    "fail": "verdict",
    "skip_unless_configured": "verdict",
    "Finding": "probes.result",
    "TargetUnreachable": "probes.result",
    "Fact": "model",
}


def __getattr__(name):  # type: ignore[no-untyped-def]
    if name not in _WHERE:
        raise AttributeError(f"module 'pytest_opscheck' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
