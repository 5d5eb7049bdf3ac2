"""log-entry: each LogEntry from the Log Router sink becomes a line in its app's log chunks.

The log_entry worker pulls a batch of entries and hands it here; every entry gets a Future that the
worker waits on before acking, so a line is acked only once it is durably in Firestore (the
instance's LogWriter commits all pending lines together, see devgem.logs.writer). A duplicate by insertId
settles without a write. A bad entry (not JSON, no resource, over 256 KiB, a service or build Devgem
does not manage) is counted and settles at once: acked, never retried. A transient failure
(Firestore or the Cloud Build API unavailable) fails its future: the message is nacked and redelivered.

This does not go through pubsub_push.run, which logs every outcome and stores every bad message as
its own document: right for a few build events, wrong at thousands of log lines a second (and logging
per line here would feed the log stream it consumes). It logs nothing per line, and never a line's
text: an app's output may hold its secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from functools import lru_cache

from devgem.adapters.firestore_client import client
from devgem.logs.entries import RejectedLogEntry, parse
from devgem.logs.routing import LineRouter
from devgem.logs.writer import LogWriter
from devgem.usecases.ports import Delivered


@lru_cache(maxsize=1)
def writer() -> LogWriter:
    return LogWriter(client)


@lru_cache(maxsize=1)
def router() -> LineRouter:
    return LineRouter()


def accept_batch(messages: Sequence[Delivered]) -> list[Future[str]]:
    """One future per message, in order: "written", "duplicate" or "rejected: <reason>", or RetryLater.

    A redelivered message may carry a line that a dead instance committed but never acked, which
    this instance cannot remember: the writer checks the app's chunks for it before writing it
    (LogWriter.submit's `check_since`), so a crash does not store the line twice."""
    w = writer()
    arrival = w.arrive()
    try:
        return [_accept(w, message) for message in messages]
    finally:
        arrival.leave()


def _accept(w: LogWriter, message: Delivered) -> Future[str]:
    data = message.data
    try:
        line = parse(data)
        target = router().route(line)
    except RejectedLogEntry as exc:
        w.reject(exc.reason, data)
        return _settled(f"rejected: {exc.reason}")
    except Exception as exc:  # a lookup failed (Firestore, Cloud Build API): retry this entry
        failed: Future[str] = Future()
        failed.set_exception(exc)
        return failed
    check_since = (message.published or line.at) if message.redelivered else None
    return w.submit(target, line, check_since=check_since)


def _settled(outcome: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(outcome)
    return future
