"""Worker entry points: the pull consumers declared in devgem.topology.WORKERS.

Each is thin: it names its subscription and the use case that takes a batch. Run one with
`python workers.py log_entry` (a Cloud Run worker pool's command; devstack runs the same locally).
"""

from __future__ import annotations

import logging
import sys

from devgem import bootstrap, topology
from devgem.config import settings
from devgem.entrypoints import pull_worker
from devgem.usecases import ingest_logs


def _serve(name: str, handle: pull_worker.HandleBatch) -> None:
    worker = topology.worker(name)
    subscription = f"projects/{settings().project}/subscriptions/{worker.subscription}"
    pull_worker.serve(subscription, handle, ack_deadline=worker.ack_deadline_seconds)


def log_entry() -> None:
    # Idempotent: a line this instance committed or is committing (by insertId) settles without a
    # write, and a redelivered line is looked up in storage first (another instance may have written
    # it and died before acking); a copy that still slips through is dropped by the readers.
    _serve("log_entry", ingest_logs.accept_batch)


def crash_detected() -> None:
    # Idempotent: each write of an incident records the insertIds it counted, in the same batch; a
    # redelivered signal is looked up there first. Signals are gathered in memory and each incident
    # is written at most once a second, whatever the crash rate (docs/crash.md).
    _serve("crash_detected", bootstrap.detect_crash().accept_batch)


ENTRY_POINTS = {"log_entry": log_entry, "crash_detected": crash_detected}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ENTRY_POINTS:
        print(f"usage: python workers.py {{{','.join(ENTRY_POINTS)}}}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ENTRY_POINTS[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
