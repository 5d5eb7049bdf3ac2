"""When the flusher commits the open flush: the cadence, the size limits and the eager trickle rule.

A pure function of the flush and a time, so the rule is tested with numbers instead of a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from devgem.logs.pending import MAX_COMMIT_BYTES, PendingFlush

MAX_FLUSH_LINES = 20_000


@dataclass(frozen=True)
class Cadence:
    max_wait: float = 0.1  # the oldest pending line waits at most this long
    eager_below: int = 20  # below this many lines, commit early when nobody else can join
    quiet: float = 0.005  # ... and none arrived for this long
    max_commits: int = 2  # commits in flight at once


def due(flush: PendingFlush, *, now: float, busy: int, committing: int, cadence: Cadence) -> float | None:
    """0 if the open flush should be committed now, else how long to wait (None: until notified)."""
    if not flush.lines or committing >= cadence.max_commits:
        return None
    if len(flush.lines) >= MAX_FLUSH_LINES or flush.bytes >= MAX_COMMIT_BYTES:
        return 0
    waited = now - flush.first_at
    if waited >= cadence.max_wait:
        return 0
    if busy == 0 and len(flush.lines) < cadence.eager_below:
        quiet_for = now - flush.last_at
        if quiet_for >= cadence.quiet:
            return 0
        return min(cadence.quiet - quiet_for, cadence.max_wait - waited)
    return cadence.max_wait - waited
