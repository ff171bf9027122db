"""Each probe of a sweep alone, as the sweep opens it, in a Python that already imported every library:
the floor under a healthy sweep is the import floor plus the slowest of these.

Run: python bench/probes.py FOLDER   (FOLDER holds the opscheck.toml of the target) — prints one JSON object,
target -> seconds; the stack's includes the stats sample of every running container. A target that does not
answer counts the time it took to say so.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

LIBRARIES = ("docker", "httpx", "httpcore", "psycopg", "websockets.sync.client")


def main() -> None:
    import importlib

    for name in LIBRARIES:
        importlib.import_module(name)
    from pytest_opscheck.config import load_settings
    from pytest_opscheck.probes.result import TargetUnreachable
    from pytest_opscheck.targets import TARGETS, Targets

    settings = load_settings(Path(sys.argv[1]), None, None, None)
    configured = Targets(settings)
    seconds: dict[str, float] = {}
    for name, spec in TARGETS.items():
        if configured.missing(name) is not None:
            continue
        opener = spec.load()
        started = time.perf_counter()
        handle: Any = None
        try:
            handle = opener(settings)
            if name == "stack":
                for container in handle.containers:
                    handle.stats_or_reason(container)
        except TargetUnreachable:  # a blackholed target: what counts is how long it took to say so
            pass
        seconds[name] = time.perf_counter() - started
        close = getattr(handle, "close", None)
        if callable(close):
            close()
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
