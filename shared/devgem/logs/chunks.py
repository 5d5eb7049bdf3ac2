"""Log chunk documents: apps/{app}/logs/{chunk}, many lines each, written once and never rewritten.

Firestore sustains about one write per second per document and 1 MiB per document, so lines are
stored in chunks: each flush of the log writer creates new documents (one per app and deployment it
has lines for), so no document is ever hot. Chunk ids start with the flush time in milliseconds, so
they sort in the order they were written and a reader can resume after the last id it saw. `lines`
is exempt from indexing (terraform/modules/firestore) and `expireAt` carries a TTL policy.

Every chunk carries tenantId (client queries filter on it, as the security rules demand) and
deploymentId (None for a line Devgem cannot tie to a deployment).

`lines` is one JSON text: an array of {"at", "severity", "text", "insertId", "source", "stream"[, "step"]}
in time order, `at` in RFC 3339 UTC with microseconds. One string per chunk rather than a map per
line: a reader (the CLI, the web app's JSON.parse, a listener) decodes one value instead of six per
line, which is what lets a Firestore listener keep up with thousands of lines a second.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from devgem.adapters.collections import APPS, LOGS
from devgem.logs.entries import SEVERITY_RANK, LogLine

RETENTION = timedelta(days=30)  # a TTL policy on expireAt deletes chunks after this
MAX_CHUNK_BYTES = 700 * 1024  # below Firestore's 1 MiB document limit, with room for field names
MAX_CHUNK_LINES = 5000

Doc = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where a line belongs."""

    tenant_id: str
    app_id: str
    deployment_id: str | None


def logs_ref(db: firestore.Client, app_id: str) -> firestore.CollectionReference:
    logs: firestore.CollectionReference = db.collection(APPS).document(app_id).collection(LOGS)
    return logs


def id_floor(at: datetime) -> str:
    """The smallest chunk id a chunk flushed at or after `at` can have."""
    return f"{int(at.timestamp() * 1000):013d}"


class ChunkIds:
    """Chunk ids of one writer: <13-digit ms>-<writer>-<n>, strictly increasing within the writer."""

    def __init__(self, writer: str | None = None) -> None:
        self.writer = writer or secrets.token_hex(4)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = itertools.count()

    def next(self) -> str:
        with self._lock:
            ms = max(int(time.time() * 1000), self._last_ms)
            self._last_ms = ms
            return f"{ms:013d}-{self.writer}-{next(self._counter):08d}"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line_doc(line: LogLine) -> Doc:
    doc: Doc = {
        "at": rfc3339(line.at),
        "severity": line.severity,
        "text": line.text,
        "insertId": line.insert_id,
        "source": line.source,
        "stream": line.stream,
    }
    if line.step:
        doc["step"] = line.step
    return doc


def chunk_docs(target: Target, lines: list[LogLine], now: datetime, ids: ChunkIds) -> list[tuple[str, Doc]]:
    """The chunk documents for one target's lines (in time order), split to stay under the limits."""
    ordered = sorted(lines, key=lambda line: (line.at, line.insert_id))
    out: list[tuple[str, Doc]] = []
    part: list[LogLine] = []
    size = 0
    for line in ordered:
        if part and (size + line.size() > MAX_CHUNK_BYTES or len(part) >= MAX_CHUNK_LINES):
            out.append((ids.next(), _chunk(target, part, now, ids.writer)))
            part, size = [], 0
        part.append(line)
        size += line.size()
    if part:
        out.append((ids.next(), _chunk(target, part, now, ids.writer)))
    return out


def _chunk(target: Target, lines: list[LogLine], now: datetime, writer: str) -> Doc:
    return {
        "tenantId": target.tenant_id,
        "appId": target.app_id,
        "deploymentId": target.deployment_id,
        "sources": sorted({line.source for line in lines}),
        "firstAt": lines[0].at,
        "lastAt": lines[-1].at,
        "count": len(lines),
        "writtenAt": now,
        "writer": writer,
        "expireAt": now + RETENTION,
        "lines": json.dumps([line_doc(line) for line in lines], ensure_ascii=False, separators=(",", ":")),
    }


# --- reading ---------------------------------------------------------------------------------


def lines_of(chunk: Doc) -> list[Doc]:
    """The lines of a chunk document, each with the chunk's deploymentId."""
    deployment = chunk.get("deploymentId")
    lines = chunk.get("lines")
    if isinstance(lines, str):
        try:
            lines = json.loads(lines)
        except ValueError:
            return []
    if not isinstance(lines, list):
        return []
    return [{**line, "deploymentId": deployment} for line in lines if isinstance(line, dict)]


def at_least(severity: str, minimum: str | None) -> bool:
    if not minimum:
        return True
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(minimum, 0)


class SeenIds:
    """insertIds already shown, so a line stored twice (a redelivery that another instance wrote
    again) reaches a reader once. Bounded: the oldest ids are forgotten first."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._ids: dict[str, None] = {}

    def first_time(self, insert_id: str) -> bool:
        if insert_id in self._ids:
            return False
        self._ids[insert_id] = None
        if len(self._ids) > self._capacity:
            for old in itertools.islice(list(self._ids), self._capacity // 10):
                del self._ids[old]
        return True


def filter_lines(
    chunks: Iterable[Doc], seen: SeenIds, severity: str | None = None, since: datetime | None = None
) -> list[Doc]:
    """Lines of chunks (in chunk order, time order within a chunk) that pass the filters, once each."""
    out = []
    floor = rfc3339(since) if since is not None else None
    for chunk in chunks:
        for line in lines_of(chunk):
            if not seen.first_time(str(line.get("insertId", ""))):
                continue
            if floor is not None and str(line.get("at", "")) < floor:
                continue
            if at_least(str(line.get("severity", "DEFAULT")), severity):
                out.append(line)
    return out
