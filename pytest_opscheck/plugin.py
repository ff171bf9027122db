"""The pytest entry point: options, markers, and switching the sweep on under ``--opscheck``.

Importing this module must stay cheap: everything else is imported in `pytest_configure`, and only
when ``--opscheck`` is given.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

SEVERITY_CHOICES = ("P1", "P2", "P3", "P4")
_NEEDS_OPSCHECK = (
    "opscheck_config",
    "opscheck_env",
    "opscheck_fail_on",
    "opscheck_wait",
    "opscheck_timeout",
    "opscheck_json",
    "opscheck_prometheus",
    "opscheck_postmortem",
    "opscheck_coverage",
    "opscheck_strict",
    "opscheck_state",
    "opscheck_baseline",
)


def _severity(text: str) -> str:
    level = text.strip().upper()
    if level not in SEVERITY_CHOICES:
        raise pytest.UsageError(f"--opscheck-fail-on {text}: expected one of P1, P2, P3, P4")
    return level


def _seconds(option: str) -> Callable[[str], float]:
    """The converter of `option`: a number of seconds above 0; its usage error names the option."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise pytest.UsageError(f"{option} {text}: expected a number of seconds, such as 30") from None
        if not 0 < value < float("inf"):
            raise pytest.UsageError(f"{option} {text}: expected a number of seconds above 0, such as 30")
        return value

    return convert


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opscheck", "runbook smoke checks (pytest-opscheck)")
    group.addoption(
        "--opscheck",
        action="store_true",
        default=False,
        help="Run the built-in runbook checks and the configured checks folders against the configured stack",
    )
    group.addoption(
        "--opscheck-config",
        metavar="PATH",
        help="Config file (default: [tool.opscheck] in the rootdir's pyproject.toml, else opscheck.toml)",
    )
    group.addoption(
        "--opscheck-env", metavar="NAME", help="Named environment of the config, e.g. staging or prod"
    )
    group.addoption(
        "--opscheck-fail-on",
        metavar="P1..P4",
        type=_severity,
        help="Lowest severity whose failure fails the run (default P4: any failure); lower ones are still reported",
    )
    group.addoption(
        "--opscheck-wait",
        metavar="SECONDS",
        type=_seconds("--opscheck-wait"),
        help="After a deploy: retry failing checks until they pass or the time is up",
    )
    group.addoption(
        "--opscheck-timeout",
        metavar="SECONDS",
        type=_seconds("--opscheck-timeout"),
        help="Network timeout of one probe (default 5, or timeout in the config)",
    )
    group.addoption("--opscheck-json", metavar="PATH", help="Write one JSON record per check to PATH")
    group.addoption(
        "--opscheck-prometheus",
        metavar="PATH",
        help="Write the results to PATH in the Prometheus text format (node_exporter textfile), atomically",
    )
    group.addoption("--opscheck-postmortem", metavar="PATH", help="Write a Markdown post-mortem draft to PATH")
    group.addoption(
        "--opscheck-strict",
        action="store_true",
        default=None,
        help="Refuse a config value whose ${VAR} is unset (exit 4) instead of skipping the checks that need it",
    )
    group.addoption(
        "--opscheck-coverage",
        action="store_true",
        default=None,
        help="List each diagnosis section of the runbook with the checks that cover it",
    )
    group.addoption(
        "--opscheck-state",
        metavar="PATH",
        help="Where the stack's fingerprint is kept between sweeps (default: a file in pytest's cache folder)",
    )
    group.addoption(
        "--opscheck-baseline",
        action="store_true",
        default=None,
        help="Record the stack as it is now as the known good state (after a verified deploy)",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "severity(level): the check's severity, P1 (worst) to P4")
    config.addinivalue_line("markers", "resolution(text): the steps to follow when the check fails")
    config.addinivalue_line("markers", "runbook(ref): the runbook section the check automates, path#anchor")
    config.addinivalue_line("markers", "topics(*names): the runbook topics the check automates, closest first")
    config.addinivalue_line(
        "markers", "depends_on(*names): targets (db, backend, ...) or checks (db.migrations_current) it needs"
    )
    config.addinivalue_line("markers", "service(role): its Compose service: backend, db, frontend or a name")
    config.addinivalue_line("markers", "automates(*patterns): the runbook lines it automates, glob patterns")
    config.addinivalue_line("markers", "stack_wide: the check is about the whole stack (or its host), not one service")
    for level in SEVERITY_CHOICES:
        # Both spellings select: -m p1 as pytest users write markers, -m P1 as every report writes severities.
        config.addinivalue_line("markers", f"{level.lower()}: checks of severity {level} (set by pytest-opscheck)")
        config.addinivalue_line("markers", f"{level}: checks of severity {level} (set by pytest-opscheck)")
    if not config.getoption("opscheck"):
        given = [name for name in _NEEDS_OPSCHECK if config.getoption(name) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise pytest.UsageError(f"{flag} needs --opscheck: run pytest --opscheck {flag} ...")
        # The app's own plain `pytest` run: the configured checks folders are the sweep's, not its tests.
        from .folders import ChecksFoldersAside

        config.pluginmanager.register(ChecksFoldersAside(config), "opscheck-inert")
        return
    from .start import start

    start(config)

