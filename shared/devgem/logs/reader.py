"""Reading an app's log history from its chunks: the newest lines, or the lines after a cursor.

The api serves this to the web app and the CLI; build_finished uses it for a failed build's tail.
Every query is scoped to one tenant (tenantId ==), as the security rules require of a client query.
A cursor is a chunk id: a reader that follows with a listener starts just before it (see devgem.logs.follow).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from devgem.logs.chunks import Doc, SeenIds, filter_lines, id_floor, logs_ref

PAGE = 50  # chunks per query page
MAX_SCAN = 400  # chunks one request reads at most; beyond that the answer says it is truncated
CLOCK_SKEW = timedelta(seconds=5)  # a line's time may be a little ahead of its chunk's flush time


@dataclass
class History:
    lines: list[Doc] = field(default_factory=list)
    cursor: str | None = None  # the newest chunk id read: follow after it
    oldest: str | None = None  # the oldest chunk id read: page back with before=oldest
    truncated: bool = False


def _query(
    db: firestore.Client, tenant_id: str, app_id: str, deployment_id: str | None, descending: bool
) -> firestore.Query:
    ref = logs_ref(db, app_id)
    query = ref.where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
    if deployment_id:
        query = query.where(filter=firestore.FieldFilter("deploymentId", "==", deployment_id))
    direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
    return query.order_by(FieldPath.document_id(), direction=direction)


def _bounded(query: firestore.Query, db: firestore.Client, app_id: str, op: str, chunk_id: str) -> firestore.Query:
    ref = logs_ref(db, app_id).document(chunk_id)
    return query.where(filter=firestore.FieldFilter(FieldPath.document_id(), op, ref))


def chunks_newest_first(
    db: firestore.Client,
    tenant_id: str,
    app_id: str,
    deployment_id: str | None = None,
    since: datetime | None = None,
    before: str | None = None,
) -> Iterator[tuple[str, Doc]]:
    """Chunks from the newest back, page by page, down to `since` (minus clock skew)."""
    query = _query(db, tenant_id, app_id, deployment_id, descending=True)
    if since is not None:
        query = _bounded(query, db, app_id, ">=", id_floor(since - CLOCK_SKEW))
    last: str | None = before
    while True:
        page = _bounded(query, db, app_id, "<", last) if last else query
        snapshots = list(page.limit(PAGE).stream())
        for snap in snapshots:
            yield snap.id, snap.to_dict() or {}
        if len(snapshots) < PAGE:
            return
        last = snapshots[-1].id


def chunks_after(
    db: firestore.Client, tenant_id: str, app_id: str, after: str, deployment_id: str | None = None
) -> Iterator[tuple[str, Doc]]:
    query = _query(db, tenant_id, app_id, deployment_id, descending=False)
    last = after
    while True:
        snapshots = list(_bounded(query, db, app_id, ">", last).limit(PAGE).stream())
        for snap in snapshots:
            yield snap.id, snap.to_dict() or {}
        if len(snapshots) < PAGE:
            return
        last = snapshots[-1].id


def newest(
    db: firestore.Client,
    tenant_id: str,
    app_id: str,
    *,
    limit: int,
    deployment_id: str | None = None,
    since: datetime | None = None,
    severity: str | None = None,
    before: str | None = None,
    source: str | None = None,
) -> History:
    """The newest `limit` lines that pass the filters, oldest first."""
    history = History()
    pages: list[list[Doc]] = []  # newest chunk first
    found = 0
    for n, (chunk_id, chunk) in enumerate(chunks_newest_first(db, tenant_id, app_id, deployment_id, since, before)):
        if n >= MAX_SCAN or found >= limit:
            history.truncated = True
            break
        history.cursor = history.cursor or chunk_id
        history.oldest = chunk_id
        lines = [
            line
            for line in filter_lines([chunk], SeenIds(), severity, since)
            if not source or line.get("source") == source
        ]
        pages.append(lines)
        found += len(lines)
    seen = SeenIds()
    lines = [line for page in reversed(pages) for line in page if seen.first_time(str(line.get("insertId")))]
    history.lines = in_time_order(lines)[-limit:]
    return history


def after(
    db: firestore.Client,
    tenant_id: str,
    app_id: str,
    cursor: str,
    *,
    limit: int,
    deployment_id: str | None = None,
    severity: str | None = None,
) -> History:
    """Lines of the chunks written after `cursor`, oldest first, up to about `limit` lines."""
    history = History(cursor=cursor)
    seen = SeenIds()
    for n, (chunk_id, chunk) in enumerate(chunks_after(db, tenant_id, app_id, cursor, deployment_id)):
        if n >= MAX_SCAN or len(history.lines) >= limit:
            history.truncated = True
            break
        history.lines.extend(filter_lines([chunk], seen, severity))
        history.cursor = chunk_id
    history.lines = in_time_order(history.lines)
    return history


def in_time_order(lines: list[Doc]) -> list[Doc]:
    """Pub/Sub does not keep order, so neighbouring lines may sit in different chunks."""
    return sorted(lines, key=lambda line: (str(line.get("at", "")), str(line.get("insertId", ""))))
