"""The built-in runbook checks, collected under ``pytest --opscheck``."""
