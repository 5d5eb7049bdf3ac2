"""What a log writer did, and the once-a-minute summary of it in the function's own log."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

log = logging.getLogger("devgem.logs.writer")

REPORT_EVERY = 60.0


@dataclass
class Stats:
    lines: int = 0
    chunks: int = 0
    commits: int = 0
    duplicates: int = 0
    checked: int = 0  # redelivered lines looked for in storage before writing
    rejected: int = 0
    counter_writes: int = 0


class Reporter:
    """Counts only, never a line's text."""

    def __init__(self, now: float) -> None:
        self._last_report = now
        self._reported = Stats()

    def report(self, stats: Stats, now: float) -> None:
        if now - self._last_report < REPORT_EVERY:
            return
        s, was = stats, self._reported
        lines, chunks = s.lines - was.lines, s.chunks - was.chunks
        if lines or s.rejected > was.rejected or s.duplicates > was.duplicates:
            log.info(
                "log writer: %d lines in %d chunks (%.3f writes a line), %d duplicates dropped, %d entries rejected",
                lines,
                chunks,
                chunks / lines if lines else 0.0,
                s.duplicates - was.duplicates,
                s.rejected - was.rejected,
            )
        self._reported = replace(s)
        self._last_report = now
