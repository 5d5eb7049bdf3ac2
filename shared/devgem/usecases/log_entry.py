"""log-entry: one LogEntry from the Log Router sink becomes a line in its app's log chunks.

The invocation returns (Pub/Sub's ack) only once the line is durably in Firestore: the instance's
LogWriter commits the lines of all concurrent invocations together (see log_writer). A duplicate by
insertId is acked without a write. A bad entry (not JSON, no resource, over 256 KiB, a service or
build Devgem does not manage) is counted and acked, never retried; a transient failure (Firestore or
the Cloud Build API unavailable) answers 500 and Pub/Sub redelivers.

This handler does not go through event_handler.run, which logs every outcome and stores every bad
message as its own document: right for a few build events, wrong at thousands of log lines a second
(and logging per line here would feed the log stream it consumes). It logs nothing per line, and
never a line's text: an app's output may hold its secrets.
"""

from __future__ import annotations

from functools import lru_cache

from cloudevents.http import CloudEvent

from devgem import events
from devgem.errors import InvalidEvent
from devgem.firestore_client import client
from devgem.log_entries import RejectedLogEntry, parse
from devgem.log_routing import LineRouter
from devgem.log_writer import LogWriter


@lru_cache(maxsize=1)
def writer() -> LogWriter:
    return LogWriter(client)


@lru_cache(maxsize=1)
def router() -> LineRouter:
    return LineRouter()


def handle_event(event: CloudEvent) -> str:
    w = writer()
    arrival = w.arrive()
    try:
        try:
            message = events.message_from_cloudevent(event.data)
        except InvalidEvent:
            w.reject("not-a-push", repr(event.data)[:10_000].encode())
            return "rejected: not-a-push"
        try:
            line = parse(message.data)
            target = router().route(line)
        except RejectedLogEntry as exc:
            w.reject(exc.reason, message.data)
            return f"rejected: {exc.reason}"
        return w.write(target, line, arrival)
    finally:
        arrival.leave()
