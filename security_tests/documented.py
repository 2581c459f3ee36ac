"""The settings table of the README, read as data, so the documented defaults and ``Settings()`` cannot drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_ROW = re.compile(r"^\|\s*`FRAUDPIPE_([A-Z_]+)`\s*\|\s*(?:`([^`]*)`|(—|-|))\s*\|")


def documented_defaults(text: str | None = None) -> dict[str, str]:
    """Field name -> the default as the table writes it ("" where it shows a dash: unset)."""
    text = README.read_text() if text is None else text
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = _ROW.match(line.strip())
        if match:
            rows[match.group(1).lower()] = match.group(2) if match.group(2) is not None else ""
    return rows


def mismatches(documented: dict[str, str], settings_cls) -> dict[str, str]:
    """Each field whose documented default, parsed as if it were set, differs from the dataclass default."""
    from dataclasses import fields

    home = os.environ.get("XDG_CONFIG_HOME", "~/.config")
    defaults = settings_cls()
    names = {f.name for f in fields(settings_cls)}
    found = {name: "documented but not a setting" for name in set(documented) - names}
    found.update({name: "a setting the README does not document" for name in names - set(documented)})
    for name in names & set(documented):
        raw = documented[name].replace("~/.config", home, 1)
        parsed = getattr(settings_cls.from_env({f"FRAUDPIPE_{name.upper()}": raw}), name)
        if parsed != getattr(defaults, name):
            found[name] = f"README says {documented[name]!r}, Settings() has {getattr(defaults, name)!r}"
    return found


def left_unset(settings, name: str):
    """``settings`` with one field at its dataclass default (as when nothing sets it), and no audit log."""
    from dataclasses import fields, replace

    default = next(f for f in fields(settings) if f.name == name).default
    return replace(settings, **{name: default, "audit_log": None})


def per_window(rate: str) -> int:
    """``100/minute`` -> 100."""
    return int(rate.split("/")[0].split()[-1])
