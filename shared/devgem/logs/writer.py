"""Group commit: the log lines a worker pulls, written together as chunk documents.

The log_entry worker pulls LogEntries in batches and may ack one only once its line is in Firestore.
It hands each line to `submit`, which returns a Future at once; a background flusher (started lazily)
takes everything pending and commits it as new chunk documents, then settles the futures. Lines that
arrive meanwhile go into the next flush (at most `max_commits` = 2 commits in flight, so one slow
commit does not hold up the next).

When the flusher commits the pending lines:
- at once when they approach a commit's size limits;
- when the oldest has waited `max_wait` (100 ms): under load each instance then writes about ten
  chunk sets a second whatever the line rate, so 1,000 lines/s cost ~0.01 writes a line;
- early, when nobody else can join: no batch is still being routed (`arrive`/`leave`), fewer than
  `eager_below` (20) lines are pending, and none arrived for `quiet` (5 ms). At a trickle (a build's
  output) waiting longer would only add latency; above 20 lines a chunk costs under 0.05 writes a
  line anyway, and the cadence applies.

Duplicates by insertId are dropped: a line already pending shares that same commit, and a line
committed by this instance in the last `remember` seconds is settled without a write. (A redelivery
that lands on another instance is written again; readers drop it by insertId, see log_chunks.SeenIds.)

A failed commit fails the futures of every line in it with RetryLater; the worker nacks those
messages and Pub/Sub redelivers them.

Bad entries are counted in memory and the counts written at most once a second per instance, to
`logRejections/{minute}-{writer}` (one document per instance and minute: never hot); the first entry
of each reason in a minute is also kept in rejectedEvents for a human.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from google.cloud import firestore

from devgem import clock
from devgem.adapters import store
from devgem.domain.errors import RetryLater
from devgem.logs.chunks import ChunkIds, Target, chunk_docs, logs_ref
from devgem.logs.entries import LogLine

log = logging.getLogger(__name__)

REJECTIONS = "logRejections"
MAX_COMMIT_WRITES = 450  # Firestore allows 500 writes in a batch
MAX_COMMIT_BYTES = 6 * 1024 * 1024  # a commit request is at most 10 MiB
MAX_FLUSH_LINES = 20_000
REPORT_EVERY = 60.0
MAX_PENDING_BYTES = 64 * 1024 * 1024  # beyond this an instance answers 500 and Pub/Sub backs off
MAX_REMEMBERED = 200_000  # committed insertIds kept for dropping duplicates (~30 MB)


@dataclass
class _Flush:
    """Lines that are committed together, and the futures waiting on them."""

    lines: dict[tuple[str, str], tuple[Target, LogLine]] = field(default_factory=dict)
    waiting: dict[tuple[str, str], list[Future[str]]] = field(default_factory=dict)
    bytes: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    failed: dict[tuple[str, str], BaseException] = field(default_factory=dict)


@dataclass
class Stats:
    lines: int = 0
    chunks: int = 0
    commits: int = 0
    duplicates: int = 0
    rejected: int = 0
    counter_writes: int = 0


Commit = Callable[[list[tuple[firestore.DocumentReference, dict[str, Any]]]], None]


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
    ) -> None:
        self._db = db
        self.max_wait = max_wait
        self.eager_below = eager_below
        self.quiet = quiet
        self.remember = remember
        self.counter_interval = counter_interval
        self.max_commits = max_commits
        self._commit = commit or self._firestore_commit
        self.ids = ChunkIds()
        self.stats = Stats()
        self._cond = threading.Condition()
        self._open = _Flush()
        self._committing: list[_Flush] = []
        self._committers = ThreadPoolExecutor(max_workers=max_commits, thread_name_prefix="log-commit")
        self._busy = 0  # batches that arrived and have not yet left
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()  # committed key -> when
        self._rejections: dict[str, int] = {}
        self._samples: dict[str, str] = {}  # reason -> a raw entry, to keep in rejectedEvents
        self._sampled: set[tuple[str, str]] = set()  # (minute, reason) already sampled
        self._last_counter_write = 0.0
        self._last_report = time.monotonic()
        self._reported = Stats()
        self._thread: threading.Thread | None = None

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

    def submit(self, target: Target, line: LogLine) -> Future[str]:
        """A future that becomes "written" once the line is durably in Firestore, "duplicate" if it
        already was (or is being written), or fails with RetryLater if its commit failed."""
        key = (target.app_id, line.insert_id)
        future: Future[str] = Future()
        with self._cond:
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
            flush = self._open
            flush.last_at = time.monotonic()
            if not flush.lines:
                flush.first_at = flush.last_at
            flush.lines[key] = (target, line)
            flush.waiting[key] = [future]
            flush.bytes += line.size()
            self._cond.notify_all()
        return future

    def reject(self, reason: str, raw: bytes) -> None:
        """Count a bad entry; the counts reach Firestore within about a second."""
        minute = clock.now().strftime("%Y%m%d%H%M")
        with self._cond:
            self._ensure_flusher()
            self.stats.rejected += 1
            self._rejections[reason] = self._rejections.get(reason, 0) + 1
            if (minute, reason) not in self._sampled:
                self._sampled.add((minute, reason))
                self._samples[reason] = raw[:10_000].decode("utf-8", errors="replace")
            self._cond.notify_all()

    def _flush_holding(self, key: tuple[str, str]) -> _Flush | None:
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

    def _due(self, now: float) -> float | None:
        """0 if the open flush should be committed now, else how long to wait (None: until notified)."""
        flush = self._open
        if not flush.lines or len(self._committing) >= self.max_commits:
            return None
        if len(flush.lines) >= MAX_FLUSH_LINES or flush.bytes >= MAX_COMMIT_BYTES:
            return 0
        waited = now - flush.first_at
        if waited >= self.max_wait:
            return 0
        if self._busy == 0 and len(flush.lines) < self.eager_below:
            quiet_for = now - flush.last_at
            if quiet_for >= self.quiet:
                return 0
            return min(self.quiet - quiet_for, self.max_wait - waited)
        return self.max_wait - waited

    def _run(self) -> None:
        while True:
            try:
                self._cycle()
            except Exception:  # never let the flusher die; waiters time out and are redelivered
                log.exception("log writer: unexpected error")
                time.sleep(0.1)

    def _cycle(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._due(now)
                if wait == 0:
                    break
                if self._rejections and now - self._last_counter_write >= self.counter_interval:
                    wait = 0
                    break
                counters_in = self.counter_interval - (now - self._last_counter_write) if self._rejections else None
                timeouts = [t for t in (wait, counters_in) if t is not None]
                self._cond.wait(timeout=max(0.001, min(timeouts)) if timeouts else None)
            flush = self._open
            if flush.lines and len(self._committing) < self.max_commits:
                self._open = _Flush()
                self._committing.append(flush)
                self._committers.submit(self._write_lines, flush)
            rejections = self._take_rejections(now) if now - self._last_counter_write >= self.counter_interval else None
        if rejections:
            self._write_rejections(*rejections)
        self._report(now)

    def _report(self, now: float) -> None:
        """A summary a minute in the function's own log: counts only, never a line's text."""
        if now - self._last_report < REPORT_EVERY:
            return
        s, was = self.stats, self._reported
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

    def _write_lines(self, flush: _Flush) -> None:
        """Commit one flush as new chunk documents (runs on a committer thread)."""
        keys: dict[Target, list[tuple[str, str]]] = {}
        written: set[Target] = set()
        chunks = commits = 0
        try:
            groups: dict[Target, list[LogLine]] = {}
            for key, (target, line) in flush.lines.items():
                groups.setdefault(target, []).append(line)
                keys.setdefault(target, []).append(key)
            db, now = self._db(), clock.now()
            writes = [
                (target, logs_ref(db, target.app_id).document(chunk_id), doc)
                for target, lines in groups.items()
                for chunk_id, doc in chunk_docs(target, lines, now, self.ids)
            ]
            for batch in _batches(writes):
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
            flush.failed.update({key: exc for key in flush.lines if key not in flush.failed})
        finally:
            done_at = time.monotonic()
            with self._cond:
                for target in written:
                    for key in keys[target]:
                        if key not in flush.failed:
                            self._recent[key] = done_at
                            self.stats.lines += 1
                self.stats.commits += commits
                self.stats.chunks += chunks
                self._forget(done_at)
                self._committing.remove(flush)
                self._cond.notify_all()
            _settle(flush)

    def _forget(self, now: float) -> None:
        while self._recent:
            key, at = next(iter(self._recent.items()))
            if now - at < self.remember and len(self._recent) <= MAX_REMEMBERED:
                break
            del self._recent[key]

    def _firestore_commit(self, writes: list[tuple[firestore.DocumentReference, dict[str, Any]]]) -> None:
        batch = self._db().batch()
        for ref, doc in writes:
            batch.create(ref, doc)  # a chunk is written once; create never overwrites
        batch.commit(timeout=30)

    # -- rejections ------------------------------------------------------------------------------

    def _take_rejections(self, now: float) -> tuple[dict[str, int], dict[str, str]] | None:
        if not self._rejections:
            return None
        counts, self._rejections = self._rejections, {}
        samples, self._samples = self._samples, {}
        minute = clock.now().strftime("%Y%m%d%H%M")
        self._sampled = {k for k in self._sampled if k[0] >= minute}
        self._last_counter_write = now
        return counts, samples

    def _write_rejections(self, counts: dict[str, int], samples: dict[str, str]) -> None:
        at = clock.now()
        minute = at.strftime("%Y%m%d%H%M")
        try:
            db = self._db()
            db.collection(REJECTIONS).document(f"{minute}-{self.ids.writer}").set(
                {
                    "tenantId": None,
                    "minute": at.replace(second=0, microsecond=0),
                    "writer": self.ids.writer,
                    "counts": {reason: firestore.Increment(n) for reason, n in counts.items()},
                    "expireAt": at + store.REJECTED_RETENTION,
                },
                merge=True,
            )
            self.stats.counter_writes += 1
            for reason, raw in samples.items():
                store.record_rejected_event(db, "log_entry", f"{reason} (first of the minute; see {REJECTIONS})", raw)
                self.stats.counter_writes += 1
        except Exception as exc:  # counts are best effort: put them back for the next attempt
            log.warning("log writer: could not write rejection counts: %s", type(exc).__name__)
            with self._cond:
                for reason, n in counts.items():
                    self._rejections[reason] = self._rejections.get(reason, 0) + n


def _settle(flush: _Flush) -> None:
    """The first future of a line learns whether it was written; later ones learn it was a duplicate."""
    for key, futures in flush.waiting.items():
        error = flush.failed.get(key)
        for i, future in enumerate(futures):
            if error is not None:
                future.set_exception(RetryLater(f"the log chunk could not be written: {error}"))
            else:
                future.set_result("written" if i == 0 else "duplicate")


def _batches(writes: list[Any]) -> list[list[Any]]:
    out: list[list[Any]] = [[]]
    size = 0
    for w in writes:
        doc_bytes = len(w[2]["lines"]) + 512
        if out[-1] and (len(out[-1]) >= MAX_COMMIT_WRITES or size + doc_bytes > MAX_COMMIT_BYTES):
            out.append([])
            size = 0
        out[-1].append(w)
        size += doc_bytes
    return [b for b in out if b]
