"""pytest-opscheck: an incident runbook as executable smoke checks."""

__version__ = "0.1.0"
