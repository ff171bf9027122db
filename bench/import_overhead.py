"""How much pytest-opscheck adds to a plain pytest start: `pytest --version` with and without it.

Run: python bench/import_overhead.py [--runs N]
Prints the median wall time of both (runs interleaved, so machine load hits both alike), their
difference, and the plugin module's own import time from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_MS = 30.0


def wall(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def own_import_ms() -> float:
    """Cumulative import time of the plugin module itself (pytest is already imported by then)."""
    code = "import pytest, _pytest.pytester; import pytest_opscheck.plugin"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True).stderr
    line = next(line for line in out.splitlines() if line.rstrip().endswith("| pytest_opscheck.plugin"))
    return int(line.split("|")[1]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    wall(["--version"])
    without, with_plugin = [], []
    for _ in range(runs):
        without.append(wall(["--version", "-p", "no:opscheck"]))
        with_plugin.append(wall(["--version"]))
    a, b = statistics.median(without) * 1000, statistics.median(with_plugin) * 1000
    own = own_import_ms()
    print(f"pytest --version without opscheck: {a:7.1f} ms (median of {runs})")
    print(f"pytest --version with opscheck:    {b:7.1f} ms (median of {runs})")
    print(f"difference:                        {b - a:7.1f} ms (target <= {TARGET_MS:g} ms: "
          f"{'met' if b - a <= TARGET_MS else 'NOT met'})")
    print(f"plugin module import (importtime): {own:7.1f} ms")


if __name__ == "__main__":
    main()
