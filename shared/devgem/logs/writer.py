"""Group commit: the log lines a worker pulls, written together as chunk documents.

The log_entry worker pulls LogEntries in batches and may ack one only once its line is in Firestore.
It hands each line to `submit`, which returns a Future at once; a background flusher (started lazily)
takes everything pending and commits it as new chunk documents, then settles the futures. Lines that
arrive meanwhile go into the next flush (at most `max_commits` = 2 commits in flight, so one slow
commit does not hold up the next).

When the flusher commits the pending lines (the rule is in logs/schedule.py):
- at once when they approach a commit's size limits;
- when the oldest has waited `max_wait` (100 ms): under load each instance then writes about ten
  chunk sets a second whatever the line rate, so 1,000 lines/s cost ~0.01 writes a line;
- early, when nobody else can join: no batch is still being routed (`arrive`/`leave`), fewer than
  `eager_below` (20) lines are pending, and none arrived for `quiet` (5 ms). At a trickle (a build's
  output) waiting longer would only add latency; above 20 lines a chunk costs under 0.05 writes a
  line anyway, and the cadence applies.

Duplicates by insertId are dropped: a line already pending shares that same commit, and a line
committed by this instance in the last `remember` seconds is settled without a write (recent_ids.py).
That memory dies with the instance, and a redelivery may land on another instance: a line committed
by an instance killed before it acked comes back to one that never saw it. So a *redelivered* line
(`check_since`, its message's publish time) that this instance does not know is looked for in its
app's chunks written since then, before it is written (one query per app and flush that holds such
lines); found, it settles as a duplicate. First deliveries are not checked: nothing can have stored
them. What is left: an instance that loses its lease while alive (it stops extending leases for
longer than the ack deadline) and commits after the redelivery's check; readers still drop that copy
(logs.reader keeps the first copy of an insertId across pages too).

A failed commit fails the futures of every line in it with RetryLater; the worker nacks those
messages and Pub/Sub redelivers them.

Bad entries are counted in memory and the counts written at most once a second (rejections.py).

`close` stops the flusher: what is pending is committed (or failed), so no future is left hanging
and no thread outlives the writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from devgem import clock
from devgem.domain.errors import RetryLater
from devgem.logs.chunks import ChunkIds, Target, chunk_docs, id_floor, lines_of, logs_ref
from devgem.logs.entries import LogLine
from devgem.logs.pending import LineKey, PendingFlush, commit_batches, settle
from devgem.logs.recent_ids import RecentIds
from devgem.logs.rejections import REJECTIONS, Counts, RejectionCounts, Samples, minute_of, write_rejections
from devgem.logs.schedule import Cadence, due
from devgem.logs.writer_stats import Reporter, Stats

__all__ = ["REJECTIONS", "Arrival", "Commit", "LogWriter", "Stats"]

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 64 * 1024 * 1024  # beyond this an instance answers 500 and Pub/Sub backs off

CHECK_SKEW = timedelta(seconds=5)  # a chunk id (a writer's clock) may be this far behind a publish time

Commit = Callable[[list[tuple[firestore.DocumentReference, dict[str, Any]]]], None]
Lookup = Callable[[str, str], Iterable[str]]  # (app id, smallest chunk id) -> insertIds stored from there on


class Arrival:
    """A batch on its way to the writer (being parsed and routed); `leave` is idempotent."""

    def __init__(self, writer: LogWriter) -> None:
        self._writer = writer
        self.active = True

    def leave(self) -> None:
        self._writer._leave(self)


class LogWriter:
    def __init__(
        self,
        db: Callable[[], firestore.Client],
        *,
        max_wait: float = 0.1,
        eager_below: int = 20,
        quiet: float = 0.005,
        remember: float = 600.0,
        counter_interval: float = 1.0,
        max_commits: int = 2,
        commit: Commit | None = None,
        lookup: Lookup | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.cadence = Cadence(max_wait=max_wait, eager_below=eager_below, quiet=quiet, max_commits=max_commits)
        self._commit = commit or self._firestore_commit
        self._lookup = lookup or self._firestore_lookup
        self._now = monotonic
        self.ids = ChunkIds()
        self.stats = Stats()
        self._cond = threading.Condition()
        self._open = PendingFlush()
        self._committing: list[PendingFlush] = []
        self._committers = ThreadPoolExecutor(max_workers=max_commits, thread_name_prefix="log-commit")
        self._busy = 0  # batches that arrived and have not yet left
        self._recent = RecentIds(remember)
        self._rejections = RejectionCounts(counter_interval)
        self._reporter = Reporter(monotonic())
        self._thread: threading.Thread | None = None
        self._closing = False

    # -- lines ------------------------------------------------------------------------------------

    def arrive(self) -> Arrival:
        """Say a batch is on its way, so the flusher does not commit early without it."""
        with self._cond:
            self._busy += 1
        return Arrival(self)

    def _leave(self, arrival: Arrival) -> None:
        with self._cond:
            if arrival.active:
                arrival.active = False
                self._busy -= 1
                self._cond.notify_all()

    def submit(self, target: Target, line: LogLine, check_since: datetime | None = None) -> Future[str]:
        """A future that becomes "written" once the line is durably in Firestore, "duplicate" if it
        already was (or is being written), or fails with RetryLater if its commit failed.

        `check_since` marks a redelivered line: the earliest time a copy of it can have been
        stored (its message's publish time). The app's chunks written since then are searched for
        it before it is written, as the instance that stored it may have died before acking."""
        key = (target.app_id, line.insert_id)
        future: Future[str] = Future()
        with self._cond:
            if self._closing:
                future.set_exception(RetryLater("the log writer is closed; Pub/Sub will redeliver"))
                return future
            self._ensure_flusher()
            if key in self._recent:
                self.stats.duplicates += 1
                future.set_result("duplicate")
                return future
            flush = self._flush_holding(key)
            if flush is not None:
                self.stats.duplicates += 1
                flush.waiting[key].append(future)
                return future
            if self._open.bytes > MAX_PENDING_BYTES:
                future.set_exception(RetryLater("the log writer is saturated; Pub/Sub will redeliver"))
                return future
            self._open.add(key, target, line, future, self._now(), check_since)
            self._cond.notify_all()
        return future

    def reject(self, reason: str, raw: bytes) -> None:
        """Count a bad entry; the counts reach Firestore within about a second."""
        minute = minute_of(clock.now())
        with self._cond:
            if not self._closing:
                self._ensure_flusher()
            self.stats.rejected += 1
            self._rejections.count(reason, raw, minute)
            self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is pending, write the rejection counts, and stop the threads; idempotent.
        A line still pending after `timeout` fails with RetryLater."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        self._committers.shutdown(wait=True)
        with self._cond:
            left, self._open = self._open, PendingFlush()
        if left.lines:
            left.fail_all(RetryLater("the log writer closed before this line was committed"))
            settle(left)

    def _flush_holding(self, key: LineKey) -> PendingFlush | None:
        if key in self._open.lines:
            return self._open
        for flush in self._committing:
            if key in flush.lines:
                return flush
        return None

    # -- the flusher -----------------------------------------------------------------------------

    def _ensure_flusher(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                if not self._cycle():
                    return
            except Exception:  # never let the flusher die; waiters time out and are redelivered
                log.exception("log writer: unexpected error")
                if self._closing:
                    return
                time.sleep(0.1)

    def _due(self, now: float) -> float | None:
        if self._closing:  # commit everything now, as fast as the commits in flight allow
            return 0 if len(self._committing) < self.cadence.max_commits else None
        return due(self._open, now=now, busy=self._busy, committing=len(self._committing), cadence=self.cadence)

    def _cycle(self) -> bool:
        """Wait until something is due, start it; False once the writer is closed and drained."""
        with self._cond:
            while True:
                now = self._now()
                stopping = self._closing and not self._open.lines
                if stopping:
                    break
                wait = self._due(now)
                if wait == 0:
                    break
                counters_in = self._rejections.due_in(now)
                if counters_in == 0:
                    break
                timeouts = [t for t in (wait, counters_in) if t is not None]
                self._cond.wait(timeout=max(0.001, min(timeouts)) if timeouts else None)
            flush = self._open
            if flush.lines and len(self._committing) < self.cadence.max_commits:
                self._open = PendingFlush()
                self._committing.append(flush)
                self._committers.submit(self._write_lines, flush)
            rejections = self._rejections.take(now if not stopping else float("inf"), minute_of(clock.now()))
        if rejections:
            self._write_rejections(*rejections)
        self._reporter.report(self.stats, now)
        return not stopping

    def _write_lines(self, flush: PendingFlush) -> None:
        """Commit one flush as new chunk documents (runs on a committer thread)."""
        keys: dict[Target, list[LineKey]] = {}
        written: set[Target] = set()
        chunks = commits = 0
        try:
            if flush.check:
                self._drop_stored(flush)
            groups: dict[Target, list[LogLine]] = {}
            for key, (target, line) in flush.lines.items():
                if key in flush.stored or key in flush.failed:
                    continue
                groups.setdefault(target, []).append(line)
                keys.setdefault(target, []).append(key)
            db, now = self._db(), clock.now()
            writes = [
                (target, logs_ref(db, target.app_id).document(chunk_id), doc)
                for target, lines in groups.items()
                for chunk_id, doc in chunk_docs(target, lines, now, self.ids)
            ]
            for batch in commit_batches(writes):
                try:
                    self._commit([(ref, doc) for _, ref, doc in batch])
                except Exception as exc:
                    log.warning("log writer: a commit of %d chunks failed: %s", len(batch), type(exc).__name__)
                    flush.failed.update({key: exc for target, _, _ in batch for key in keys[target]})
                    continue
                written.update(target for target, _, _ in batch)
                commits += 1
                chunks += len(batch)
        except Exception as exc:  # building the chunks failed: every waiter is told, none hangs
            log.exception("log writer: could not write a flush")
            flush.fail_all(exc)
        finally:
            done_at = self._now()
            with self._cond:
                for target in written:
                    for key in keys[target]:
                        if key not in flush.failed:
                            self._recent.add(key, done_at)
                            self.stats.lines += 1
                self.stats.commits += commits
                self.stats.chunks += chunks
                for key in flush.stored:  # known now: a later copy needs no lookup
                    self._recent.add(key, done_at)
                self.stats.duplicates += len(flush.stored)
                self.stats.checked += len(flush.check)
                self._recent.forget_old(done_at)
                self._committing.remove(flush)
                self._cond.notify_all()
            settle(flush)

    def _drop_stored(self, flush: PendingFlush) -> None:
        """Mark the flush's redelivered lines that some instance already stored (runs on a committer
        thread, before the flush's chunks are built). A lookup that fails fails its lines: they are
        nacked and come back, rather than risk a second copy."""
        since: dict[str, datetime] = {}
        for (app_id, _), at in flush.check.items():
            since[app_id] = min(at, since.get(app_id, at))
        with self._cond:  # this instance's own commits need no query
            flush.stored.update(key for key in flush.check if key in self._recent)
        for app_id, at in since.items():
            keys = [key for key in flush.check if key[0] == app_id and key not in flush.stored]
            if not keys:
                continue
            try:
                stored = set(self._lookup(app_id, id_floor(at - CHECK_SKEW)))
            except Exception as exc:
                log.warning("log writer: could not check %d redelivered lines: %s", len(keys), type(exc).__name__)
                flush.failed.update({key: exc for key in keys})
                continue
            flush.stored.update(key for key in keys if key[1] in stored)

    def _firestore_lookup(self, app_id: str, floor: str) -> set[str]:
        """The insertIds in the app's chunks with ids from `floor` on (any instance's)."""
        ref = logs_ref(self._db(), app_id)
        query = ref.where(filter=firestore.FieldFilter(FieldPath.document_id(), ">=", ref.document(floor)))
        found: set[str] = set()
        for snap in query.select(["lines"]).stream(timeout=30):
            found.update(str(line.get("insertId", "")) for line in lines_of(snap.to_dict() or {}))
        return found

    def _firestore_commit(self, writes: list[tuple[firestore.DocumentReference, dict[str, Any]]]) -> None:
        batch = self._db().batch()
        for ref, doc in writes:
            batch.create(ref, doc)  # a chunk is written once; create never overwrites
        batch.commit(timeout=30)

    def _write_rejections(self, counts: Counts, samples: Samples) -> None:
        try:
            self.stats.counter_writes += write_rejections(self._db(), self.ids.writer, clock.now(), counts, samples)
        except Exception as exc:  # counts are best effort: put them back for the next attempt
            log.warning("log writer: could not write rejection counts: %s", type(exc).__name__)
            with self._cond:
                self._rejections.put_back(counts)
