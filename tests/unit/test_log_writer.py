"""The group commit, with the Firestore commit replaced by a recorder: when it commits, what it writes,
and that every line's future settles only after its line's commit (or fails with it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from devgem.domain.errors import RetryLater
from devgem.logs.chunks import MAX_CHUNK_BYTES, ChunkIds, Target, chunk_docs
from devgem.logs.entries import RUN, LogLine
from devgem.logs.writer import LogWriter

DB = firestore.Client(project="unit", credentials=AnonymousCredentials())
APP = Target("tenant-a", "app000000001", "0123456789ab")
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def line(n: int, text: str = "hello") -> LogLine:
    return LogLine(f"i-{n}", AT + timedelta(milliseconds=n), "INFO", f"{text} {n}", RUN, "stdout")


class Recorder:
    """Stands in for Firestore's commit; `hold` keeps commits waiting until `release`."""

    def __init__(self, fail: int = 0) -> None:
        self.commits: list[list[tuple[Any, dict[str, Any]]]] = []
        self.fail = fail
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __call__(self, writes: list[tuple[Any, dict[str, Any]]]) -> None:
        self.entered.set()
        assert self.gate.wait(timeout=5), "a test held a commit and never released it"
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("Firestore is down")
            self.commits.append(writes)

    def lines(self) -> list[str]:
        return [entry["insertId"] for c in self.commits for _, doc in c for entry in json.loads(doc["lines"])]


class ManualClock:
    """The writer's monotonic clock, moved by the test: the cadence then depends on no real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def writers() -> Iterator[list[LogWriter]]:
    """Writers a test creates; each is closed after it, so no flusher thread outlives its test."""
    before = set(threading.enumerate())
    made: list[LogWriter] = []
    yield made
    for w in made:
        w.close()
    assert not _writer_threads() - before


def _writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(("log-writer", "log-commit")) and t.is_alive()}


@pytest.fixture()
def writer(recorder: Recorder, writers: list[LogWriter]) -> LogWriter:
    writers.append(LogWriter(lambda: DB, commit=recorder, max_wait=0.1, counter_interval=3600))
    return writers[-1]


def written(writer: LogWriter, target: Target, n: int) -> str:
    return writer.submit(target, line(n)).result(timeout=5)


def test_a_lone_line_is_committed_at_once_and_only_then_settled(recorder: Recorder, writers: list[LogWriter]) -> None:
    # The cadence is an hour: only the trickle rule (nobody else could join) can commit the line.
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=3600, counter_interval=3600)
    writers.append(writer)
    recorder.hold()
    future = writer.submit(APP, line(1))
    assert not future.done()  # submitting never waits for Firestore
    assert recorder.entered.wait(timeout=5)  # the commit started without waiting for the cadence
    assert not future.done()  # and the line is not settled before its commit returns
    recorder.release()
    assert future.result(timeout=5) == "written"
    assert recorder.lines() == ["i-1"]
    (ref, doc), *_ = recorder.commits[0]
    assert ref.path.startswith("apps/app000000001/logs/")
    assert doc["tenantId"] == "tenant-a" and doc["deploymentId"] == "0123456789ab"
    assert doc["expireAt"] > doc["writtenAt"]


def test_a_batch_shares_one_commit(writer: LogWriter, recorder: Recorder) -> None:
    arrival = writer.arrive()  # a pulled batch is being routed
    futures = [writer.submit(APP, line(i)) for i in range(50)]
    arrival.leave()
    assert [f.result(timeout=5) for f in futures] == ["written"] * 50
    assert len(recorder.commits) == 1 and len(recorder.commits[0]) == 1  # one chunk for all 50
    assert sorted(recorder.lines()) == sorted(f"i-{i}" for i in range(50))


def test_a_busy_writer_waits_for_the_cadence_to_batch_more(recorder: Recorder, writers: list[LogWriter]) -> None:
    clock = ManualClock()
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=0.1, counter_interval=3600, monotonic=clock)
    writers.append(writer)
    late = writer.arrive()  # another batch is still being routed: waiting may take its lines too
    first = writer.submit(APP, line(1))
    clock.now += 0.03  # less than the cadence
    second = writer.submit(APP, line(2))
    assert not first.done() and not recorder.entered.is_set()
    late.leave()
    clock.now += 0.01  # quiet for longer than `quiet`, still within the cadence: nobody else can join
    assert first.result(timeout=5) == second.result(timeout=5) == "written"
    assert len(recorder.commits) == 1  # both in one commit, before the cadence was due


def test_the_cadence_bounds_the_wait(recorder: Recorder, writers: list[LogWriter]) -> None:
    clock = ManualClock()
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=0.1, counter_interval=3600, monotonic=clock)
    writers.append(writer)
    stuck = writer.arrive()  # a batch that never hands over its lines (a slow lookup, say)
    futures = [writer.submit(APP, line(i)) for i in range(30)]  # more than a trickle
    clock.now += 0.05
    assert not recorder.entered.is_set()
    clock.now += 0.5  # the oldest line has waited longer than max_wait
    assert [f.result(timeout=5) for f in futures] == ["written"] * 30
    assert len(recorder.commits) == 1 and stuck.active  # one commit, while the stuck batch still is
    stuck.leave()


def test_under_load_each_cadence_tick_is_one_commit(recorder: Recorder, writers: list[LogWriter]) -> None:
    clock = ManualClock()
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=0.1, counter_interval=3600, monotonic=clock)
    writers.append(writer)
    busy = writer.arrive()  # batches keep arriving
    for tick in range(5):
        futures = [writer.submit(APP, line(tick * 100 + i)) for i in range(100)]
        clock.now += 0.2  # past the cadence
        assert [f.result(timeout=5) for f in futures] == ["written"] * 100
        assert writer.stats.commits == tick + 1
    busy.leave()
    assert writer.stats.lines == 500 and writer.stats.chunks == 5


def test_duplicates_by_insert_id_settle_without_a_write(writer: LogWriter, recorder: Recorder) -> None:
    assert written(writer, APP, 1) == "written"
    assert written(writer, APP, 1) == "duplicate"
    recorder.hold()
    both = [writer.submit(APP, line(2)), writer.submit(APP, line(2))]
    recorder.release()
    assert [f.result(timeout=2) for f in both] == ["written", "duplicate"]  # the second shares the commit
    assert recorder.lines() == ["i-1", "i-2"]
    assert writer.stats.duplicates == 2


def test_a_failed_commit_fails_its_futures_so_pubsub_redelivers(writer: LogWriter, recorder: Recorder) -> None:
    recorder.fail = 1
    arrival = writer.arrive()
    futures = [writer.submit(APP, line(1)), writer.submit(APP, line(1))]
    arrival.leave()
    for f in futures:
        with pytest.raises(RetryLater):
            f.result(timeout=2)
    assert written(writer, APP, 1) == "written"  # the redelivery is not taken for a duplicate
    assert recorder.lines() == ["i-1"]


def test_close_commits_what_is_pending_and_stops_the_threads(recorder: Recorder) -> None:
    before = _writer_threads()
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=3600, counter_interval=3600)
    stuck = writer.arrive()  # nothing would commit these lines before the hour-long cadence
    futures = [writer.submit(APP, line(i)) for i in range(30)]
    writer.close()
    assert [f.result(timeout=0) for f in futures] == ["written"] * 30
    assert not _writer_threads() - before
    with pytest.raises(RetryLater):
        writer.submit(APP, line(99)).result(timeout=0)  # a closed writer takes nothing more
    writer.close()  # idempotent
    stuck.leave()


def test_lines_of_several_apps_go_to_their_own_chunks(writer: LogWriter, recorder: Recorder) -> None:
    other = Target("tenant-b", "app000000002", None)
    arrival = writer.arrive()
    futures = [writer.submit(APP, line(1)), writer.submit(other, line(2))]
    arrival.leave()
    for f in futures:
        f.result(timeout=2)
    docs = [doc for c in recorder.commits for _, doc in c]
    assert sorted((d["appId"], d["tenantId"], d["count"]) for d in docs) == [
        ("app000000001", "tenant-a", 1),
        ("app000000002", "tenant-b", 1),
    ]


def test_chunks_split_below_the_document_limit_and_ids_sort_in_write_order() -> None:
    ids = ChunkIds("w1")
    big = [line(i, "x" * 100_000) for i in range(20)]
    chunks = chunk_docs(APP, big, AT, ids)
    assert len(chunks) > 1
    assert all(len(doc["lines"].encode()) < MAX_CHUNK_BYTES + 200_000 for _, doc in chunks)
    assert sum(doc["count"] for _, doc in chunks) == 20
    chunk_ids = [chunk_id for chunk_id, _ in chunks] + [ids.next() for _ in range(100)]
    assert chunk_ids == sorted(chunk_ids) and len(set(chunk_ids)) == len(chunk_ids)
    lines = [entry for _, doc in chunks for entry in json.loads(doc["lines"])]
    assert [entry["insertId"] for entry in lines] == [f"i-{i}" for i in range(20)]
    assert lines[0]["at"] == "2026-11-26T10:00:00.000000Z"


def test_a_redelivered_line_another_instance_stored_is_looked_up_and_not_written_again(
    recorder: Recorder, writers: list[LogWriter]
) -> None:
    """A worker killed between its commit and its ack: the line comes back to an instance that never
    saw it, which finds it in the app's chunks (written since the message was published) instead."""
    asked: list[tuple[str, str]] = []

    def lookup(app_id: str, floor: str) -> set[str]:
        asked.append((app_id, floor))
        return {"i-1"}  # the dead instance stored i-1, not i-2

    writer = LogWriter(lambda: DB, commit=recorder, lookup=lookup, max_wait=0.1, counter_interval=3600)
    writers.append(writer)
    published = AT + timedelta(seconds=30)
    arrival = writer.arrive()
    futures = [writer.submit(APP, line(n), check_since=published) for n in (1, 2)] + [writer.submit(APP, line(3))]
    arrival.leave()
    assert [f.result(timeout=5) for f in futures] == ["duplicate", "written", "written"]
    assert recorder.lines() == ["i-2", "i-3"]
    assert asked == [(APP.app_id, "1795687225000")]  # one query, from the publish time less the skew
    assert written(writer, APP, 1) == "duplicate"  # first deliveries are not looked up
    assert writer.stats.checked == 2


def test_a_redelivered_line_this_instance_stored_needs_no_lookup(recorder: Recorder, writers: list[LogWriter]) -> None:
    def lookup(app_id: str, floor: str) -> set[str]:
        raise AssertionError("looked up a line this instance committed itself")

    writer = LogWriter(lambda: DB, commit=recorder, lookup=lookup, max_wait=0.1, counter_interval=3600)
    writers.append(writer)
    assert written(writer, APP, 1) == "written"
    assert writer.submit(APP, line(1), check_since=AT).result(timeout=5) == "duplicate"


def test_a_failed_lookup_fails_its_lines_rather_than_risk_a_second_copy(
    recorder: Recorder, writers: list[LogWriter]
) -> None:
    def lookup(app_id: str, floor: str) -> set[str]:
        raise RuntimeError("Firestore is down")

    writer = LogWriter(lambda: DB, commit=recorder, lookup=lookup, max_wait=0.1, counter_interval=3600)
    writers.append(writer)
    arrival = writer.arrive()
    checked, fresh = writer.submit(APP, line(1), check_since=AT), writer.submit(APP, line(2))
    arrival.leave()
    with pytest.raises(RetryLater):
        checked.result(timeout=5)
    assert fresh.result(timeout=5) == "written"
    assert recorder.lines() == ["i-2"]
