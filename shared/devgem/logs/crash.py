"""Crash signals read the way log lines are: a LogEntry placed in its app (logs.routing), with its
fingerprint (domain.crash_signals); and an incident's context read from the app's log chunks.

Kept beside the log pipeline because a signal *is* a LogEntry: the same parsing, safe text and
service -> app lookup (cached) apply, so a crash-detected message and a log-entry message for the
same line agree on which app and deployment it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from google.cloud import firestore

from devgem.domain import crash_signals
from devgem.domain.errors import InvalidEvent
from devgem.domain.incidents import Signal
from devgem.logs import reader
from devgem.logs.chunks import rfc3339
from devgem.logs.entries import RUN, RejectedLogEntry, parse
from devgem.logs.routing import LineRouter

CONTEXT_SPAN = timedelta(minutes=2)  # how far before the first signal its context lines are looked for


def signal_of(data: bytes, router: LineRouter) -> Signal:
    """InvalidEvent for an entry that is not a crash signal of a Devgem app; lookups' errors propagate."""
    try:
        line = parse(data)
        entry = json.loads(data)
    except (RejectedLogEntry, ValueError) as exc:
        raise InvalidEvent(f"not a crash signal: {exc}") from exc
    if line.source != RUN or not crash_signals.is_crash_signal(entry):
        raise InvalidEvent("not a crash signal: the crash filter does not select this entry")
    if crash_signals.is_stack_fragment(entry):
        raise InvalidEvent("not a crash signal: one line of a stack trace")
    target = router.route(line)  # RejectedLogEntry (an InvalidEvent) for a service that is not an app
    return Signal(
        insert_id=line.insert_id,
        at=line.at,
        tenant_id=target.tenant_id,
        app_id=target.app_id,
        fingerprint=crash_signals.fingerprint(entry),
        revision=line.revision,
        deployment_id=target.deployment_id,
        text=line.text,
    )


class ChunkContext:
    """The LogContext port over the app's log chunks."""

    def __init__(self, db: Callable[[], firestore.Client]) -> None:
        self._db = db

    def lines_before(self, tenant_id: str, app_id: str, at: datetime, limit: int) -> list[str]:
        history = reader.newest(self._db(), tenant_id, app_id, limit=500, since=at - CONTEXT_SPAN)
        until = rfc3339(at)
        texts = [str(line.get("text", "")) for line in history.lines if str(line.get("at", "")) <= until]
        return texts[-limit:]
