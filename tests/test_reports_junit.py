"""The JUnit file agrees with the exit status (SPEC.md "A gate that says what it did not check", issue 26
item 6): read back with junitparser, a real JUnit consumer's parser, after sweeps run as pytest runs them
(pytester), in both option forms. Under pytest-xdist the controller writes the same file:
tests/test_plugin.py::test_xdist_reports_match_serial."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_plugin import project

junitparser = pytest.importorskip("junitparser", reason="pip install -e '.[test]' installs junitparser")

BELOW_THE_GATE = '''
import pytest
from pytest_opscheck.verdict import fail


@pytest.mark.severity("P3")
@pytest.mark.resolution("Find the slow query")
def test_slow_page(record_property):
    record_property("ticket", "OPS-1234")
    fail("api: GET /orders took 2.5 s (over 2.0 s)")


@pytest.mark.severity("P4")
def test_cosmetic():
    assert "favicon" == "missing"


@pytest.mark.severity("P2")
def test_fine(record_property):
    record_property("region", "eu-west-1")


@pytest.mark.severity("P2")
def test_gap():
    pytest.skip("not configured: smtp.host")
'''


def cases(path: Path) -> dict[str, junitparser.TestCase]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    return {case.name: case for suite in xml for case in suite}


def properties(case: junitparser.TestCase) -> dict[str, str]:
    found = case.child(junitparser.Properties)
    return {p.name: p.value for p in found} if found is not None else {}


@pytest.mark.parametrize("form", ["space", "equals"])
def test_failures_below_fail_on_are_skipped_so_ci_agrees_with_exit_status_0(
    pytester: pytest.Pytester, form: str
) -> None:
    project(pytester, "", BELOW_THE_GATE)
    option = ("--junitxml", "out/j.xml") if form == "space" else ("--junitxml=out/j.xml",)
    args = ("--opscheck", "-p", "no:cacheprovider", "-k", "user.", "--opscheck-fail-on", "P2", *option)
    for _ in range(2 if form == "space" else 1):  # and again once the file exists (issue 26 item 1)
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
        result.stdout.fnmatch_lines([f"*generated xml file: {pytester.path / 'out/j.xml'}*"])
        xml = junitparser.JUnitXml.fromfile(str(pytester.path / "out/j.xml"))
        (suite,) = list(xml)
        assert (suite.failures, suite.errors, suite.tests) == (0, 0, 4), "exit 0: nothing for CI to turn red"
        found = cases(pytester.path / "out/j.xml")
        for name, severity in (("user.slow_page", "P3"), ("user.cosmetic", "P4")):
            (below,) = found[name].result
            assert isinstance(below, junitparser.Skipped)
            assert below.type == "opscheck.below_fail_on"
            assert properties(found[name])["below_fail_on"] == "true"
            assert found[name].classname == f"opscheck.{severity}"
        assert found["user.slow_page"].result[0].message == "api: GET /orders took 2.5 s (over 2.0 s)"
        assert "Resolution:\nFind the slow query" in found["user.slow_page"].result[0].text
        assert found["user.cosmetic"].result[0].message.startswith("AssertionError")
        (gap,) = found["user.gap"].result
        assert (gap.type, gap.message) == ("pytest.skip", "not configured: smtp.host")
        assert found["user.fine"].result == []
        # What a check records with record_property comes after the product's own properties.
        assert list(properties(found["user.slow_page"]))[-1:] == ["ticket"]
        assert properties(found["user.slow_page"])["ticket"] == "OPS-1234"
        assert properties(found["user.fine"])["region"] == "eu-west-1"


def test_a_checks_file_that_cannot_be_imported_is_an_error_in_the_file(pytester: pytest.Pytester) -> None:
    project(pytester, "", BELOW_THE_GATE + "\nimport not_installed_anywhere\n")
    result = pytester.runpytest("--opscheck", "-p", "no:cacheprovider", "--junitxml", "j.xml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    xml = junitparser.JUnitXml.fromfile(str(pytester.path / "j.xml"))
    (suite,) = list(xml)
    assert suite.errors == 1
    (case,) = [c for c in suite if any(isinstance(r, junitparser.Error) for r in c.result)]
    assert case.name == "ops/test_user.py"
    assert "not_installed_anywhere" in case.result[0].text


LEAKY_TEARDOWN = """

@pytest.fixture
def leaky_session():
    yield
    raise RuntimeError("could not close the session")


@pytest.mark.severity("P2")
def test_closes(leaky_session):
    pass
"""


def test_at_the_gate_a_failure_is_a_failure_and_a_broken_teardown_an_error(pytester: pytest.Pytester) -> None:
    """The same P3 failure under --opscheck-fail-on P3 fails the run and is a <failure>; a check's fixture that
    breaks after the check is an <error> in its testcase, as pytest counts it."""
    project(pytester, "", BELOW_THE_GATE + LEAKY_TEARDOWN)
    result = pytester.runpytest(
        "--opscheck", "-p", "no:cacheprovider", "-k", "user.", "--opscheck-fail-on", "P3", "--junitxml", "j.xml"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (suite,) = list(junitparser.JUnitXml.fromfile(str(pytester.path / "j.xml")))
    assert (suite.failures, suite.errors) == (1, 1)
    found = cases(pytester.path / "j.xml")
    (failure,) = found["user.slow_page"].result
    assert isinstance(failure, junitparser.Failure) and failure.type == "opscheck.P3"
    assert isinstance(found["user.cosmetic"].result[0], junitparser.Skipped)
    (error,) = [r for r in found["user.closes"].result if isinstance(r, junitparser.Error)]
    assert error.message == "failed on teardown" and "could not close the session" in error.text
