"""The plugin's frame, run as pytest runs it (pytester): options, config errors, markers, gate, reports."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

PLANTED = "PLANTED-core-secret-5f1c"

USER_CHECKS = '''
import pytest
from pytest_opscheck.verdict import fail


@pytest.mark.severity("P1")
@pytest.mark.resolution("docker compose restart db")
def test_db_down(opscheck_config):
    fail(
        f"db: connection refused by 127.0.0.1:5432 (password {opscheck_config.auth.password})",
        {"log tail": "FATAL: <script>alert(1)</script> " + opscheck_config.auth.password},
    )


@pytest.mark.severity("P3")
def test_slow_page():
    """Find the slow query: EXPLAIN ANALYZE SELECT ..."""
    assert 2.5 < 2.0, "too slow"


@pytest.mark.severity("P2")
def test_fine():
    pass


@pytest.mark.severity("P2")
def test_gap(smtp):
    pass
'''


def project(pytester: pytest.Pytester, config: str = "", checks: str = USER_CHECKS) -> Path:
    """A user project with an opscheck.toml and one checks folder."""
    pytester.makefile(".toml", opscheck='checks = ["ops"]\n' + textwrap.dedent(config))
    ops = pytester.mkdir("ops")
    (ops / "test_user.py").write_text(textwrap.dedent(checks))
    return pytester.path


def user_only(*args: str) -> tuple[str, ...]:
    """Run only the user's checks (the built-in ones skip as not configured anyway)."""
    return ("--opscheck", "-p", "no:cacheprovider", "-k", "user.", *args)


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in (
        "--opscheck ",
        "--opscheck-config=PATH",
        "--opscheck-env=NAME",
        "--opscheck-fail-on=P1..P4",
        "--opscheck-wait=SECONDS",
        "--opscheck-timeout=SECONDS",
        "--opscheck-json=PATH",
        "--opscheck-prometheus=PATH",
        "--opscheck-postmortem=PATH",
        "--opscheck-coverage",
    ):
        assert option in result.stdout.str()


def test_without_opscheck_the_plugin_is_inert(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_ordinary="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "test_ordinary.py")
    result.assert_outcomes(passed=1)
    assert "= opscheck =" not in result.stdout.str() and "opscheck:" not in result.stdout.str()
    assert not (pytester.path / "opscheck-report.html").exists()


def test_heavy_libraries_are_not_imported_without_opscheck(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys, json
        def pytest_sessionfinish(session):
            heavy = [m for m in ("docker", "httpx", "psycopg", "websockets", "pytest_html.basereport")
                     if m in sys.modules]
            open("loaded.json", "w").write(json.dumps(heavy))
        """
    )
    pytester.makepyfile(test_ordinary="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:html")
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "loaded.json").read_text()) == []


def test_options_need_opscheck(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--opscheck-json", "out.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opscheck-json needs --opscheck*"])


def test_opscheck_collects_only_checks_not_ordinary_tests(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_ordinary="def test_plain():\n    assert True\n")
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--collect-only", "-q")
    out = result.stdout.str()
    assert "test_ordinary" not in out
    assert "ops/test_user.py::test_db_down" in out


def test_terminal_section_worst_first_with_resolution_and_verdict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(pytester, 'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n')
    result = pytester.runpytest(*user_only())
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= opscheck =*",
            "P1 CRITICAL FAILED user.db_down — respond immediately (within 15 min)",
            "    cause: db: connection refused by 127.0.0.1:5432 (password ***)",
            "    resolution:",
            "      docker compose restart db",
            "P3 MEDIUM   FAILED user.slow_page — respond within 4 hours",
            "    cause: AssertionError: too slow*",
            "      Find the slow query: EXPLAIN ANALYZE SELECT ...",
            "not configured (1 check skipped): smtp*",
            "P1 CRITICAL: 1 check failing (+1 lower) — respond immediately (within 15 min)",
        ]
    )
    assert PLANTED not in result.stdout.str()
    assert "((" not in result.stdout.str() and "))" not in result.stdout.str()


def test_fail_on_threshold_sets_the_exit_status(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(pytester, 'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n')
    only_p3 = pytester.runpytest(*user_only("--opscheck-fail-on", "P2", "-m", "p3 or p2"))
    assert only_p3.ret == pytest.ExitCode.OK
    only_p3.stdout.fnmatch_lines(["*FAILED user.slow_page*", "P3 MEDIUM: 1 check failing*"])
    with_p1 = pytester.runpytest(*user_only("--opscheck-fail-on", "P2"))
    assert with_p1.ret == pytest.ExitCode.TESTS_FAILED
    bad = pytester.runpytest(*user_only("--opscheck-fail-on", "P9"))
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_severity_markers_select_and_ids_work_with_k(pytester: pytest.Pytester) -> None:
    project(pytester, "")
    p1 = pytester.runpytest(*user_only("-m", "p1", "--collect-only", "-q"))
    assert "test_db_down" in p1.stdout.str() and "test_fine" not in p1.stdout.str()
    by_id = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "user.fine", "--collect-only", "-q")
    by_id.stdout.fnmatch_lines(["ops/test_user.py::test_fine", "*1/*"])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("", "*cause: no severity: add @pytest.mark.severity(*"),
        ('@pytest.mark.severity("P7")', "*@pytest.mark.severity('P7'): expected one of P1, P2, P3, P4*"),
        ('@pytest.mark.severity("P1", level="P2")', "*@pytest.mark.severity('P1', level='P2'):*"),
    ],
)
def test_bad_severity_fails_that_check_alone(pytester: pytest.Pytester, marker: str, expected: str) -> None:
    checks = f"import pytest\n{marker}\ndef test_bad():\n    pass\n\n"
    checks += "@pytest.mark.severity('P3')\ndef test_good():\n    pass\n"
    project(pytester, "", checks)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "-k", "user.", "--opscheck-fail-on", "P1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # a mistaken check fails the gate whatever the threshold
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["P1 CRITICAL FAILED user.bad*", expected])


def test_fixture_failing_on_its_target_fails_the_check(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        "",
        """
        import pytest
        from pytest_opscheck.verdict import fail

        @pytest.fixture
        def queue():
            fail("queue: connection refused by 127.0.0.1:5672")

        @pytest.mark.severity("P2")
        def test_queue(queue):
            pass
        """,
    )
    result = pytester.runpytest(*user_only("--opscheck-json", "out.json"))
    result.assert_outcomes(failed=1)
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert record["outcome"] == "failed"
    assert record["message"] == "queue: connection refused by 127.0.0.1:5672"


def test_json_and_html_reports_carry_the_records_redacted(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(pytester, 'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n')
    result = pytester.runpytest(*user_only("--opscheck-json", "out.json", "--junitxml", "junit.xml"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = json.loads((pytester.path / "out.json").read_text())
    assert data["verdict"].startswith("P1 CRITICAL")
    by_id = {c["id"]: c for c in data["checks"]}
    assert data["checks"][0]["id"] == "user.db_down"
    down = by_id["user.db_down"]
    assert set(down) >= {"id", "nodeid", "severity", "outcome", "duration", "message", "resolution", "evidence"}
    assert down["caused_by"] is None
    assert (down["severity"], down["outcome"], down["resolution"]) == ("P1", "failed", "docker compose restart db")
    assert down["evidence"]["log tail"] == "FATAL: <script>alert(1)</script> ***"
    assert by_id["user.fine"]["outcome"] == "passed"
    assert by_id["user.gap"]["message"] == "not configured: smtp.host"
    html = (pytester.path / "opscheck-report.html").read_text()
    assert 'data-column-type="severity"' in html
    assert "opscheck-summary" in html and "P1 CRITICAL: 1 check failing" in html
    assert "docker compose restart db" in html
    # pytest-html stores rows as JSON in an HTML attribute: our escaping shows once more escaped there.
    assert "&amp;lt;script&amp;gt;alert(1)" in html and "<script>alert(1)" not in html
    for path in ("out.json", "opscheck-report.html", "junit.xml"):
        assert PLANTED not in (pytester.path / path).read_text(), path


def test_passing_check_keeps_its_evidence_and_warning(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(
        pytester,
        'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n',
        """
        import pytest
        from pytest_opscheck.probes.result import Finding
        from pytest_opscheck.verdict import expect


        @pytest.mark.severity("P2")
        def test_token(opscheck_config):
            expect(Finding.passed({"token": "sent with " + opscheck_config.auth.password}))
            expect(Finding.passed({"warning": "the token lives 30 days"}))


        @pytest.mark.severity("P3")
        def test_quiet():
            pass
        """,
    )
    result = pytester.runpytest(*user_only("--opscheck-json", "out.json"))
    assert result.ret == pytest.ExitCode.OK
    by_id = {c["id"]: c for c in json.loads((pytester.path / "out.json").read_text())["checks"]}
    assert by_id["user.token"]["evidence"] == {"token": "sent with ***", "warning": "the token lives 30 days"}
    assert by_id["user.quiet"]["evidence"] == {}
    result.stdout.fnmatch_lines(["P2 passed user.token, with a warning: the token lives 30 days"])
    html = (pytester.path / "opscheck-report.html").read_text()
    assert "the token lives 30 days" in html
    for output in (result.stdout.str(), html, (pytester.path / "out.json").read_text()):
        assert PLANTED not in output


def test_html_path_follows_html_option(pytester: pytest.Pytester) -> None:
    project(pytester, "")
    pytester.runpytest(*user_only("--html", "elsewhere.html"))
    assert (pytester.path / "elsewhere.html").exists()
    assert not (pytester.path / "opscheck-report.html").exists()


def test_report_header_names_config_and_targets(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPW", PLANTED)
    project(pytester, 'database_url = "postgresql://app:${PGPW}@127.0.0.1:5999/app"\n')
    result = pytester.runpytest(*user_only("-m", "p2"))
    result.stdout.fnmatch_lines(
        ["opscheck: config *opscheck.toml, timeout 5s, fail on P4 and above", "*db postgresql://app:***@127.0.0.1:5999/app*"]
    )
    assert PLANTED not in result.stdout.str()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("backend_urll = 'http://x'\n", "*opscheck.toml: backend_urll: unknown key (did you mean backend_url?)"),
        ("slow_seconds = 'fast'\n", "*opscheck.toml: slow_seconds: expected a number, got a string"),
        ("thresholds = { cpu_percent = true }\n", "*opscheck.toml: thresholds.cpu_percent: expected a number*"),
        ("auth = { style = 'xml' }\n", "*opscheck.toml: auth.style: expected 'form' or 'json'*, got 'xml'"),
        ("auth = { password = 'hunter2' }\n", "*opscheck.toml: auth.password: secrets come from the environment*"),
        ("database_url = 'postgresql://u:pw@h/db'\n", "*database_url: the password must come from the environment*"),
        ("backend_url = 'localhost:8000'\n", "*backend_url: expected a http:// URL with a host*"),
        ("checks = ['nowhere']\n", "*checks: folder nowhere does not exist*"),
        ("this is = not toml\n", "*opscheck.toml: not valid TOML*"),
    ],
)
def test_config_errors_are_one_line_usage_errors(pytester: pytest.Pytester, config: str, expected: str) -> None:
    pytester.makefile(".toml", opscheck=config)
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert "hunter2" not in result.stderr.str() and ":pw@" not in result.stderr.str()


def test_missing_config_and_missing_env_are_usage_errors(pytester: pytest.Pytester) -> None:
    none = pytester.runpytest("--opscheck", "-p", "no:cacheprovider")
    assert none.ret == pytest.ExitCode.USAGE_ERROR
    none.stderr.fnmatch_lines(["ERROR: no configuration found in *: add ?tool.opscheck? to pyproject.toml*"])
    absent = pytester.runpytest("--opscheck", "--opscheck-config", "nope.toml")
    absent.stderr.fnmatch_lines(["ERROR: --opscheck-config nope.toml: no such file"])
    pytester.makefile(".toml", opscheck="[env.prod]\nslow_seconds = 1.0\n")
    wrong_env = pytester.runpytest("--opscheck", "--opscheck-env", "stage")
    wrong_env.stderr.fnmatch_lines(["ERROR: *--opscheck-env stage: no ?env.stage? table (known: prod)"])


def test_pyproject_named_env_and_dotenv(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_HOST", raising=False)
    pytester.makepyprojecttoml(
        """
        [tool.opscheck]
        checks = ["ops"]
        backend_url = "http://${API_HOST}:8000"
        thresholds = { cpu_percent = 70, memory_percent = 80 }

        [tool.opscheck.env.prod]
        backend_url = "https://${API_HOST}"
        thresholds = { cpu_percent = 50 }
        """
    )
    (pytester.path / ".env").write_text("API_HOST=api.internal\n")
    pytester.mkdir("ops")
    (pytester.path / "ops" / "test_cfg.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.severity("P4")
            def test_settings(opscheck_config):
                assert opscheck_config.backend_url == "https://api.internal"
                assert opscheck_config.thresholds.cpu_percent == 50
                assert opscheck_config.thresholds.memory_percent == 80
                assert opscheck_config.timeout == 1.5
            """
        )
    )
    result = pytester.runpytest(
        "--opscheck", "--opscheck-env", "prod", "--opscheck-timeout", "1.5", "-k", "cfg.", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_unset_variable_means_not_configured(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_X", raising=False)
    project(
        pytester,
        'backend_url = "http://${NO_SUCH_VAR_X}:8000"\n',
        """
        import pytest
        from pytest_opscheck.verdict import skip_unless_configured

        @pytest.mark.severity("P1")
        def test_needs_backend(opscheck_config):
            skip_unless_configured(opscheck_config.missing("backend_url"))
        """,
    )
    result = pytester.runpytest(*user_only("-rs"))
    result.stdout.fnmatch_lines(["*not configured: backend_url (${NO_SUCH_VAR_X} is not set)*"])



def test_wait_retries_a_failing_check_until_it_passes(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        "",
        """
        import pathlib
        import pytest

        @pytest.mark.severity("P1")
        def test_comes_up():
            tries = pathlib.Path("tries")
            count = int(tries.read_text()) + 1 if tries.exists() else 1
            tries.write_text(str(count))
            assert count >= 3, "not up yet"
        """,
    )
    result = pytester.runpytest(*user_only("--opscheck-wait", "20", "--opscheck-json", "out.json"))
    result.assert_outcomes(passed=1)
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert record["attempts"] == 3 and record["ready_after"] > 0
    result.stdout.fnmatch_lines(["wait (20 s): retried 1 check", "  ready: user.comes_up after * s (3 attempts)"])


def test_wait_gives_up_when_time_is_up(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        "",
        """
        import pytest

        @pytest.mark.severity("P1")
        def test_never_up():
            assert False, "still down"
        """,
    )
    result = pytester.runpytest(*user_only("--opscheck-wait", "1", "--opscheck-json", "out.json"))
    result.assert_outcomes(failed=1)
    record = json.loads((pytester.path / "out.json").read_text())["checks"][0]
    assert record["attempts"] >= 2
    runs = record["attempts"]
    result.stdout.fnmatch_lines(
        ["wait (1 s): retried 1 check", f"  still failing: user.never_up when the wait ended ({runs} attempts)"]
    )


def test_xdist_reports_match_serial(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCHECK_PASSWORD", PLANTED)
    project(pytester, 'auth = { login_path = "/login", password = "${OPSCHECK_PASSWORD}" }\n')

    def run(*extra: str) -> tuple[list[dict[str, Any]], list[str], str]:
        result = pytester.runpytest_subprocess(*user_only("--opscheck-json", "out.json", "--junitxml", "j.xml", *extra))
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        records = json.loads((pytester.path / "out.json").read_text())["checks"]
        for record in records:
            record.pop("duration")
        # The JUnit testcases as the controller shaped them: name, class, properties, failure message.
        cases = ElementTree.parse(pytester.path / "j.xml").getroot().iter("testcase")
        junit = sorted(
            (c.get("name"), c.get("classname"), [(p.get("name"), p.get("value")) for p in c.iter("property")],
             [f.get("message") for f in c.iter("failure")])
            for c in cases
        )
        assert ("user.db_down", "opscheck.P1") in [(name, cls) for name, cls, _, _ in junit]
        records.append({"junit": junit})
        out = result.stdout.lines
        section = out[out.index(next(line for line in out if "= opscheck =" in line)) + 1 :]
        section = section[: section.index(next(line for line in section if line.startswith("P1 CRITICAL")))]
        html = (pytester.path / "opscheck-report.html").read_text()
        assert PLANTED not in result.stdout.str() + html
        return records, section, html

    serial, serial_section, _ = run()
    parallel, parallel_section, parallel_html = run("-n", "2")
    assert parallel == serial
    assert parallel_section == serial_section
    for check_id in ("user.db_down", "user.slow_page", "user.fine", "user.gap"):
        assert check_id in parallel_html
    assert "P1 CRITICAL: 1 check failing" in parallel_html
