"""A page module of words written from core (dashboards/static/*_words.js): the exports as JavaScript constants
under a header that says where they come from, and the command that writes the file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def _js(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2 if isinstance(value, dict) else None)


def module_text(header: Sequence[str], exports: Mapping[str, object]) -> str:
    """The module: `header` as comment lines, then `export const NAME = value;` for each export, in order."""
    lines = [f"// {line}" for line in header] + [""]
    lines += [f"export const {name} = {_js(value)};" for name, value in exports.items()]
    return "\n".join(lines) + "\n"


def main(path: Path, text: Callable[[], str]) -> int:
    """Write the file from core's words now; print its path."""
    path.write_text(text(), encoding="utf-8")
    sys.stdout.write(f"{path}\n")
    return 0
