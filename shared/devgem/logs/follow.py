"""Following an app's logs through a Firestore listener, the way the CLI and the web app do: no polling.

The listener watches a window: this tenant's newest `window` chunks of the app (or of one deployment),
by chunk id. A window keeps the listener's cost flat however long it runs (the Python client re-sorts
every document it holds on each change, and the emulator even re-sends them all), and new chunks
always enter it. Each chunk is delivered once, in id order, and only chunks after the cursor the
follower started from. Should more chunks arrive between two snapshots than the window holds (a
stalled client, a burst), the ones that slipped past are read with one ordinary query (the gap fill).

A chunk that another instance commits late by more than the window's worth of newer chunks would be
missed; at the cadence writers flush (100 ms per instance) that is seconds of lateness. Lines stored
twice are dropped by insertId (SeenIds).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from devgem.logs.chunks import Doc, SeenIds, filter_lines, logs_ref

log = logging.getLogger(__name__)

OVERLAP = timedelta(seconds=5)
WINDOW = 16
SUPERVISE_SECONDS = 1.0


def floor_before(chunk_id: str, overlap: timedelta = OVERLAP) -> str:
    """A chunk id `overlap` earlier than `chunk_id` (ids start with 13 digits of milliseconds)."""
    head = chunk_id[:13]
    if len(head) != 13 or not head.isdigit():
        return chunk_id
    return f"{max(0, int(head) - int(overlap.total_seconds() * 1000)):013d}"


class Reorder:
    """Lines in time order for a person to read: Pub/Sub does not keep order, so consecutive lines may
    land in chunks committed a moment apart. Each line is held up to `delay` seconds, and released in
    (time, insertId) order."""

    def __init__(self, emit: Callable[[list[Doc]], None], delay: float = 0.3) -> None:
        self._emit = emit
        self._delay = delay
        self._heap: list[tuple[str, str, float, int, Doc]] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-reorder", daemon=True)
        self._thread.start()

    def add(self, lines: list[Doc]) -> None:
        now = time.monotonic()
        with self._cond:
            for line in lines:
                self._count += 1
                heapq.heappush(
                    self._heap, (str(line.get("at", "")), str(line.get("insertId", "")), now, self._count, line)
                )
            self._cond.notify()

    def close(self) -> None:
        """Release everything held, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][2] > time.monotonic() - self._delay):
                    wait = self._heap[0][2] + self._delay - time.monotonic() if self._heap else None
                    self._cond.wait(timeout=wait)
                ready = []
                while self._heap and (self._closed or self._heap[0][2] <= time.monotonic() - self._delay):
                    ready.append(heapq.heappop(self._heap)[4])
                closed = self._closed
            if ready:
                self._emit(ready)
            if closed:
                return


class _IdOrderedQuery(firestore.Query):
    """The client's listener re-sorts the documents it holds on every change with the query's
    `_comparator`, which builds a protobuf per comparison and does not know an explicit order on
    the document id. There is no public way to give a listener its order, so this one private
    override (checked with google-cloud-firestore 2.34.1, where Watch.for_query passes
    `query._comparator` to the watch) does it. These queries read one collection ordered by document
    id only, so comparing the ids (public `DocumentReference.id`) gives the same order."""

    def _comparator(self, doc1: Any, doc2: Any) -> int:
        a: str = doc1.reference.id
        b: str = doc2.reference.id
        return (a > b) - (a < b)


class LogFollower:
    def __init__(
        self,
        db: firestore.Client,
        tenant_id: str,
        app_id: str,
        on_lines: Callable[[list[Doc]], None],
        *,
        after: str = "0",
        deployment_id: str | None = None,
        severity: str | None = None,
        seen: SeenIds | None = None,
        on_chunk: Callable[[str, Doc], None] | None = None,
        window: int = WINDOW,
    ) -> None:
        self._db = db
        self._tenant_id = tenant_id
        self._app_id = app_id
        self._deployment_id = deployment_id
        self._severity = severity
        self._on_lines = on_lines
        self._on_chunk = on_chunk
        self._seen = seen or SeenIds()
        self._window = window
        self._floor = after  # only chunks after this id
        self._cursor = after  # the newest chunk id delivered (or the floor)
        self._delivered: set[str] = set()
        self._lock = threading.RLock()
        self._watch: Any = None
        self._stopped = threading.Event()
        self.errors: list[BaseException] = []
        self.gap_fills = 0

    def start(self) -> LogFollower:
        self._subscribe()
        threading.Thread(target=self._supervise, name="log-follower-supervisor", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.unsubscribe()

    def __enter__(self) -> LogFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _base(self) -> firestore.Query:
        ref = logs_ref(self._db, self._app_id)
        query = _IdOrderedQuery(ref).where(filter=firestore.FieldFilter("tenantId", "==", self._tenant_id))
        if self._deployment_id:
            query = query.where(filter=firestore.FieldFilter("deploymentId", "==", self._deployment_id))
        return query

    def _subscribe(self) -> None:
        query = self._base().order_by(FieldPath.document_id(), direction=firestore.Query.DESCENDING)
        watch = query.limit(self._window).on_snapshot(self._on_snapshot)
        with self._lock:
            if not self._stopped.is_set():
                self._watch = watch
                return
        watch.unsubscribe()

    def _supervise(self) -> None:
        """A listen stream the server ends (the emulator sometimes cancels one) is not retried by the
        client library: listen again; the gap fill catches up from the cursor."""
        while not self._stopped.wait(SUPERVISE_SECONDS):
            with self._lock:
                watch = self._watch
            if watch is not None and not watch.is_active and not self._stopped.is_set():
                log.warning("log follower: the listener ended; listening again")
                self._subscribe()

    def _on_snapshot(self, snapshots: list[Any], changes: list[Any], read_time: Any) -> None:
        try:
            self._deliver(snapshots, changes)
        except Exception as exc:  # an exception here would silently end the listener
            log.exception("log follower: could not deliver a snapshot")
            self.errors.append(exc)

    def _deliver(self, snapshots: list[Any], changes: list[Any]) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            added = {c.document.id: c.document for c in changes if c.type.name == "ADDED"}
            fresh = sorted(i for i in added if i > self._floor and i not in self._delivered)
            if not fresh:
                return
            window_ids = [s.id for s in snapshots]
            oldest = min(window_ids)
            if len(window_ids) >= self._window and oldest > self._cursor and oldest not in self._delivered:
                self._fill_gap(oldest)
            for chunk_id in fresh:
                self._deliver_chunk(chunk_id, added[chunk_id].to_dict() or {})
            self._delivered = {i for i in self._delivered if i >= oldest}

    def _fill_gap(self, before: str) -> None:
        """Chunks that entered and left the window between two snapshots: read them once."""
        self.gap_fills += 1
        ref = logs_ref(self._db, self._app_id)
        after = self._cursor
        while True:
            query = (
                self._base()
                .where(filter=firestore.FieldFilter(FieldPath.document_id(), ">", ref.document(after)))
                .where(filter=firestore.FieldFilter(FieldPath.document_id(), "<", ref.document(before)))
                .order_by(FieldPath.document_id())
                .limit(200)
            )
            page = list(query.stream())
            for snap in page:
                if snap.id not in self._delivered:
                    self._deliver_chunk(snap.id, snap.to_dict() or {})
            if len(page) < 200:
                return
            after = page[-1].id

    def _deliver_chunk(self, chunk_id: str, chunk: Doc) -> None:
        self._delivered.add(chunk_id)
        if chunk_id > self._cursor:
            self._cursor = chunk_id
        if self._on_chunk is not None:
            self._on_chunk(chunk_id, chunk)
        lines = filter_lines([chunk], self._seen, self._severity)
        if lines:
            self._on_lines(lines)
