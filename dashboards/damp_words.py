"""The pages' damp, case and device words, from core (core.damp, core.cases, core.devices):
dashboards/static/damp_words.js is written from here (`python -m dashboards.damp_words`), so the pages and the API
say the same, defined once in core.

tests/unit/test_damp_vocab.py fails when the file and core disagree: change the words in core, then run the command
to write the file again.
"""

from __future__ import annotations

from pathlib import Path

from core.cases import (
    EMERGENCY_EXPLANATION,
    EMERGENCY_LABEL,
    EMERGENCY_MEANING,
    STATUS_TEXT,
    CaseLevel,
)
from core.damp import (
    LEVEL_EXPLANATIONS,
    LEVEL_LABELS,
    LEVEL_MEANINGS,
    NOT_ASSESSED,
    NOT_ASSESSED_EXPLANATION,
    NOT_ASSESSED_LABEL,
    NOT_ASSESSED_MEANING,
    DampLevel,
)
from core.devices import DEVICE_STATUS_LABELS, DEVICE_STATUS_WORDS
from dashboards import words_module

PATH = Path(__file__).resolve().parent / "static" / "damp_words.js"
# The levels a page shows, most serious first: a confirmed emergency, the damp levels, a home never assessed.
_SHOWN = (DampLevel.RED, DampLevel.WATCH, DampLevel.ADVICE, DampLevel.GREEN, DampLevel.INSUFFICIENT_DATA)


def levels() -> dict[str, dict[str, str]]:
    """Every level a page shows, most serious first: its label, what it means, and what it means to the tenant."""
    out = {
        str(CaseLevel.EMERGENCY): {
            "label": EMERGENCY_LABEL,
            "plain": EMERGENCY_MEANING,
            "explain": EMERGENCY_EXPLANATION,
        }
    }
    for level in _SHOWN:
        out[str(level)] = {
            "label": LEVEL_LABELS[level],
            "plain": LEVEL_MEANINGS[level],
            "explain": LEVEL_EXPLANATIONS[level],
        }
    out[NOT_ASSESSED] = {
        "label": NOT_ASSESSED_LABEL,
        "plain": NOT_ASSESSED_MEANING,
        "explain": NOT_ASSESSED_EXPLANATION,
    }
    return out


def module_text() -> str:
    """dashboards/static/damp_words.js as core's words make it."""
    return words_module.module_text(
        [
            "Damp levels, case statuses and device statuses as people read them: written from core/damp.py,",
            "core/cases.py and core/devices.py by `python -m dashboards.damp_words`. Do not edit by hand.",
        ],
        {
            "LEVELS": levels(),
            "CASE_STATUS_TEXT": {str(k): v for k, v in STATUS_TEXT.items()},
            "DEVICE_STATUS_LABELS": {str(k): v for k, v in DEVICE_STATUS_LABELS.items()},
            "DEVICE_STATUS_WORDS": {str(k): v for k, v in DEVICE_STATUS_WORDS.items()},
        },
    )


if __name__ == "__main__":
    raise SystemExit(words_module.main(PATH, module_text))
