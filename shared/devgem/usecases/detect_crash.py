"""crash-detected: crash signals (LogEntries the crash filter selected) grouped into incidents.

The crash_detected worker pulls signals in batches and hands them here; each gets a Future the worker
waits on before acking. Why a pull worker and not a pushed function: a crash loop can send 1,000
signals a second for one app, and all of them land on one incident document, which Firestore takes
about one write a second on. Pushed, that is one invocation and one guarded write per signal, all
racing for the same document (the emulator pushes two at a time, so it would also queue for minutes).
Pulled, the signals of one incident are gathered in memory and written together: an incident is
written at once when it is new (an alert should not wait), then at most once per `flush_every`
(1 s) while signals keep coming, whatever their rate. docs/crash.md has the measurements.

Idempotent under redelivery, by LogEntry insertId: each write records its signals' insertIds in a
new `incidents/{id}/signals/{n}` document in the same atomic batch as the incident. A signal this
instance already counted is dropped from memory. Any other is looked up in the signals documents
written since the entry's time (less 5 s of skew, at most 10 minutes back) before it is counted:
another instance, or this one before a restart, may have counted it and died before acking, and a
publisher may send one entry twice. Unlike log_entry this looks up first deliveries too, because it
is cheap here: one query per incident write, and an incident is written at most once a second.

Notifying: the decision to notify is recorded on the incident in the same write as the counts
(`pending`, domain/incidents.py); then the alerts are sent and the notice marked sent. A worker
killed in between does not ack, the signals come back as duplicates, and the flush that finds them
sends the notice still pending. The only window for a second copy is a kill between the alerts'
call returning and the "sent" mark (milliseconds); the notice's (incident, seq) key lets an adapter
close it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from devgem.domain.errors import InvalidEvent
from devgem.domain.incidents import (
    CONTEXT_LINES,
    OPENED,
    Incident,
    Notice,
    Signal,
    apply_signals,
    incident_id,
    notice_sent,
)
from devgem.usecases.ports import Delivered, IncidentAlerts, Incidents, LogContext

log = logging.getLogger(__name__)

CHECK_SKEW = timedelta(seconds=5)  # a signals document's time (a writer's clock) vs a publish time
CONTEXT_DELAY = 3.0  # the app's lines reach the log chunks through another subscription, a little later
REMEMBER = 600.0  # seconds an instance remembers the insertIds it counted
LOOKBACK = timedelta(minutes=10)  # how far back stored insertIds are searched for a signal's copy


@dataclass
class _Pending:
    signal: Signal
    future: Future[str]
    check_since: datetime  # a copy of this signal can only have been stored after this time


@dataclass
class DetectCrash:
    incidents: Incidents
    notifier: IncidentAlerts
    context: LogContext
    to_signal: Callable[[bytes], Signal]  # InvalidEvent: not a signal Devgem can place; others: retry
    now: Callable[[], datetime]
    flush_every: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    background: bool = True  # False: the caller drives `due` and `flush` (the unit tests)
    _lock: threading.Condition = field(default_factory=threading.Condition, init=False)
    _pending: dict[str, list[_Pending]] = field(default_factory=dict, init=False)
    _flushing: set[str] = field(default_factory=set, init=False)
    _last_write: dict[str, float] = field(default_factory=dict, init=False)
    _counted: dict[str, float] = field(default_factory=dict, init=False)  # insertId -> when counted
    _context_due: dict[str, float] = field(default_factory=dict, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    writes: int = field(default=0, init=False)

    # -- intake ----------------------------------------------------------------------------------

    def accept_batch(self, messages: Sequence[Delivered]) -> list[Future[str]]:
        """One future per message: "counted", "duplicate", "rejected: ..." or an exception (nack)."""
        futures: list[Future[str]] = []
        with self._lock:
            for message in messages:
                futures.append(self._accept(message))
            self._lock.notify_all()
        self._start()
        return futures

    def _accept(self, message: Delivered) -> Future[str]:
        future: Future[str] = Future()
        try:
            signal = self.to_signal(message.data)
        except InvalidEvent as exc:
            future.set_result(f"rejected: {exc}")
            return future
        except Exception as exc:  # a lookup failed: retry this message
            future.set_exception(exc)
            return future
        if signal.insert_id in self._counted:
            future.set_result("duplicate")
            return future
        check_since = min(signal.at, message.published or signal.at)
        key = incident_id(signal.app_id, signal.fingerprint)
        self._pending.setdefault(key, []).append(_Pending(signal, future, check_since))
        return future

    # -- flushing --------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and self.background:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="incident")
                self._thread = threading.Thread(target=self._run, name="incident-flusher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            for key, items in self.due():
                assert self._pool is not None
                self._pool.submit(self.flush, key, items)
            for key in self._contexts_due():
                assert self._pool is not None
                self._pool.submit(self._fill_context, key)
            with self._lock:
                self._lock.wait(0.05)

    def due(self) -> list[tuple[str, list[_Pending]]]:
        """The incidents to write now, with their signals: new ones at once, others once per flush_every."""
        now = self.monotonic()
        taken: list[tuple[str, list[_Pending]]] = []
        with self._lock:
            for key in list(self._pending):
                if key in self._flushing or now - self._last_write.get(key, -1e9) < self.flush_every:
                    continue
                taken.append((key, self._pending.pop(key)))
                self._flushing.add(key)
                self._last_write[key] = now
            self._forget(now)
        return taken

    def _forget(self, now: float) -> None:
        """Bound the memory of a long-running instance; what it forgets is looked up in storage instead."""
        if len(self._counted) > 200_000:
            self._counted = {k: t for k, t in self._counted.items() if now - t < REMEMBER}
        if len(self._last_write) > 10_000:
            self._last_write = {k: t for k, t in self._last_write.items() if now - t < 10 * self.flush_every}

    def flush(self, key: str, items: list[_Pending]) -> None:
        """Write what `due` took for this incident; then its next signals may be taken."""
        try:
            self._write(key, items)
        finally:
            with self._lock:
                self._flushing.discard(key)
                self._lock.notify_all()

    def _write(self, key: str, items: list[_Pending]) -> None:
        """Count these signals into their incident in one write, notify if it says so, settle them."""
        try:
            fresh, duplicates = self._new_signals(key, items)
            incident: Incident | None
            if fresh:
                incident = self.incidents.record(
                    key,
                    lambda current: apply_signals(current, [p.signal for p in fresh], self.now()),
                    [p.signal.insert_id for p in fresh],
                )
                self.writes += 1
                if incident.count == len(fresh):  # new, or reopened: its first lines are not stored yet
                    self._schedule_context(key)
            else:
                incident = self.incidents.get(key)  # a redelivery: a notice may not have gone out
            if incident is not None and incident.pending is not None:
                self._send(incident)
        except Exception as exc:
            log.warning("incident %s: writing %d signals failed (%s); they are retried", key, len(items), exc)
            for p in items:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        now = self.monotonic()
        with self._lock:
            for p in fresh:
                self._counted[p.signal.insert_id] = now
        for p in fresh:
            p.future.set_result("counted")
        for p in duplicates:
            p.future.set_result("duplicate")

    def _new_signals(self, key: str, items: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        seen: set[str] = set()
        unknown = [p.check_since for p in items if p.signal.insert_id not in self._counted]
        since = max(min(unknown) - CHECK_SKEW, self.now() - LOOKBACK) if unknown else None
        stored = self.incidents.stored_ids(key, since) if since is not None else set()
        fresh: list[_Pending] = []
        duplicates: list[_Pending] = []
        for p in items:
            insert_id = p.signal.insert_id
            if insert_id in seen or insert_id in stored or insert_id in self._counted:
                duplicates.append(p)
            else:
                seen.add(insert_id)
                fresh.append(p)
        return fresh, duplicates

    def _send(self, incident: Incident) -> None:
        notice = incident.pending
        assert notice is not None
        if notice.kind == OPENED:
            self.notifier.incident_opened(incident)
        else:
            self.notifier.incident_escalated(incident)
        self.incidents.change(incident.id, lambda current: _mark_sent(current, notice))
        self.writes += 1

    # -- context ---------------------------------------------------------------------------------

    def _schedule_context(self, key: str) -> None:
        with self._lock:
            self._context_due[key] = self.monotonic() + CONTEXT_DELAY

    def _contexts_due(self) -> list[str]:
        now = self.monotonic()
        with self._lock:
            keys = [k for k, at in self._context_due.items() if at <= now]
            for k in keys:
                del self._context_due[k]
        return keys

    def _fill_context(self, key: str) -> None:
        """The app's last lines up to the first signal, stored once. Best effort: an incident without
        them is still an incident, and a restart that loses the timer leaves the field empty."""
        try:
            incident = self.incidents.get(key)
            if incident is None or incident.context:
                return
            lines = self.context.lines_before(
                incident.tenant_id, incident.app_id, incident.first_seen + timedelta(seconds=1), CONTEXT_LINES
            )
            if not lines:
                return
            occurrence = incident.occurrence
            self.incidents.change(key, lambda current: _with_context(current, occurrence, lines))
            self.writes += 1
        except Exception:
            log.exception("incident %s: reading its log context failed", key)


def _mark_sent(current: Incident, notice: Notice) -> Incident | None:
    return notice_sent(current, notice)


def _with_context(current: Incident, occurrence: int, lines: list[str]) -> Incident | None:
    if current.context or current.occurrence != occurrence:
        return None
    return replace(current, context=tuple(lines))
