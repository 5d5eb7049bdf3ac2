"""Bad log entries, counted in memory and written at most once an interval per instance.

The counts go to `logRejections/{minute}-{writer}` (one document per instance and minute: never hot);
the first entry of each reason in a minute is also kept in rejectedEvents for a human.
"""

from __future__ import annotations

from datetime import datetime

from google.cloud import firestore

from devgem.adapters import store
from devgem.adapters.collections import LOG_REJECTIONS

REJECTIONS = LOG_REJECTIONS
SAMPLE_BYTES = 10_000

Counts = dict[str, int]
Samples = dict[str, str]  # reason -> a raw entry


def minute_of(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M")


class RejectionCounts:
    """Not thread-safe: the writer calls it under its lock."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._counts: Counts = {}
        self._samples: Samples = {}
        self._sampled: set[tuple[str, str]] = set()  # (minute, reason) already sampled
        self._last_write = 0.0

    def count(self, reason: str, raw: bytes, minute: str) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        if (minute, reason) not in self._sampled:
            self._sampled.add((minute, reason))
            self._samples[reason] = raw[:SAMPLE_BYTES].decode("utf-8", errors="replace")

    def due_in(self, now: float) -> float | None:
        """How long until the counts should be written (0: now; None: nothing to write)."""
        if not self._counts:
            return None
        return max(0.0, self.interval - (now - self._last_write))

    def take(self, now: float, minute: str) -> tuple[Counts, Samples] | None:
        if now - self._last_write < self.interval or not self._counts:
            return None
        counts, self._counts = self._counts, {}
        samples, self._samples = self._samples, {}
        self._sampled = {k for k in self._sampled if k[0] >= minute}
        self._last_write = now
        return counts, samples

    def put_back(self, counts: Counts) -> None:
        for reason, n in counts.items():
            self._counts[reason] = self._counts.get(reason, 0) + n


def write_rejections(db: firestore.Client, writer: str, at: datetime, counts: Counts, samples: Samples) -> int:
    """Add the counts to this instance's document of the minute; the number of writes it made."""
    db.collection(REJECTIONS).document(f"{minute_of(at)}-{writer}").set(
        {
            "tenantId": None,
            "minute": at.replace(second=0, microsecond=0),
            "writer": writer,
            "counts": {reason: firestore.Increment(n) for reason, n in counts.items()},
            "expireAt": at + store.REJECTED_RETENTION,
        },
        merge=True,
    )
    writes = 1
    for reason, raw in samples.items():
        store.record_rejected_event(db, "log_entry", f"{reason} (first of the minute; see {REJECTIONS})", raw)
        writes += 1
    return writes
