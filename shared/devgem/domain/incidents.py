"""Grouping crash signals into incidents, and when to tell someone: pure rules, no I/O.

One open incident per app and fingerprint, so a crash loop is one incident with a count, not a
thousand alerts. The incident document's id is derived from (app, fingerprint): every consumer
instance finds the same document without a query or an index. A resolved incident that crashes
again is reopened as a new occurrence of that document (`occurrence` + 1, counts reset).

Notifying is decided here, together with the state change, and recorded on the incident
(`pendingNotice`) in the same write: the sender then delivers it and marks it sent. A restart finds
a notice still pending and sends it; one that was marked sent is never sent again. Rules:
- a new (or reopened) incident: notify "opened";
- a single crash that becomes a crash loop (`LOOP_COUNT` signals within `LOOP_WINDOW`): notify
  "escalated", once per occurrence;
- still crashing after `COOL_DOWN` since the last notice: notify again ("escalated" kind "reminder"),
  so a long-running incident is not forgotten, but never more often than that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
SINGLE, LOOP = "single", "loop"
OPENED, ESCALATED, REMINDER = "opened", "escalated", "reminder"

LOOP_COUNT = 3  # crashes within LOOP_WINDOW that make a crash loop (Cloud Run restarts at 1, 2, 4 s...)
LOOP_WINDOW = timedelta(minutes=5)
COOL_DOWN = timedelta(minutes=30)
CONTEXT_LINES = 20


def incident_id(app_id: str, fingerprint: str) -> str:
    """Stable across instances and restarts: the grouping key is the document's address."""
    return hashlib.sha256(f"{app_id}\x00{fingerprint}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Signal:
    """One crash signal: a LogEntry the crash filter selected, routed to its app."""

    insert_id: str
    at: datetime
    tenant_id: str
    app_id: str
    fingerprint: str
    revision: str | None
    deployment_id: str | None
    text: str


@dataclass(frozen=True)
class Notice:
    kind: str  # OPENED, ESCALATED, REMINDER
    seq: int  # the incident's n-th notice: with the incident id, a key the notifier may dedupe on


@dataclass(frozen=True)
class Incident:
    id: str
    tenant_id: str
    app_id: str
    fingerprint: str
    first_seen: datetime
    last_seen: datetime
    count: int
    revision: str | None
    deployment_id: str | None
    status: str = OPEN
    level: str = SINGLE
    occurrence: int = 1
    recent: tuple[datetime, ...] = ()  # the newest signal times, up to LOOP_COUNT, to tell a loop
    first_text: str = ""
    context: tuple[str, ...] = ()  # the app's last CONTEXT_LINES lines up to the first signal
    notices_sent: int = 0
    last_notice_at: datetime | None = None
    pending: Notice | None = None
    notified_levels: tuple[str, ...] = field(default=())


def _recent(previous: Sequence[datetime], signals: Sequence[Signal]) -> tuple[datetime, ...]:
    return tuple(sorted([*previous, *(s.at for s in signals)])[-LOOP_COUNT:])


def _level(recent: Sequence[datetime]) -> str:
    return LOOP if len(recent) >= LOOP_COUNT and recent[-1] - recent[0] <= LOOP_WINDOW else SINGLE


def apply_signals(current: Incident | None, signals: Sequence[Signal], now: datetime) -> Incident:
    """The incident after these new (already deduplicated) signals of one app and fingerprint."""
    assert signals, "apply_signals needs at least one signal"
    first = min(signals, key=lambda s: s.at)
    last_at = max(s.at for s in signals)
    if current is None or current.status == RESOLVED:
        recent = _recent((), signals)
        opened = Incident(
            id=incident_id(first.app_id, first.fingerprint),
            tenant_id=first.tenant_id,
            app_id=first.app_id,
            fingerprint=first.fingerprint,
            first_seen=first.at,
            last_seen=last_at,
            count=len(signals),
            revision=first.revision,
            deployment_id=first.deployment_id,
            level=_level(recent),
            occurrence=current.occurrence + 1 if current else 1,
            recent=recent,
            first_text=first.text[:2000],
            notices_sent=current.notices_sent if current else 0,
        )
        return _with_notice(opened, OPENED, now)
    recent = _recent(current.recent, signals)
    level = LOOP if current.level == LOOP else _level(recent)
    updated = replace(current, last_seen=max(current.last_seen, last_at), count=current.count + len(signals))
    updated = replace(updated, recent=recent, level=level)
    if current.pending is not None:
        return updated  # a notice is still on its way; it reads the incident as it is when sent
    if level == LOOP and LOOP not in current.notified_levels:
        return _with_notice(updated, ESCALATED, now)
    if current.last_notice_at is not None and now - current.last_notice_at >= COOL_DOWN:
        return _with_notice(updated, REMINDER, now)
    return updated


def _with_notice(incident: Incident, kind: str, now: datetime) -> Incident:
    levels = (
        tuple(sorted({*incident.notified_levels, incident.level})) if kind != REMINDER else incident.notified_levels
    )
    if kind == OPENED:
        levels = (incident.level,)
    return replace(
        incident,
        pending=Notice(kind, incident.notices_sent + 1),
        notified_levels=levels,
        last_notice_at=now,
    )


def notice_sent(incident: Incident, notice: Notice) -> Incident | None:
    """The incident once `notice` was delivered, or None if it is not the pending one (already marked)."""
    if incident.pending != notice:
        return None
    return replace(incident, pending=None, notices_sent=notice.seq)
