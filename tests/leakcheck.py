"""Looking for a planted secret in everything a sweep leaves behind: stdout, stderr, the JSON records, the HTML
report (its JSON blob and its base64 parts decoded), the JUnit XML, the post-mortem, the Prometheus file and
the log file; in the value's raw, HTML-escaped, JSON-escaped, URL-encoded and base64 forms, and in every
decoding of the output (HTML entities, \\u/\\x escapes, percent and form encoding, hex runs, base64 runs at
every offset, whitespace removed), as the documented rule says: any 12-character fragment of a long secret
(and a cut head or tail of 8 standing as a word), an 8-11 character secret anywhere, a 4-7 character one as a
word, a shorter one as a whole value. Written independently of the product's redactor, so that it checks it
rather than repeats it."""

from __future__ import annotations

import base64
import binascii
import functools
import html
import json
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

FRAGMENT = 12
OUTPUT_ARGS = (
    "--opscheck-json", "out.json", "--junitxml", "junit.xml", "--opscheck-postmortem", "postmortem.md",
)
# Every report file a sweep of `run_sweep` writes (and opscheck.prom, when the plugin has the option).
REPORTS = ("out.json", "opscheck-report.html", "junit.xml", "postmortem.md")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def prometheus_args(root: Path) -> tuple[str, ...]:
    """`--opscheck-prometheus` when the plugin has it (another issue adds it), else nothing."""
    from pytest_opscheck import plugin

    source = Path(plugin.__file__).read_text()
    return ("--opscheck-prometheus", str(root / "opscheck.prom")) if "--opscheck-prometheus" in source else ()


def base64_forms(value: str) -> set[str]:
    """The base64 of `value` wherever it sits in a longer value (three alignments, both alphabets)."""
    raw = value.encode()
    found = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\x00" * offset + raw).decode()
        core = encoded[-(-8 * offset // 6) : 8 * (offset + len(raw)) // 6]
        found |= {core, core.replace("+", "-").replace("/", "_")}
    return {f for f in found if len(f) >= 8}


def forms(value: str) -> dict[str, str]:
    """Each form the planted value must not appear in, by name."""
    named = {
        "raw": value,
        "HTML-escaped": html.escape(value),
        "JSON-escaped": json.dumps(value)[1:-1],
        "URL-encoded": quote(value, safe=""),
        "URL-encoded (form)": quote_plus(value),
    }
    named.update({f"base64 #{i}": form for i, form in enumerate(sorted(base64_forms(value)))})
    return named


def fragments(value: str, size: int = FRAGMENT) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)} if len(value) >= size else {value}


def _strings(data: Any) -> Iterable[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)


_JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|\\([/\"'\\])")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){4,}")


def _js_unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        return chr(int(code, 16)) if code else match.group(3)

    return _JS_ESCAPE.sub(one, text)


def decodings(text: str) -> list[str]:
    """`text` decoded every way a secret may have been encoded in it (each also with whitespace removed)."""
    from urllib.parse import unquote, unquote_plus

    texts = {text, html.unescape(text), _js_unescape(text), unquote(text), unquote_plus(text)}
    texts |= {html.unescape(_js_unescape(t)) for t in list(texts)} | {_js_unescape(html.unescape(t))
                                                                       for t in list(texts)}
    found = list(texts)
    runs = []
    for run in _HEX_RUN.findall(text):
        runs += [bytes.fromhex(run[skip:][: (len(run) - skip) // 2 * 2]).decode("utf-8", "replace") for skip in (0, 1)]
    for base in (text, "".join(text.split())):
        for run in _BASE64_RUN.findall(base):
            for skip in range(4):
                body = run.rstrip("=")[skip:].replace("-", "+").replace("_", "/")
                body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
                try:
                    runs.append(base64.b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    continue
    if runs:
        found.append("\n".join(runs))  # one view of every decoded run, each on a line of its own
    return found + ["".join(t.split()) for t in found if any(c.isspace() for c in t)]


def views(text: str) -> list[str]:
    """`text` as stored, decoded every way, its JSON strings (an HTML data blob's too) and its base64 runs decoded."""
    out = [text, html.unescape(text)]
    for candidate in (text, *re.findall(r'data-jsonblob="([^"]*)"', text)):
        try:
            strings = "\n".join(_strings(json.loads(html.unescape(candidate))))
        except ValueError:
            continue
        out += [strings, html.unescape(strings)]  # the blob's strings are HTML fragments themselves
    decoded = []
    for view in list(out):
        for run in _BASE64_RUN.findall(view):
            for alphabet in (None, b"-_"):
                try:
                    data = base64.b64decode(run + "=" * (-len(run) % 4), altchars=alphabet, validate=False)
                except (binascii.Error, ValueError):
                    continue
                decoded.append(data.decode("utf-8", errors="replace"))
    return out + decoded + decodings(text)


def _rule_parts(planted: str) -> list[str]:
    """Where `planted` counts as shown, by the documented rule: the alternatives of a pattern."""
    if len(planted) >= FRAGMENT:
        wanted = [re.escape(f) for f in fragments(planted)]
        wanted += [rf"(?<![A-Za-z0-9]){re.escape(planted[:n])}(?![A-Za-z0-9])" for n in range(8, FRAGMENT)]
        wanted += [rf"(?<![A-Za-z0-9]){re.escape(planted[-n:])}(?![A-Za-z0-9])" for n in range(8, FRAGMENT)]
    elif len(planted) >= 8:
        wanted = [re.escape(planted)]
    elif len(planted) >= 4:
        wanted = [rf"(?<![A-Za-z0-9]){re.escape(planted)}(?![A-Za-z0-9])"]
    else:
        wanted = [rf"(?<=[=:\"'>]){re.escape(planted)}(?=[\"'<]|[ \t]*(?:[,;&}}\])\r\n]|$))",
                  rf"(?<=[=:][ \t\"']){re.escape(planted)}(?=[\"'<]|[ \t]*(?:[,;&}}\])\r\n]|$))"]
    return wanted


@functools.lru_cache(maxsize=256)
def _rule(planted: str) -> re.Pattern[str]:
    return re.compile("|".join(_rule_parts(planted)))


def found_in(planted: str, view: str) -> str | None:
    """Where `planted` shows in `view` by the documented rule (a short excerpt), or None."""
    match = _rule(planted).search(view)
    if match is None:
        return None
    return view[max(0, match.start() - 60) : match.end() + 60]


def _shown(value: str, view: str) -> tuple[int, int] | None:
    """Where `value` shows in `view` by the rule; substring search first (fast), the rule's pattern after."""
    if len(value) >= FRAGMENT:
        for fragment in fragments(value):
            at = view.find(fragment)
            if at >= 0:
                return at, at + FRAGMENT
        if value[:8] not in view and value[-8:] not in view:
            return None
    elif len(value) >= 4 and value not in view:
        return None
    match = _rule(value).search(view)
    return match.span() if match else None


def leaks_of_each(planted: dict[str, str], texts: dict[str, str]) -> dict[str, list[str]]:
    """For each planted value (by name), the outputs of `texts` that show it in any view, by the rule."""
    found: dict[str, list[str]] = {name: [] for name in planted}
    for output, text in texts.items():
        every = views(text)
        for name, value in planted.items():
            for view in every:
                where = _shown(value, view)
                if where is not None:
                    found[name].append(f"{output}: …{view[max(0, where[0] - 60) : where[1] + 60]}…")
                    break
    return found


def leaks(planted: str, texts: dict[str, str]) -> list[str]:
    """Each output of `texts` (name -> text) that shows `planted` in any view, by the documented rule."""
    return leaks_of_each({"": planted}, texts)[""]


@dataclass
class Outputs:
    """Everything one sweep wrote, by name."""

    texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path, result: pytest.RunResult | subprocess.CompletedProcess[str] | None = None) -> Outputs:
        texts: dict[str, str] = {}
        if isinstance(result, subprocess.CompletedProcess):
            texts.update(stdout=result.stdout, stderr=result.stderr)
        elif result is not None:
            texts.update(stdout=result.stdout.str(), stderr=result.stderr.str())
        for name in ("out.json", "opscheck-report.html", "junit.xml", "postmortem.md", "opscheck.prom", "opscheck.log"):
            path = root / name
            if path.is_file():
                texts[name] = path.read_text(encoding="utf-8", errors="replace")
        return cls(texts)

    def require(self, *names: str) -> None:
        """Each of `names` was written, and so was the Prometheus file when the plugin has the option."""
        if prometheus_args(Path(".")):
            names = (*names, "opscheck.prom")
        missing = [n for n in names if n not in self.texts]
        assert not missing, f"the sweep wrote no {', '.join(missing)}"

    def assert_absent(self, planted: str, what: str = "the planted secret") -> None:
        """`planted` in none of its forms, and no 12-character fragment of it, anywhere."""
        wanted = {**forms(planted), **{f"fragment {f!r}": f for f in fragments(planted)}}
        for name, text in self.texts.items():
            for view in views(text):
                for form_name, form in wanted.items():
                    at = view.find(form)
                    assert at < 0, (f"{what} leaked into {name} ({form_name}): "
                                    f"…{view[max(0, at - 80) : at + len(form) + 80]}…")

    def assert_present(self, word: str, *names: str) -> None:
        """`word` survives redaction in each of `names` (all outputs when none is named)."""
        for name in names or tuple(self.texts):
            assert any(word in view for view in views(self.texts[name])), f"{word!r} is missing from {name}"

    def __contains__(self, text: str) -> bool:
        return any(text in view for value in self.texts.values() for view in views(value))


def source_root() -> str:
    """The checkout under test, first on a sweep's path (an editable install may point elsewhere)."""
    return str(Path(__file__).resolve().parents[1])


def records(root: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in json.loads((root / "out.json").read_text())["checks"]}


def run_sweep(
    pytester: pytest.Pytester, config: str, select: str, *extra: str, env: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]], Outputs]:
    """A sweep in its own process (its own stdout and stderr), every report file asked for."""
    import os

    pytester.makefile(".toml", opscheck=config)
    args = [sys.executable, "-m", "pytest", "--opscheck", "-p", "no:cacheprovider", "-k", select,
            *OUTPUT_ARGS, *prometheus_args(pytester.path), *extra]
    result = subprocess.run(args, cwd=pytester.path, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHONPATH": source_root(), **(env or {})})
    found = records(pytester.path) if (pytester.path / "out.json").is_file() else {}
    return result, found, Outputs.of(pytester.path, result)


# Plain ASGI helpers for the hostile servers of the secrets tests.
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def answer(send: Send, status: int, body: str = "", headers: dict[str, str] | None = None,
                 kind: str = "text/html; charset=utf-8") -> None:
    raw = body.encode()
    pairs = [(b"content-type", kind.encode()), (b"content-length", str(len(raw)).encode())]
    pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})


async def body_of(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    data = b""
    while True:
        message = await receive()
        data += message.get("body", b"")
        if not message.get("more_body"):
            return data
