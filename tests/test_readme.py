"""Every README command marked `<!-- readme-run -->` runs, from the repository's root, and succeeds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# (expected exit status, command) of every block marked `<!-- readme-run -->` or `<!-- readme-run exit=N -->`.
BLOCKS = [
    (int(code or 0), block)
    for code, block in re.findall(
        r"<!-- readme-run(?: exit=(\d+))? -->\n```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL
    )
]


def test_readme_has_runnable_blocks() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(("expected", "block"), BLOCKS, ids=[b.splitlines()[0][:60] for _, b in BLOCKS])
def test_readme_command_runs(expected: int, block: str) -> None:
    command = block.strip().replace("pytest ", f"{sys.executable} -m pytest -p no:cacheprovider ", 1)
    command = command.replace("python ", f"{sys.executable} ", 1) if command.startswith("python ") else command
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == expected, result.stdout[-2000:] + result.stderr[-2000:]
    (ROOT / "opscheck-report.html").unlink(missing_ok=True)
