"""The HTML report's first screen, as plain functions over the summary: what on-call reads at 3 a.m. without
scrolling (1400×900): the verdict banner coloured by the worst failing severity, the severity table, the targets
swept, and the failures root causes first, each consequence pointing at its root.

Everything that came from a target or a config is escaped here; pytest-html inserts these strings as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..model import LABELS, CheckRecord, Severity, Summary

# Background and text colour of each severity; OK and NO VERDICT have their own.
COLOURS = {
    "P1": ("#b71c1c", "#ffffff"),
    "P2": ("#e65100", "#ffffff"),
    "P3": ("#f9a825", "#1b1b1b"),
    "P4": ("#1565c0", "#ffffff"),
    "OK": ("#2e7d32", "#ffffff"),
    "NONE": ("#616161", "#ffffff"),
}


def _severity_css() -> str:
    rules = []
    for name, (background, text) in COLOURS.items():
        rules.append(f".opscheck-sev-{name}{{background:{background};color:{text}}}")
        rules.append(f".opscheck-tag-{name}{{background:{background};color:{text};padding:0 5px;border-radius:3px}}")
    return "".join(rules)


# pytest-html's page, rearranged with CSS alone (its script renders the tables): the opscheck summary first,
# then the results, then pytest-html's Python/Platform/Plugins table; its "N tests took" line is not the
# checks' count, ours is in the banner.
STYLE = (
    "<style>"
    "body{display:flex;flex-direction:column;margin:8px 14px}"
    "body>h1#title{order:0;font-size:1.35em;margin:2px 0}"
    "body>p:first-of-type{order:0;margin:0 0 4px;font-size:.85em;color:#555}"
    "body>.summary{order:1}"
    "body>#results-table{order:2}"
    "body>#environment-header{order:3;margin-top:18px}"
    "body>#environment{order:4;align-self:flex-start}"
    "body>footer{order:5}"
    ".summary__data>h2,.summary .run-count{display:none}"
    "#opscheck-summary{font-size:14px;color:#1b1b1b}"
    "#opscheck-summary a{color:#0645ad}"
    "#opscheck-banner{padding:10px 14px;border-radius:4px;margin:4px 0 8px}"
    "#opscheck-banner p{color:inherit}"
    "#opscheck-banner .opscheck-verdict{font-size:1.45em;font-weight:bold;margin:0}"
    "#opscheck-banner .opscheck-counts{margin:3px 0 0;font-size:.95em}"
    ".opscheck-panels{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}"
    "#opscheck-summary table{border-collapse:collapse;margin:4px 0}"
    "#opscheck-summary td,#opscheck-summary th{border:1px solid #ccc;padding:2px 8px;text-align:left;"
    "vertical-align:top}"
    "#opscheck-summary th{background:#f0f0f0}"
    "#opscheck-summary h3{margin:8px 0 2px;font-size:1.05em}"
    "td.opscheck-zero{color:#999}"
    "tr.opscheck-root td{background:#fff8f6}"
    "tr.opscheck-root td.opscheck-cause{font-weight:600}"
    "tr.opscheck-consequence td{color:#444}"
    "tr.opscheck-consequence td.opscheck-check{padding-left:22px}"
    ".opscheck-failures details summary{cursor:pointer;color:#0645ad;font-weight:normal}"
    ".opscheck-failures pre,.opscheck-extra pre{background:#f6f8fa;color:#111;padding:6px;white-space:pre-wrap;"
    "margin:2px 0}"
    ".opscheck-caused-by{font-style:italic}"
    f"{_severity_css()}"
    "</style>"
)


def banner_class(summary: Summary) -> str:
    """P1..P4 (the worst failing severity), OK, or NONE (no verdict)."""
    if summary.failed:
        return min(r.level for r in summary.failed).name
    return "NONE" if summary.no_verdict else "OK"


def counts_line(summary: Summary, seconds: float, fail_on: Severity) -> str:
    failed, passed, skipped = len(summary.failed), summary.passed, len(summary.skipped)
    total = failed + passed + skipped
    # What the gate did not check, from the records' typed skips (SPEC.md: a gate says what it did not check).
    why = [(len(summary.not_configured), "not configured"), (len(summary.unset), "not run: variable unset"),
           (len(summary.disabled), "disabled")]
    named = [f"{count} {reason}" for count, reason in why if count]
    gaps = f" ({', '.join(named)})" if named else ""
    return (
        f"{total} checks: {failed} failed, {passed} passed, {skipped} skipped{gaps} · swept in {seconds:.1f} s"
        f" · fails the run from {fail_on.name} up"
    )


def banner_html(summary: Summary, seconds: float, fail_on: Severity) -> str:
    level = banner_class(summary)
    return (
        f'<div id="opscheck-banner" class="opscheck-sev-{level}" data-severity="{level}">'
        f'<p class="opscheck-verdict">{escape(summary.verdict)}</p>'
        f'<p class="opscheck-counts">{escape(counts_line(summary, seconds, fail_on))}</p></div>'
    )


def severity_table(summary: Summary) -> str:
    """Counts by severity, each severity in its colour, a failed count in that colour when not zero."""
    rows = []
    for level in Severity:
        counts = summary.counts[level.name]
        failed = counts["failed"]
        failed_cell = (
            f'<td class="opscheck-sev-{level.name}">{failed}</td>' if failed else '<td class="opscheck-zero">0</td>'
        )
        rows.append(
            f'<tr data-severity="{level.name}"><td><span class="opscheck-tag-{level.name}">{level.name}</span> '
            f"{LABELS[level]}</td><td>{escape(summary.targets[level])}</td>{failed_cell}"
            f"<td>{counts['passed']}</td><td>{counts['skipped']}</td></tr>"
        )
    return (
        '<table id="opscheck-severities"><tr><th>Severity</th><th>Response</th><th>Failed</th><th>Passed</th>'
        f"<th>Skipped</th></tr>{''.join(rows)}</table>"
    )


def targets_table(targets: Sequence[tuple[str, str]]) -> str:
    """The targets swept (environment, URLs redacted, Compose project or Swarm stack, engine)."""
    rows = "".join(f"<tr><th>{escape(name)}</th><td>{escape(where)}</td></tr>" for name, where in targets)
    return f'<table id="opscheck-targets">{rows}</table>'


def _anchor(check_id: str) -> str:
    return "opscheck-fail-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in check_id)


def failures_table(summary: Summary) -> str:
    """The failures root causes first then worst first; a consequence points at its root."""
    if not summary.failed:
        return ""
    failing = {r.check_id for r in summary.failed}
    rows = []
    for r in summary.failed:
        tag = f'<span class="opscheck-tag-{r.severity}">{escape(r.severity)}</span>'
        if r.caused_by:
            root = escape(r.caused_by)
            link = f'<a href="#{_anchor(r.caused_by)}">{root}</a>' if r.caused_by in failing else (
                f"{root} (not run in this sweep)")
            rows.append(
                f'<tr class="opscheck-failure opscheck-consequence" data-check="{escape(r.check_id)}" '
                f'data-caused-by="{root}"><td>{tag}</td><td class="opscheck-check">↳ {escape(r.check_id)}</td>'
                f"<td>caused by {link}: fix that first <span class=opscheck-own>({escape(r.message)})</span></td></tr>"
            )
            continue
        steps = (
            f"<details><summary>resolution</summary><pre>{escape(r.resolution.strip())}</pre></details>"
            if r.resolution.strip() else ""
        )
        rows.append(
            f'<tr class="opscheck-failure opscheck-root" id="{_anchor(r.check_id)}" data-check="{escape(r.check_id)}">'
            f'<td>{tag}</td><td class="opscheck-check"><strong>{escape(r.check_id)}</strong></td>'
            f'<td class="opscheck-cause">{escape(r.message)}{steps}</td></tr>'
        )
    return (
        '<h3>Failures, root causes first</h3><table class="opscheck-failures" id="opscheck-failures">'
        f"<tr><th>Severity</th><th>Check</th><th>Cause</th></tr>{''.join(rows)}</table>"
    )


def changes_html(summary: Summary) -> str:
    """What changed in the stack since the last green sweep, newest first (SPEC.md), when anything did."""
    if not summary.changes:
        if summary.failed and summary.last_green:  # worth knowing at 3 a.m.: the stack is as it was when green
            return (f'<h3 id="opscheck-changes">No change in the stack since the last green sweep'
                    f" ({escape(summary.last_green)})</h3>")
        return ""
    since = f" ({escape(summary.last_green)})" if summary.last_green else " (none recorded)"
    rows = "".join(
        f"<tr><td>{escape(c.what)}</td><td>{escape(c.before if c.before is not None else '(none)')}</td>"
        f"<td>{escape(c.after if c.after is not None else '(gone)')}</td><td>{escape(c.at or '')}</td></tr>"
        for c in summary.changes
    )
    return (
        f"<h3>Changes since the last green sweep{since}</h3>"
        '<table id="opscheck-changes"><tr><th>What</th><th>Before</th><th>After</th><th>When</th></tr>'
        f"{rows}</table>"
    )


def _list(title: str, css: str, items: Sequence[str], ordered: bool = False) -> str:
    if not items:
        return ""
    tag = "ol" if ordered else "ul"
    return f"<h3>{title}</h3><{tag} class={css}>" + "".join(f"<li>{escape(i)}</li>" for i in items) + f"</{tag}>"


def coverage_html(lines: Sequence[str]) -> str:
    """``--opscheck-coverage``: the runbook's sections and the checks that cover them, no verdict (nothing ran)."""
    return f'{STYLE}<div id="opscheck-summary">{_list("Runbook coverage", "opscheck-coverage", lines)}</div>'


def summary_html(
    summary: Summary, targets: Sequence[tuple[str, str]], seconds: float = 0.0, fail_on: Severity = Severity.P4
) -> str:
    """The first screen: banner, severities beside targets, the failures, what changed since the last green
    sweep; escalation and coverage after."""
    return (
        f'{STYLE}<div id="opscheck-summary">{banner_html(summary, seconds, fail_on)}'
        f'<div class="opscheck-panels"><div>{severity_table(summary)}</div>'
        f"<div>{targets_table(targets)}</div></div>"
        f"{failures_table(summary)}"
        f"{changes_html(summary)}"
        f"{_list('Escalation', 'opscheck-escalation', summary.escalation, ordered=True)}"
        f"{_list('Runbook coverage', 'opscheck-coverage', summary.coverage)}</div>"
    )


def extras_html(record: CheckRecord, targets: dict[Severity, str]) -> str:
    """The resolution steps and evidence of one check, escaped, as one block (the row's details)."""
    parts = [
        f'<div class="opscheck-extra"><p><strong>{escape(record.severity)}'
        f" {escape(LABELS[record.level])}</strong> — {escape(targets[record.level])}</p>",
    ]
    if record.message:
        parts.append(f'<p class="opscheck-cause">{escape(record.message)}</p>')
    if record.caused_by:
        parts.append(f'<p class="opscheck-caused-by">caused by {escape(record.caused_by)}: fix that first</p>')
    if record.resolution and record.outcome == "failed":
        parts.append(f'<h4>Resolution</h4><pre class="opscheck-resolution">{escape(record.resolution)}</pre>')
    for title, text in record.evidence.items():
        parts.append(f'<h4>{escape(title)}</h4><pre class="opscheck-evidence">{escape(text)}</pre>')
    parts.append("</div>")
    return "".join(parts)
