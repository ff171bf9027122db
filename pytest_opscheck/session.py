"""Starting a sweep under ``--opscheck``: the settings, the targets opened at once, and the sweep's plugins.

Only what opening the targets needs is imported before they start opening; the sweep's hooks and reports
(`sweep.py`) load while the targets answer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .config import ConfigError, Settings, load_settings
from .redact import Redactor
from .runbook import RunbookError
from .runbook_links import Runbooks
from .severity import CheckMeta
from .targets import Targets

SETTINGS = pytest.StashKey[Settings]()
REDACTOR = pytest.StashKey[Redactor]()
META = pytest.StashKey[CheckMeta]()
TARGETS = pytest.StashKey[Targets]()
RUNBOOKS = pytest.StashKey[Runbooks]()
OBSERVED = pytest.StashKey[dict[str, str]]()
PLUGIN_NAME = "opscheck-session"


def builtin_checks_dir() -> Path:
    """The folder of the built-in checks, installed as ``pytest_opscheck.checks``."""
    spec = importlib.util.find_spec("pytest_opscheck.checks")
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


def start(config: pytest.Config) -> None:
    """Load the settings, point collection at the checks, start opening the targets, register the sweep."""
    try:
        settings = load_settings(
            Path(config.rootpath),
            config.getoption("opscheck_config"),
            config.getoption("opscheck_env"),
            config.getoption("opscheck_timeout"),
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    folders = [builtin_checks_dir()]
    for folder in settings.checks:
        path = settings.path(folder)
        if not path.is_dir():
            raise pytest.UsageError(f"{settings.source}: checks: folder {folder} does not exist ({path})")
        folders.append(path)
    try:
        runbooks = Runbooks(settings)
    except RunbookError as exc:
        raise pytest.UsageError(f"runbook: {exc}") from None
    if config.getoption("opscheck_coverage") and settings.runbook is None:
        raise pytest.UsageError(
            f'--opscheck-coverage needs a runbook: add runbook = "docs/runbook.md" to {settings.source}'
        )
    config.args = [str(f) for f in folders]
    config.stash[SETTINGS] = settings
    config.stash[REDACTOR] = Redactor(settings.secrets)
    config.stash[RUNBOOKS] = runbooks
    targets = config.stash[TARGETS] = Targets(settings)
    if not config.option.collectonly and not config.getoption("opscheck_coverage"):
        # Open every configured target now, in the background: the slow probes (a container stats sample
        # takes one to two seconds) overlap the rest of pytest's start-up and collection.
        targets.prefetch()
    _register(config, settings, targets)


def _register(config: pytest.Config, settings: Settings, targets: Targets) -> None:
    """Register the fixtures, the sweep's hooks, its HTML report and the after-deploy wait."""
    from .fixtures import register
    from .report.html import DEFAULT_PATH
    from .sweep import Sweep

    if config.pluginmanager.hasplugin("html") and not config.getoption("htmlpath", None):
        config.option.htmlpath = DEFAULT_PATH
        config.option.self_contained_html = True
    register(config)
    sweep = Sweep(config, settings)
    config.pluginmanager.register(sweep, PLUGIN_NAME)
    seconds = config.getoption("opscheck_wait")
    if seconds:
        from .wait import Wait

        config.pluginmanager.register(Wait(seconds, targets, sweep.crashed), "opscheck-wait")
