"""The frontend: the root serves the app shell, its deep links serve the same shell, its assets load."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

from ..resource.site import NAVIGATION, SUBRESOURCE, Site
from ..result import Finding, table
from ..transport.web import Answer, origin_of
from .api import fetch_all


class _Shell(HTMLParser):
    """The scripts and stylesheets an HTML page references, and its title."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[tuple[str, str]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        rel = values.get("rel", "").lower().split()
        if tag == "script" and values.get("src"):
            self.assets.append(("script", values["src"]))
        elif tag == "link" and values.get("href") and ("stylesheet" in rel or "modulepreload" in rel):
            self.assets.append(("stylesheet" if "stylesheet" in rel else "script", values["href"]))
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def shell_of(html: str) -> _Shell:
    parser = _Shell()
    parser.feed(html)
    parser.close()
    return parser


def frontend_root(answer: Answer) -> Finding:
    """The root answers 200 with HTML."""
    evidence = {"root": answer.line()}
    if answer.status != 200:
        evidence["body"] = answer.excerpt()
        return Finding.failed(f"frontend / answers {answer.status} {answer.reason}", evidence)
    if not answer.is_html:
        evidence["body"] = answer.excerpt()
        return Finding.failed(f"frontend / answers 200 with {answer.content_type or 'no content type'}, not HTML",
                              evidence)
    return Finding.passed(evidence)


def _same_shell(root: _Shell, page: _Shell) -> bool:
    if root.assets:
        return page.assets == root.assets
    return page.title.strip() == root.title.strip()


def spa_routes(site: Site, routes: list[str]) -> Finding:
    """Each deep link answers 200 with the same app shell (scripts and stylesheets) as the root."""
    assert site.first is not None
    root = shell_of(site.first.text)
    rows, bad = [], []
    # As a browser navigates to each (FastAPI's app.frontend and Accept-checking fallbacks answer by it).
    browser = site.as_browser(NAVIGATION)
    for route, answer in zip(routes, fetch_all(browser, routes), strict=True):  # at once, within one timeout
        if isinstance(answer, str):
            rows.append([route, "-", "-", answer])
            bad.append(f"{route} ({answer})")
            continue
        if answer.status != 200:
            verdict = f"{answer.status} {answer.reason}"
        elif not answer.is_html:
            verdict = f"200 but {answer.content_type or 'no content type'}, not the app shell"
        elif not _same_shell(root, shell_of(answer.text)):
            verdict = "200 but a different page than the app shell"
        else:
            verdict = "ok"
        rows.append([route, str(answer.status), answer.content_type or "-", verdict])
        if verdict != "ok":
            bad.append(f"{route} → {verdict}")
    evidence = {"deep links": table(["route", "status", "content type", "verdict"], rows)}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(routes)} deep link(s) fail: {'; '.join(bad)}", evidence)
    return Finding.passed(evidence)


def frontend_assets(site: Site) -> Finding:
    """Every script and stylesheet index.html references loads, as a script or stylesheet (not as HTML)."""
    assert site.first is not None
    refs = shell_of(site.first.text).assets
    if not refs:
        return Finding.passed({"assets": "index.html references no script or stylesheet"})
    rows, bad = [], []
    urls = {ref: urljoin(site.first.url, ref) for _, ref in refs}
    on_hosts = [url for url in dict.fromkeys(urls.values()) if origin_of(url) in site.allowed]
    kinds = {urls[ref]: kind for kind, ref in refs}
    browser = site.as_browser(lambda url: SUBRESOURCE.get(kinds.get(url, "script"), SUBRESOURCE["script"]))
    answers = dict(zip(on_hosts, fetch_all(browser, on_hosts), strict=True))  # at once, within one timeout
    for kind, ref in refs:
        answer = answers.get(urls[ref])
        if answer is None:
            rows.append([kind, ref, "-", "-", "not checked: off the configured hosts"])
            continue
        if isinstance(answer, str):
            rows.append([kind, ref, "-", "-", answer])
            bad.append(f"{ref} ({answer})")
            continue
        if answer.status != 200:
            verdict = f"{answer.status} {answer.reason}"
        elif answer.is_html:
            verdict = "200 but HTML (the SPA fallback hides a missing file)"
        else:
            verdict = "ok"
        rows.append([kind, ref, str(answer.status), answer.content_type or "-", verdict])
        if verdict != "ok":
            bad.append(f"{ref} → {verdict}")
    evidence = {"assets of index.html": table(["kind", "asset", "status", "content type", "verdict"], rows)}
    if bad:
        return Finding.failed(f"{len(bad)} of {len(refs)} asset(s) do not load: {'; '.join(bad)}", evidence)
    return Finding.passed(evidence)
