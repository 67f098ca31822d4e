"""The pages' gritting words, from core.gritting.vocab: dashboards/static/gritting_words.js is written from here
(`python -m dashboards.gritting_words`), so the pages and the API say the same, defined once in core.

tests/unit/test_gritting_vocab.py fails when the file and core disagree: change the words in core, then run the
command to write the file again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.gritting.lifecycle import RUN_ACTIONS
from core.gritting.vocab import (
    ACTION_LABELS,
    ACTIVE,
    ACTOR_LABELS,
    EVENT_LABELS,
    STATUS_LABELS,
    TREATING,
    DecisionStatus,
    GrittingAction,
)

PATH = Path(__file__).resolve().parent / "static" / "gritting_words.js"


def _js(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2 if isinstance(value, dict) else None)


def module_text() -> str:
    """dashboards/static/gritting_words.js as core's words make it."""
    exports = {
        "ACTION_LABELS": {str(k): v for k, v in ACTION_LABELS.items()},
        "STATUS_LABELS": {str(k): v for k, v in STATUS_LABELS.items()},
        "EVENT_LABELS": {str(k): v for k, v in EVENT_LABELS.items()},
        "TREATING": [str(a) for a in GrittingAction if a in TREATING],
        "ACTIVE": [str(s) for s in DecisionStatus if s in ACTIVE],
        "RUN_ACTIONS": [str(a) for a in RUN_ACTIONS],
        "ACTOR_LABELS": dict(ACTOR_LABELS),
    }
    lines = [
        "// Gritting's words as people read them, and which actions treat and which statuses are active: written",
        "// from core/gritting/vocab.py by `python -m dashboards.gritting_words`. Do not edit by hand.",
        "",
    ]
    lines += [f"export const {name} = {_js(value)};" for name, value in exports.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write the file; print its path."""
    PATH.write_text(module_text(), encoding="utf-8")
    sys.stdout.write(f"{PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
