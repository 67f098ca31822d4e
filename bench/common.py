"""Shared pieces of the benchmarks: a private broker, a fresh database, process CPU time, the result table."""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One measured figure against its reference and target."""

    name: str
    value: float
    unit: str
    reference: str
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    load: float | None = None  # the machine's 1-minute load average when it was measured


def load_now() -> float:
    """The machine's 1-minute load average (runnable processes; compare with the cores)."""
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb(pid: int) -> float:
    """A process's current resident memory, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def print_table(title: str, figures: list[Figure]) -> None:
    """The figures as a table on stdout."""
    print(f"\n## {title}  (cores: {os.cpu_count()}, python {sys.version.split()[0]})\n")
    print(f"| {'figure':<52} | {'measured':>16} | {'reference':<44} | {'ratio':>7} | {'target':<12} | ok | load |")
    print(f"|{'-' * 54}|{'-' * 18}|{'-' * 46}|{'-' * 9}|{'-' * 14}|----|------|")
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        ok = "" if f.ok is None else ("yes" if f.ok else "NO")
        load = f"{f.load:.1f}" if f.load is not None else ""
        print(
            f"| {f.name:<52} | {f.value:>11,.1f} {f.unit:<4} | {f.reference:<44} "
            f"| {ratio:>7} | {f.target:<12} | {ok:<2} | {load:>4} |"
        )
    sys.stdout.flush()
