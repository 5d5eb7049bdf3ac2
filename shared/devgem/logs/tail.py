"""A failed build shows why: its deployment keeps the last 50 lines of the build's output.

Cloud Build publishes FAILURE after the build's last line, but the lines travel through another
subscription (log-entry) and may still be on their way when build_finished hears of the failure. So
the tail is taken once the build's chunks have stopped growing for a moment (bounded), and stored
with a plain update after the deployment is already marked failed: the failure is announced at once,
the lines follow. A redelivered FAILURE fills in a tail that a crashed attempt did not store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from devgem import clock
from devgem.adapters import store
from devgem.domain.deployment import Status
from devgem.logs import reader
from devgem.logs.entries import BUILD

log = logging.getLogger(__name__)

TAIL_LINES = 50
QUIET_SECONDS = 2.0  # no new build chunk for this long: the stream has settled
MAX_WAIT_SECONDS = 20.0
POLL_SECONDS = 0.5


def keep_failing_tail(db: firestore.Client, deployment_id: str) -> int | None:
    """Store the build's last lines on a failed deployment; the number stored, or None if not needed."""
    ref = store.deployment_ref(db, deployment_id)
    deployment = ref.get().to_dict() or {}
    if deployment.get("status") != Status.FAILED or deployment.get("logTail") is not None:
        return None
    tenant_id, app_id = deployment.get("tenantId"), deployment.get("appId")
    if not isinstance(tenant_id, str) or not isinstance(app_id, str):
        return None
    lines = _settled_tail(db, tenant_id, app_id, deployment_id)
    ref.update({"logTail": lines, "logTailAt": clock.now()})
    log.info("deployment %s: kept the last %d lines of its failed build", deployment_id, len(lines))
    return len(lines)


def _settled_tail(db: firestore.Client, tenant_id: str, app_id: str, deployment_id: str) -> list[dict[str, Any]]:
    started = time.monotonic()
    newest: str | None = None
    changed = started
    while True:
        history = reader.newest(db, tenant_id, app_id, limit=TAIL_LINES, deployment_id=deployment_id, source=BUILD)
        now = time.monotonic()
        if history.cursor != newest:
            newest, changed = history.cursor, now
        if now - changed >= QUIET_SECONDS or now - started >= MAX_WAIT_SECONDS:
            return [{k: line.get(k) for k in ("at", "severity", "text", "step")} for line in history.lines]
        time.sleep(POLL_SECONDS)


class FirestoreFailingTail:
    """keep_failing_tail behind the use cases' FailingTail port."""

    def __init__(self, db: Callable[[], firestore.Client]) -> None:
        self._db = db

    def keep(self, deployment_id: str) -> int | None:
        return keep_failing_tail(self._db(), deployment_id)
