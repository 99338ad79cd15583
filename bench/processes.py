"""Process measurements for benchmarks: RSS and CPU time of a process tree from /proc."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (gunicorn workers under their master)."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            found.append(kid)
            frontier.append(kid)
    return found


def tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def rss_mib(pid: int, include_children: bool = True) -> float:
    """Resident set size in MiB (VmRSS), summed over the tree if asked."""
    total_kib = 0
    for member in tree(pid) if include_children else [pid]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kib / 1024


def cpu_seconds(pid: int, include_children: bool = True) -> float:
    """User + system CPU seconds consumed so far by the process (tree)."""
    total = 0
    for member in tree(pid) if include_children else [pid]:
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; fields resume after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS
