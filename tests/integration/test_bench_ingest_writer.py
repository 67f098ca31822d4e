"""bench.ingest_writer's comparisons run to the end and print a figure for every variant: a bench option that can
only crash (as --copy-packing did once its writer internals were gone) fails here, not in front of the next
engineer who reaches for it."""

from __future__ import annotations

import re

import pytest

from bench import ingest_writer

_FIGURE = re.compile(r"^  (.+?)\s+PostgreSQL\s+(\d+\.\d) core-ms per 1,000 messages \(median of 4 rounds")


@pytest.mark.parametrize(
    ("option", "variants"),
    [
        (
            "--compare",
            {
                "as shipped: one state row per device",
                "COPY and commit only, no state",
                "before (migration 0026): one state row per series",
            },
        ),
    ],
)
def test_writer_bench_comparisons_print_a_figure_for_every_variant(capsys, option, variants):
    ingest_writer.main(["--devices", "240", "--batch", "80", "--rounds", "1", option])
    lines = capsys.readouterr().out.splitlines()
    figures = {m.group(1): float(m.group(2)) for line in lines if (m := _FIGURE.match(line))}
    assert set(figures) == variants
    assert all(f >= 0 for f in figures.values())  # (a small run may take under one 10 ms tick of /proc)
