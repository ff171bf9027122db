"""Starting a sweep under ``--opscheck``: the sweep context, the targets opening at once, and every part
registered here, in one place, each only when it is enabled (as pytest registers junitxml, xdist DSession).

Only what opening the targets needs is imported before they start opening; the sweep's parts and reports
load while the targets answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .config import ConfigError, Settings, load_settings
from .context import CONTEXT, SweepContext
from .model import RESPONSE_TARGETS, Severity
from .redact import Redactor
from .runbook import RunbookError
from .runbook.links import Runbooks
from .targets import BuiltinTargets, TargetError, Targets


def _settings(config: pytest.Config) -> Settings:
    try:
        return load_settings(
            Path(config.rootpath),
            config.getoption("opscheck_config"),
            config.getoption("opscheck_env"),
            config.getoption("opscheck_timeout"),
            strict=bool(config.getoption("opscheck_strict")),
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _folders(settings: Settings) -> list[Path]:
    """The built-in checks and the configured folders, each collected once (a loop is a usage error)."""
    from .folders import FolderError, builtin_checks_dir, distinct_folders

    folders = [builtin_checks_dir()]
    for folder in settings.checks:
        try:
            path = settings.path(folder)
            found = path.is_dir()
        except (OSError, RuntimeError):  # resolving a symlink loop
            raise pytest.UsageError(f"{settings.source}: checks: folder {folder} is a symlink loop: remove it") \
                from None
        if not found:
            raise pytest.UsageError(f"{settings.source}: checks: folder {folder} does not exist ({path})")
        folders.append(path)
    try:
        return distinct_folders(folders)
    except FolderError as exc:
        raise pytest.UsageError(f"{settings.source}: checks: {exc}") from None


def context(config: pytest.Config) -> SweepContext:
    """The sweep context from the command line and the config; usage errors name what to fix."""
    settings = _settings(config)
    try:
        runbooks = Runbooks(settings)
    except RunbookError as exc:
        raise pytest.UsageError(f"runbook: {exc}") from None
    if config.getoption("opscheck_coverage") and settings.runbook is None:
        raise pytest.UsageError(
            f'--opscheck-coverage needs a runbook: add runbook = "docs/runbook.md" to {settings.source}'
        )
    return SweepContext(
        settings=settings,
        redact=Redactor(settings.secrets),
        runbooks=runbooks,
        targets=Targets(settings),
        response_targets=runbooks.targets(RESPONSE_TARGETS),
        escalation=runbooks.escalation(),
        fail_on=Severity[config.getoption("opscheck_fail_on") or "P4"],
        disable=tuple(settings.disable),
        history=_history(config, settings),
    )


def _history(config: pytest.Config, settings: Settings) -> object:
    """What keeps the stack's fingerprint between sweeps (None where nothing can: an xdist worker)."""
    from .changes import History

    return History.from_config(config, settings)


def start(config: pytest.Config) -> None:
    """Build the sweep context, declare the targets, start opening them, register the sweep's parts."""
    from .report.paths import check_paths

    check_paths(config)  # every file it reads or writes, before the config opens anything
    ctx = config.stash[CONTEXT] = context(config)
    coverage_only = bool(config.getoption("opscheck_coverage"))
    # The built-in targets and every team's, through the one hook; a conftest registered later (a checks
    # folder's, at collection) is called as soon as pytest registers it (a historic hook).
    config.pluginmanager.register(BuiltinTargets(), "opscheck-builtin-targets")
    try:
        config.hook.pytest_opscheck_targets.call_historic(kwargs={"targets": ctx.targets})
    except TargetError as exc:
        raise pytest.UsageError(f"pytest_opscheck_targets: {exc}") from None
    if not config.option.collectonly and not coverage_only:
        # Open every configured target now, in the background: the slow probes overlap the rest of pytest's
        # start-up and collection.
        ctx.targets.prefetch()
    register(config, ctx, coverage_only, _folders(ctx.settings))


def register(config: pytest.Config, ctx: SweepContext, coverage_only: bool, folders: list[Path]) -> None:
    """Every part of the sweep, each built on the context; the optional ones only when asked for."""
    from .fixtures import register as register_fixtures
    from .report import files, html
    from .report.terminal import TerminalReport
    from .sinks import Sinks
    from .sweep.collect import ChecksFolders, Collection
    from .sweep.record import Recorder

    plugins = config.pluginmanager
    plugins.register(Sinks(ctx), "opscheck-sinks")
    register_fixtures(config)
    plugins.register(ChecksFolders(folders), "opscheck-folders")
    plugins.register(Collection(ctx, coverage_only), "opscheck-collection")
    plugins.register(Recorder(ctx, bool(config.option.collectonly), coverage_only), "opscheck-records")
    plugins.register(TerminalReport(ctx), "opscheck-terminal")
    html.enable(config, ctx)
    files.register(config, ctx)
    seconds = config.getoption("opscheck_wait")
    if seconds:
        from .sweep.wait import Wait

        # pytest's run of one item, as rerun plugins use it: through the plugin manager, not a private import.
        runner = plugins.get_plugin("runner")
        assert runner is not None
        plugins.register(Wait(ctx, seconds, runner.runtestprotocol), "opscheck-wait")
    plugins.register(_Closer(ctx), "opscheck-close")


class _Closer:
    """Closes the targets when pytest is done with the sweep."""

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx

    def pytest_unconfigure(self) -> None:
        self.ctx.targets.close()
