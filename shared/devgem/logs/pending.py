"""The lines one flush commits together, the futures waiting on them, and how they are settled."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devgem.domain.errors import RetryLater
from devgem.logs.chunks import Target
from devgem.logs.entries import LogLine

LineKey = tuple[str, str]  # (app id, insertId): what duplicates are recognised by

MAX_COMMIT_WRITES = 450  # Firestore allows 500 writes in a batch
MAX_COMMIT_BYTES = 6 * 1024 * 1024  # a commit request is at most 10 MiB


@dataclass
class PendingFlush:
    """Lines that are committed together, and the futures waiting on them."""

    lines: dict[LineKey, tuple[Target, LogLine]] = field(default_factory=dict)
    waiting: dict[LineKey, list[Future[str]]] = field(default_factory=dict)
    bytes: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    failed: dict[LineKey, BaseException] = field(default_factory=dict)
    # Redelivered lines to look for in storage before writing, each with the earliest time a chunk
    # holding it can have been written (its message's publish time).
    check: dict[LineKey, datetime] = field(default_factory=dict)
    stored: set[LineKey] = field(default_factory=set)  # checked lines found already stored

    def add(
        self,
        key: LineKey,
        target: Target,
        line: LogLine,
        future: Future[str],
        now: float,
        check_since: datetime | None = None,
    ) -> None:
        self.last_at = now
        if not self.lines:
            self.first_at = now
        self.lines[key] = (target, line)
        self.waiting[key] = [future]
        self.bytes += line.size()
        if check_since is not None:
            self.check[key] = check_since

    def fail_all(self, error: BaseException) -> None:
        self.failed.update({key: error for key in self.lines if key not in self.failed})


def settle(flush: PendingFlush) -> None:
    """The first future of a line learns whether it was written; later ones learn it was a duplicate."""
    for key, futures in flush.waiting.items():
        error = flush.failed.get(key)
        for i, future in enumerate(futures):
            if error is not None:
                future.set_exception(RetryLater(f"the log chunk could not be written: {error}"))
            else:
                future.set_result("written" if i == 0 and key not in flush.stored else "duplicate")


def commit_batches(writes: list[Any]) -> list[list[Any]]:
    """Chunk writes `(target, ref, doc)` grouped into commits that stay under Firestore's limits."""
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
