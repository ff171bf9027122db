"""Sweeps of the any-app tests: a config written as a user writes it, the checks run through pytester, the JSON
read back, and no planted secret in any output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from realservices import free_port, wait_for

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:anyio")
HERE = Path(__file__).parent


def sweep(
    pytester: pytest.Pytester, config: str, select: str, secrets: Iterable[str], file: str = "opscheck"
) -> dict[str, Any]:
    """Run the checks matching `select` against `config` (written to `file`.toml: opscheck.toml, or pyproject.toml
    for a `[tool.opscheck]` table): the records by check id. No secret in any output."""
    pytester.makefile(".toml", **{file: textwrap.dedent(config)})
    result = pytester.runpytest("--opscheck", *QUIET, "-k", select, "--opscheck-json", "out.json")
    out = pytester.path / "out.json"
    assert out.exists(), result.stdout.str()
    every_output = result.stdout.str() + result.stderr.str() + out.read_text()
    html = pytester.path / "opscheck-report.html"
    if html.exists():
        every_output += html.read_text()
    for secret in secrets:
        assert secret not in every_output, f"secret shown: {secret[:4]}..."
    return {c["id"]: c for c in json.loads(out.read_text())["checks"]}


def outcomes(records: dict[str, Any]) -> dict[str, str]:
    return {check: record["outcome"] for check, record in records.items()}


def readme_config(name: str, backend_url: str) -> str:
    """The README's quickstart config `name` (the TOML block after `<!-- quickstart:NAME -->`), aimed at
    `backend_url` instead of its example host."""
    readme = (HERE.parents[1] / "README.md").read_text()
    block = readme.split(f"<!-- quickstart:{name} -->", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    return re.sub(r'backend_url = "[^"]*"', f'backend_url = "{backend_url}"', block)


def placeholders(text: str) -> list[str]:
    """The `<...>` placeholders left in a resolution (shell redirections such as `</dev/null` are not)."""
    return re.findall(r"<[a-z_.]+>", text)


@contextmanager
def django_server(tmp: Path, password: str, api_token: str) -> Iterator[str]:
    """tests/anyapp/django_app.py in a process of its own on a free port: its http:// URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "django_app.py"), str(port), str(tmp / "django.sqlite3"), password, api_token],
        cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"django_app.py exited: {process.stdout.read() if process.stdout else ''}")
            try:
                return status(url + "/api/tags/", "GET") == 200
            except OSError:
                return False

        wait_for(up, 60, f"Django on port {port}")
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a server process these tests started, and close its pipe."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def fault(url: str, name: str) -> Iterator[None]:
    """Turn the server's fault `name` on for the block (POST /_fault/NAME/on, then off)."""
    assert status(f"{url}/_fault/{name}/on", "POST") == 204
    try:
        yield
    finally:
        assert status(f"{url}/_fault/{name}/off", "POST") == 204


def status(url: str, method: str) -> int:
    """The status of one plain exchange (urllib: pytester's runs re-import httpx, whose errors then differ)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
