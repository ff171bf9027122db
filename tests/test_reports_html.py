"""The HTML report as on-call sees it: rendered by headless Chromium at 1400×900, its DOM read back after
pytest-html's script ran (the banner's severity and colour, the order of the rows, what is on the first screen),
and the file self-contained. From one incident sweep: a P1 root cause with consequences."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from reports_incident import CONSEQUENCES, PLANTED, ROOTS, Sweep, run_sweep

SCREEN = (1400, 900)
# Chromium as a test runs it: no sandbox (root in a container), no GPU, nothing fetched, a fresh profile.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
)
# Appended to a copy of the report, after pytest-html's own script (which renders synchronously): where each
# part lands on a 1400×900 screen, and what the browser computed, as an attribute --dump-dom shows.
LAYOUT_SCRIPT = """<script>
(function () {
  const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, height: r.height}; };
  const style = (sel, prop) => { const e = document.querySelector(sel); return e ? getComputedStyle(e)[prop] : null; };
  document.body.setAttribute('data-layout', JSON.stringify({
    banner: box('#opscheck-banner'), severities: box('#opscheck-severities'), targets: box('#opscheck-targets'),
    failures: box('#opscheck-failures'), results: box('#results-table'), environment: box('#environment'),
    bannerBackground: style('#opscheck-banner', 'backgroundColor'),
    p1FailedCell: style('#opscheck-severities tr[data-severity="P1"] td:nth-child(3)', 'backgroundColor'),
    runCount: style('.summary .run-count', 'display'),
    rows: [...document.querySelectorAll('#results-table tbody.results-table-row')].map(
      (t) => [t.querySelector('.col-check').textContent, t.querySelector('.col-result').textContent]),
  }));
})();
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium; scripts/test.sh does)"
        if os.environ.get("CI"):
            pytest.fail(f"REAL SERVICE MISSING IN CI: {message}", pytrace=False)
        pytest.skip(f"REAL SERVICE MISSING (skipped; CI fails here instead): {message}")
    return found


def render(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on `page` at 1400×900 with a fresh profile."""
    width, height = SCREEN
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", *args,
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    result = run_sweep(tmp_path_factory.mktemp("incident"))
    assert result.returncode == 1, result.stdout[-3000:]
    return result


@pytest.fixture(scope="module")
def rendered(sweep: Sweep, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The DOM Chromium rendered from the report, and the layout it measured."""
    page = sweep.path / "reports/layout.html"
    page.write_text(sweep.read("reports/report.html").replace("</body>", LAYOUT_SCRIPT + "</body>"))
    result = render(page, tmp_path_factory.mktemp("profile"), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'data-layout="([^"]*)"', result.stdout)
    assert match, "the layout script did not run: " + result.stdout[:500]
    return result.stdout, json.loads(html.unescape(match.group(1)))


def test_the_report_is_one_self_contained_file(sweep: Sweep) -> None:
    text = sweep.read("reports/report.html")
    assert "<link" not in text and "assets/" not in text
    # Nothing loaded from elsewhere (pytest-html's "by pytest-html" hyperlink is a link, not a resource).
    assert not re.search(r"""src=["']?(https?:|//)|@import|url\(["']?(https?:|//)""", text)
    assert not (sweep.path / "reports/assets").exists()
    assert PLANTED not in text
    assert "<script>alert(1)" not in text, "target text is escaped"
    assert "traceback entries are hidden" not in text and "--full-trace" not in text, "not in the log panes"


def test_banner_is_coloured_by_the_worst_failing_severity(rendered: tuple[str, dict[str, Any]]) -> None:
    dom, layout = rendered
    banner = re.search(r'<div id="opscheck-banner" class="([^"]+)" data-severity="([^"]+)">(.*?)</div>', dom)
    assert banner is not None
    assert banner.group(2) == "P1"
    assert layout["bannerBackground"] == "rgb(183, 28, 28)"  # P1 red
    assert layout["p1FailedCell"] == "rgb(183, 28, 28)", "the severity table is coloured too"
    assert "P1 CRITICAL: 2 checks failing (+3 lower)" in html.unescape(banner.group(3))
    counts = re.search(r'<p class="opscheck-counts">(\d+) checks: (\d+) failed, (\d+) passed, (\d+) skipped', dom)
    assert counts is not None
    total, failed, passed, skipped = map(int, counts.groups())
    assert (failed, passed) == (5, 1) and total == failed + passed + skipped
    assert layout["runCount"] == "none", "pytest-html's 'N tests took' line is not the checks' count"


def test_failures_come_root_causes_first_each_consequence_pointing_at_its_root(
    rendered: tuple[str, dict[str, Any]]
) -> None:
    dom, layout = rendered
    table = dom[dom.index('id="opscheck-failures"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr class="opscheck-failure opscheck-(root|consequence)"[^>]*data-check="([^"]+)"', table)
    assert [check for _, check in rows] == ROOTS + CONSEQUENCES
    assert [kind for kind, _ in rows] == ["root"] * len(ROOTS) + ["consequence"] * len(CONSEQUENCES)
    for consequence in CONSEQUENCES:
        row = re.search(rf'data-check="{re.escape(consequence)}" data-caused-by="([^"]+)">(.*?)</tr>', table)
        assert row is not None and row.group(1) == "incident.db_down"
        assert 'href="#opscheck-fail-incident.db_down"' in row.group(2)
    assert 'id="opscheck-fail-incident.db_down"' in table
    # pytest-html's own rows, in its own order (through its documented hooks the rows cannot be reordered):
    # the failures first, each a Failed check (the fixture failure too, not an Error).
    failing = len(ROOTS) + len(CONSEQUENCES)
    assert sorted(check for check, _ in layout["rows"][:failing]) == sorted(ROOTS + CONSEQUENCES)
    assert {result for _, result in layout["rows"][:failing]} == {"Failed"}
    assert dict(layout["rows"])["incident.queue"] == "Failed"


def test_the_first_screen_is_for_on_call(rendered: tuple[str, dict[str, Any]]) -> None:
    dom, layout = rendered
    height = SCREEN[1]
    for part in ("banner", "severities", "targets", "failures"):
        assert layout[part] is not None and layout[part]["bottom"] <= height, f"{part} is below the first screen"
    assert layout["banner"]["top"] < layout["severities"]["top"] < layout["failures"]["top"]
    assert layout["results"]["top"] < layout["environment"]["top"], "pytest-html's Python/Plugins table is below"
    assert layout["environment"]["top"] > height
    targets = dom[dom.index('id="opscheck-targets"') :]
    targets = targets[: targets.index("</table>")]
    assert "<th>environment</th><td>default (" in targets


def test_screenshot_of_the_first_screen(sweep: Sweep, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = render(sweep.path / "reports/report.html", tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == SCREEN
