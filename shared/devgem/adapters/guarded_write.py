"""State changes without transactions' locks: read the document, decide, and commit the change in one
atomic batch guarded by the update time that was read. If anything wrote in between, read again.

Deployment documents are written by several handlers at once (build statuses arrive in bursts).
Lock-based transactions make those writers wait on each other (about a second per conflict on the
emulator); a guarded batch never waits, it only retries the rare lost race. A batch is atomic, so
a ledger entry created in it is written together with the state change, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from devgem.domain.errors import RetryLater

T = TypeVar("T")
Snapshot = firestore.DocumentSnapshot[firestore.DocumentReference]
ATTEMPTS = 10


@dataclass
class Decision(Generic[T]):
    """What to do with the document as read: `update` None means write nothing."""

    outcome: T
    update: dict[str, Any] | None = None
    also: list[Callable[[firestore.WriteBatch], None]] = field(default_factory=list)


def apply(
    db: firestore.Client,
    ref: firestore.DocumentReference,
    decide: Callable[[Snapshot], Decision[T]],
    on_already_done: T | None = None,
) -> T:
    for _ in range(ATTEMPTS):
        snapshot = ref.get()
        decision = decide(snapshot)
        if decision.update is None:
            return decision.outcome
        batch = db.batch()
        batch.update(ref, decision.update, option=db.write_option(last_update_time=snapshot.update_time))
        for write in decision.also:
            write(batch)
        try:
            batch.commit()
        except gexc.FailedPrecondition:
            continue  # someone wrote in between: decide again on what is there now
        except (gexc.AlreadyExists, gexc.Conflict):
            if on_already_done is None:
                raise
            return on_already_done
        return decision.outcome
    raise RetryLater(f"{ref.path} kept changing; try again")
