"""Reading an app's log history from its chunks: the newest lines, or the lines after a cursor.

The api serves this to the web app and the CLI; build_finished uses it for a failed build's tail.
Every query is scoped to one tenant (tenantId ==), as the security rules require of a client query.
A cursor is a chunk id: a reader that follows with a listener starts just before it (see devgem.logs.follow).

A line is shown in the first (oldest) chunk that holds its insertId, and only there. Storage may
hold a second copy (a redelivery another instance wrote, see devgem.logs.writer), and a page that
reads only the later copy cannot know the client saw the first on an earlier page. So each page
looks back for the lines it returns: a copy of a line can only be in a chunk written after the
line's time (less CLOCK_SKEW), so the chunks from the oldest returned line's time up to the page's
start are read, and a line one of them holds is left out. This is what makes paging with `after=`
(and `before=`) return every line once, not only once per response. It costs the chunks of that
span (about CLOCK_SKEW's worth when lines flow normally), at most MAX_LOOKBACK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from devgem.logs.chunks import Doc, SeenIds, filter_lines, id_floor, lines_of, logs_ref

PAGE = 50  # chunks per query page
MAX_SCAN = 400  # chunks one request reads at most; beyond that the answer says it is truncated
CLOCK_SKEW = timedelta(seconds=5)  # a line's time may be a little ahead of its chunk's flush time
MAX_LOOKBACK = 1000  # chunks before a page read at most to find earlier copies of its lines


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
    if history.oldest is not None:  # a line an older page holds too is shown there, not here
        shown = earlier_copies(db, tenant_id, app_id, lines, history.oldest, False, deployment_id)
        lines = [line for line in lines if str(line.get("insertId")) not in shown]
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
    shown = earlier_copies(db, tenant_id, app_id, history.lines, cursor, True, deployment_id)
    history.lines = in_time_order([line for line in history.lines if str(line.get("insertId")) not in shown])
    return history


def earlier_copies(
    db: firestore.Client,
    tenant_id: str,
    app_id: str,
    lines: list[Doc],
    below: str,
    inclusive: bool,
    deployment_id: str | None = None,
) -> set[str]:
    """The insertIds of `lines` that a chunk before `below` (or at it, `inclusive`) also holds: a
    page that starts there must leave them out, as they belong to an earlier page."""
    wanted = {str(line.get("insertId")) for line in lines}
    times = [_parse_at(line.get("at")) for line in lines]
    known = [at for at in times if at is not None]
    if not wanted or not known:
        return set()
    floor = id_floor(min(known) - CLOCK_SKEW)
    if floor > below:  # every copy of these lines was written after the page's start
        return set()
    query = _bounded(_query(db, tenant_id, app_id, deployment_id, descending=True), db, app_id, ">=", floor)
    query = _bounded(query, db, app_id, "<=" if inclusive else "<", below)
    found: set[str] = set()
    for snap in query.limit(MAX_LOOKBACK).stream():
        found.update(i for i in (str(line.get("insertId")) for line in lines_of(snap.to_dict() or {})) if i in wanted)
    return found


def _parse_at(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def in_time_order(lines: list[Doc]) -> list[Doc]:
    """Pub/Sub does not keep order, so neighbouring lines may sit in different chunks."""
    return sorted(lines, key=lambda line: (str(line.get("at", "")), str(line.get("insertId", ""))))
