"""Every example of the README and of docs/ that is marked runnable runs: shell commands (`<!-- readme-run -->`,
from the repository's root), the minimal config (`<!-- readme-toml -->`, in a project of its own), the runbook
shape coverage reads (`<!-- readme-runbook -->`), the checks of the fixtures' API (`<!-- docs-check -->`,
against a real backend and a real Compose project). And the onboarding promises: nothing installs from a
package index that has no pytest-opscheck, the README stays a first hour's read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(marker: str, language: str) -> list[tuple[str, str, str]]:
    """(page, the marker's argument, the block) of every fenced block marked `<!-- marker ... -->`."""
    found = []
    for page in PAGES:
        pattern = rf"<!-- {marker}(?: ([^>]*?))? -->\n(`{{3,}}){language}\n(.*?)\n\2\n"
        for argument, _, block in re.findall(pattern, page.read_text(), re.DOTALL):
            found.append((page.name, argument or "", block))
    return found


RUNS = blocks("readme-run", "bash")


def test_the_pages_have_runnable_examples() -> None:
    assert len(RUNS) >= 3
    assert len(blocks("readme-toml", "toml")) >= 1
    assert len(blocks("readme-runbook", "markdown")) == 1
    assert len(blocks("docs-check", "python")) == 2


@pytest.mark.parametrize(("page", "argument", "block"), RUNS, ids=[f"{p}:{b.splitlines()[0][:50]}" for p, _, b in RUNS])
def test_shell_example_runs(page: str, argument: str, block: str) -> None:
    expected = int(argument.removeprefix("exit=") or 0)
    command = block.strip().replace("pytest ", f"{sys.executable} -m pytest -p no:cacheprovider ", 1)
    command = command.replace("python ", f"{sys.executable} ", 1) if command.startswith("python ") else command
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == expected, result.stdout[-2000:] + result.stderr[-2000:]
    (ROOT / "opscheck-report.html").unlink(missing_ok=True)


def sweep(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", *args], cwd=project,
        env={**environ, "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True, text=True, timeout=300,
    )


def test_the_minimal_compose_config_is_accepted_and_its_variable_checked(tmp_path: Path) -> None:
    ((_, _, toml),) = blocks("readme-toml", "toml")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "myapp"\n\n' + toml + "\n")
    listed = sweep(tmp_path, "--collect-only", "-q", env={"POSTGRES_PASSWORD": "pw-readme-1"})
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    for check in ("stack.no_crash_loop", "backend.health", "db.reachable", "stack.required_env"):
        assert check in listed.stdout or check.split(".")[1] in listed.stdout, check
    strict = sweep(tmp_path, "--opscheck-strict", "--collect-only", "-q")
    assert strict.returncode == 4
    assert "database_url: ${POSTGRES_PASSWORD} is not set (--opscheck-strict" in strict.stderr


def test_the_runbook_shape_is_covered_line_by_line(pytester: pytest.Pytester) -> None:
    ((_, _, runbook),) = blocks("readme-runbook", "markdown")
    pytester.path.joinpath("runbook.md").write_text("# Runbook\n\n" + runbook + "\n")
    pytester.makefile(".toml", opscheck='runbook = "runbook.md"\n')
    result = pytester.runpytest("--opscheck", "--opscheck-coverage", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([
        "Database down (#database-down): *db.reachable*",
        "    docker compose exec -T db pg_isready -U postgres  -> db.reachable",
        "    psql -h localhost -U app -c 'select 1'  -> db.reachable",
        "    curl -f http://localhost:8000/health  -> backend.health",
    ])


def docs_checks() -> dict[str, str]:
    return {re.search(r"def (test_\w+)", b).group(1): b for _, _, b in blocks("docs-check", "python")}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def items_backend() -> Any:
    from servers import serving
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def items(request: Any) -> JSONResponse:
        return JSONResponse([{"id": 1}] if request.query_params.get("broken") is None else {}, status_code=200)

    async def health(request: Any) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    with serving(Starlette(routes=[Route("/api/v1/items/", items), Route("/health", health)])) as server:
        yield server


def run_docs_check(pytester: pytest.Pytester, name: str, config: str) -> pytest.RunResult:
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n' + config)
    (pytester.path / "ops").mkdir(exist_ok=True)
    (pytester.path / "ops" / "test_example.py").write_text(docs_checks()[name])
    return pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", f"example.{name[5:]}",
                              "--opscheck-json", "out.json")


def test_the_http_example_checks_a_real_backend(pytester: pytest.Pytester, items_backend: Any) -> None:
    result = run_docs_check(pytester, "test_items_answer", f'backend_url = "{items_backend.url}"\n')
    result.assert_outcomes(passed=1)
    refused = run_docs_check(pytester, "test_items_answer", 'backend_url = "http://127.0.0.1:9"\n')
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*FAILED example.items_answer*"])


@pytest.mark.docker
def test_the_stack_example_checks_a_real_compose_project(pytester: pytest.Pytester, compose_stack: Any) -> None:
    project = compose_stack(textwrap.dedent("""
        services:
          worker:
            image: ${BUSYBOX}
            command: ["sleep", "3600"]
          web:
            image: ${BUSYBOX}
            command: ["sleep", "3600"]
        """))
    result = run_docs_check(pytester, "test_worker_running", f'compose_project = "{project}"\n')
    result.assert_outcomes(passed=1)


def test_nothing_installs_from_an_index_that_has_no_pytest_opscheck() -> None:
    for page in [*PAGES, ROOT / "scripts" / "demo.sh"]:
        text = page.read_text()
        assert not re.search(r"pip install[^\n]*(?<![\w/.-])pytest-opscheck(?![\w/.-])", text), page.name
    readme = (ROOT / "README.md").read_text()
    assert "pip install ./.opscheck" in readme and "git+https://" in readme


def test_the_readme_is_task_ordered_and_starts_with_a_minimal_compose_config() -> None:
    readme = (ROOT / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.M)
    first_hour = ["Install", "See it work first", "Check your own Compose app",
                  "The gate: exit status, and what it did not check", "After a deploy", "As a CI gate",
                  "The on-call sweep at 3 a.m."]
    assert headings[: len(first_hour)] == first_hour
    for link in re.findall(r"\]\((docs/[\w.-]+)\)", readme):
        assert (ROOT / link).is_file(), link
    from pytest_opscheck.runbook.parse import slug

    outside_code = re.sub(r"^(`{3,}).*?^\1", "", readme, flags=re.M | re.S)
    anchors = {slug(title) for title in re.findall(r"^#{1,6} (.+)$", outside_code, re.M)}
    for anchor in re.findall(r"\]\(#([\w-]+)\)", readme):
        assert anchor in anchors, anchor


def test_the_fixtures_api_is_shown_by_pytest_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", opscheck='backend_url = "http://127.0.0.1:9"\n')
    result = pytester.runpytest("--opscheck", "--fixtures", "-v", "-p", "no:cacheprovider")
    text = " ".join(result.stdout.str().split())
    for documented in ("http.backend.get(path)", "http.get(path)", "stack.containers", "stack.of_service(name)",
                       "db.rows(sql, params)", "opscheck_targets.get(\"cache\")"):
        assert documented in text, documented
    page = (ROOT / "docs" / "writing-checks.md").read_text()
    for name in ("http", "stack", "db", "auth", "ws", "smtp", "opscheck_config", "opscheck_targets"):
        assert f"`{name}`" in page
