"""What leaves the assessment is safe to show: no key, no live markup or terminal control, no unbounded text.

Targets echo what they are sent, and what they send is hostile. Everything a test records (its evidence,
its skip or failure text, its captured output) passes through ``scrub`` once, in the plugin's
``pytest_runtest_makereport``, before any renderer, the xdist controller, JUnit XML or the console sees
it, so no output can forget it:

- every API key the assessment holds (each ``--api-key``, and the keys it makes in-process) becomes a fixed
  marker (``[api key 1]``), in any case, URL-encoded or base64-encoded, wherever it appears;
- lone surrogates become U+FFFD (no renderer can encode them), terminal escape sequences, control
  characters and bidirectional overrides are removed (a console can be cleared or retitled, a line
  reordered);
- a string longer than ``MAX_TEXT`` is cut, saying how much was left out.

Escaping for a format stays with that format's renderer (the HTML page escapes its own); ``markdown_inert``
is the one markdown escaping the summary and SARIF share, and ``inert`` is what the console writer applies
to input files' text (a profile's name, an accepted risk's owner, an earlier findings.json).
"""

from __future__ import annotations

import base64
import html
import re
import threading
from urllib.parse import quote, quote_plus

MAX_TEXT = 4000
MIN_SECRET = 6
"""Shorter values are not treated as keys: replacing every two-letter match would blank the report."""

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"          # CSI: colours, cursor moves, clear screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"   # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]?"                  # any other escape, or a lone ESC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class _Secrets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._markers: dict[str, str] = {}
        self._pattern: re.Pattern | None = None
        self._forms: dict[str, str] = {}

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_SECRET or value in self._markers:
            return
        with self._lock:
            if value not in self._markers:
                self._markers[value] = f"[api key {len(self._markers) + 1}]"
                self._pattern = None

    def _compiled(self) -> tuple[re.Pattern | None, dict[str, str]]:
        with self._lock:
            if self._pattern is None and self._markers:
                forms: dict[str, str] = {}
                for value, marker in self._markers.items():
                    raw = value.encode("utf-8", "surrogatepass")
                    for form in (value, quote(value, safe=""), quote_plus(value), base64.b64encode(raw).decode(),
                                 base64.urlsafe_b64encode(raw).decode().rstrip("=")):
                        forms.setdefault(form.lower(), marker)
                self._forms = forms
                self._pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)),
                                           re.IGNORECASE)
            return self._pattern, self._forms

    def hide(self, text: str) -> str:
        pattern, forms = self._compiled()
        if pattern is None:
            return text
        return pattern.sub(lambda m: forms.get(m.group(0).lower(), "[api key]"), text)


SECRETS = _Secrets()
"""The keys of this process (one per xdist worker): ``--api-key`` values first, then keys made in-process."""


def register_secret(value: str | None) -> None:
    """Hide ``value`` (and its encodings) from every output from now on."""
    SECRETS.add(value)


def inert(text: str) -> str:
    """``text`` with lone surrogates replaced and every escape sequence and control character (but newline
    and tab) removed: what may reach a console or a plain-text file."""
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _ESCAPES.sub("", text)


def markdown_inert(text: str, one_line: bool = False) -> str:
    """``text`` as data in any markdown renderer (a CI job summary, SARIF ``markdown``): HTML as entities
    (GitHub renders raw tags in markdown), markdown syntax backslash-escaped, no control characters."""
    text = html.escape(inert(str(text)), quote=False)
    if one_line:
        text = text.replace("\n", " ").replace("\t", " ")
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", text)


def scrub_text(text: str, limit: int | None = MAX_TEXT) -> str:
    """One string as it may leave: keys hidden, inert, at most ``limit`` characters."""
    text = SECRETS.hide(inert(text))
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit:,} more characters not shown]"
    return text


def scrub(value, limit: int | None = MAX_TEXT):
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string and key scrubbed."""
    if isinstance(value, str):
        return scrub_text(value, limit)
    if isinstance(value, dict):
        return {scrub_text(str(k), limit): scrub(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, limit) for v in value]
    return value
