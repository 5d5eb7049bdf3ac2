"""The idempotency ledger: a handler's effect is recorded under a business key in the same atomic
write as the state change, so a redelivered message finds the key and does nothing.

Pub/Sub gives a publisher's retry a new messageId, so keys are built from what the message is
about (a deployment id, a build id and status), never from the messageId.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from google.cloud import firestore

from devgem import clock
from devgem.adapters.collections import LEDGER

RETENTION = timedelta(days=7)  # a TTL policy on expireAt deletes entries after this


def _ref(db: firestore.Client, key: str) -> firestore.DocumentReference:
    return db.collection(LEDGER).document(hashlib.sha256(key.encode()).hexdigest()[:40])


def entry(db: firestore.Client, key: str, tenant_id: str) -> Callable[[firestore.WriteBatch], None]:
    """A create of the key for a guarded batch: the batch fails if the key is already there."""
    at = clock.now()

    def write(batch: firestore.WriteBatch) -> None:
        batch.create(_ref(db, key), {"key": key, "tenantId": tenant_id, "at": at, "expireAt": at + RETENTION})

    return write
