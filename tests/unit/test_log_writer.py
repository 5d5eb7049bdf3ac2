"""The group commit, with the Firestore commit replaced by a recorder: when it commits, what it writes,
and that every invocation returns only after its line's commit (or fails with it)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from devgem.errors import RetryLater
from devgem.log_chunks import MAX_CHUNK_BYTES, ChunkIds, Target, chunk_docs
from devgem.log_entries import RUN, LogLine
from devgem.log_writer import LogWriter

DB = firestore.Client(project="unit", credentials=AnonymousCredentials())
APP = Target("tenant-a", "app000000001", "0123456789ab")
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def line(n: int, text: str = "hello") -> LogLine:
    return LogLine(f"i-{n}", AT + timedelta(milliseconds=n), "INFO", f"{text} {n}", RUN, "stdout")


class Recorder:
    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.commits: list[list[tuple[Any, dict[str, Any]]]] = []
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, writes: list[tuple[Any, dict[str, Any]]]) -> None:
        time.sleep(self.delay)
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("Firestore is down")
            self.commits.append(writes)

    def lines(self) -> list[str]:
        return [entry["insertId"] for c in self.commits for _, doc in c for entry in json.loads(doc["lines"])]


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def writer(recorder: Recorder) -> Iterator[LogWriter]:
    yield LogWriter(lambda: DB, commit=recorder, max_wait=0.1, counter_interval=3600)


def test_a_lone_line_is_committed_at_once_and_only_then_acknowledged(recorder: Recorder) -> None:
    writer = LogWriter(lambda: DB, commit=recorder, max_wait=2.0, counter_interval=3600)
    recorder.delay = 0.05
    started = time.monotonic()
    assert writer.write(APP, line(1)) == "written"
    elapsed = time.monotonic() - started
    assert 0.05 <= elapsed < 1.0  # the commit, and no cadence wait: nobody else could have joined
    assert recorder.lines() == ["i-1"]
    (ref, doc), *_ = recorder.commits[0]
    assert ref.path.startswith("apps/app000000001/logs/")
    assert doc["tenantId"] == "tenant-a" and doc["deploymentId"] == "0123456789ab"
    assert doc["expireAt"] > doc["writtenAt"]


def test_concurrent_invocations_share_one_commit(writer: LogWriter, recorder: Recorder) -> None:
    arrivals = [writer.arrive() for _ in range(50)]  # 50 pushes are being parsed at once
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(writer.write(APP, line(i), arrivals[i]))) for i in range(50)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert results == ["written"] * 50
    assert len(recorder.commits) == 1 and len(recorder.commits[0]) == 1  # one chunk for all 50
    assert sorted(recorder.lines()) == sorted(f"i-{i}" for i in range(50))


def test_a_busy_instance_waits_for_the_cadence_to_batch_more(writer: LogWriter, recorder: Recorder) -> None:
    late = writer.arrive()  # someone is still parsing: waiting may batch their line too
    started = time.monotonic()
    first = threading.Thread(target=writer.write, args=(APP, line(1)))
    first.start()
    time.sleep(0.03)
    writer.write(APP, line(2), late)
    first.join(2)
    assert len(recorder.commits) == 1  # both in one commit
    assert time.monotonic() - started < 0.2


def test_the_cadence_bounds_the_wait(writer: LogWriter, recorder: Recorder) -> None:
    stuck = writer.arrive()  # an invocation that never hands over a line (a slow lookup, say)
    started = time.monotonic()
    writer.write(APP, line(1))
    assert 0.09 <= time.monotonic() - started < 1.0
    stuck.leave()


def test_duplicates_by_insert_id_are_acknowledged_without_a_write(writer: LogWriter, recorder: Recorder) -> None:
    assert writer.write(APP, line(1)) == "written"
    assert writer.write(APP, line(1)) == "duplicate"
    recorder.delay = 0.1
    both: list[str] = []
    threads = [threading.Thread(target=lambda: both.append(writer.write(APP, line(2)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2)
    assert sorted(both) == ["duplicate", "written"]  # the second waited for the first one's commit
    assert recorder.lines() == ["i-1", "i-2"]
    assert writer.stats.duplicates == 2


def test_a_failed_commit_fails_its_invocations_so_pubsub_redelivers(writer: LogWriter, recorder: Recorder) -> None:
    recorder.fail = 1
    with pytest.raises(RetryLater):
        writer.write(APP, line(1))
    assert writer.write(APP, line(1)) == "written"  # the redelivery is not taken for a duplicate
    assert recorder.lines() == ["i-1"]


def test_lines_of_several_apps_go_to_their_own_chunks(writer: LogWriter, recorder: Recorder) -> None:
    other = Target("tenant-b", "app000000002", None)
    arrivals = [writer.arrive(), writer.arrive()]
    threads = [
        threading.Thread(target=writer.write, args=(APP, line(1), arrivals[0])),
        threading.Thread(target=writer.write, args=(other, line(2), arrivals[1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2)
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
