"""How much pytest-opscheck adds to a plain pytest start: `pytest --version` with and without it.

Run: python bench/import_overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(args: list[str], runs: int) -> float:
    """Median wall time of `python -m pytest <args>` over `runs` runs (after one warm-up)."""
    command = [sys.executable, "-m", "pytest", *args]
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    without = median_seconds(["--version", "-p", "no:opscheck"], runs)
    with_plugin = median_seconds(["--version"], runs)
    overhead_ms = (with_plugin - without) * 1000
    print(f"pytest --version without opscheck: {without * 1000:7.1f} ms (median of {runs})")
    print(f"pytest --version with opscheck:    {with_plugin * 1000:7.1f} ms (median of {runs})")
    print(f"import overhead:                   {overhead_ms:7.1f} ms (target: <= 30 ms)")
    sys.exit(0 if overhead_ms <= 30 else 1)


if __name__ == "__main__":
    main()
