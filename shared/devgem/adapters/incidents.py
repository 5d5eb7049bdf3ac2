"""The Incidents port over Firestore: `incidents/{id}` and its `signals/{n}` insertId records.

An incident is written by a guarded batch (read, decide, commit guarded by the update time read, as
adapters/guarded_write does), never a transaction: the emulator makes contended transactions wait
about a second each. The same batch creates a `signals` document holding the insertIds it counted,
so "counted" and "recorded as counted" cannot come apart; a redelivered signal is looked up there.
Signals documents expire with a TTL (`expireAt`), as the ledger's do.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from devgem import clock
from devgem.adapters.collections import INCIDENTS
from devgem.domain.errors import RetryLater
from devgem.domain.incidents import Incident, Notice

SIGNALS = "signals"
RETENTION = timedelta(days=7)
ATTEMPTS = 10

Doc = dict[str, Any]


def to_doc(incident: Incident) -> Doc:
    return {
        "tenantId": incident.tenant_id,
        "appId": incident.app_id,
        "fingerprint": incident.fingerprint,
        "firstSeen": incident.first_seen,
        "lastSeen": incident.last_seen,
        "count": incident.count,
        "revision": incident.revision,
        "deploymentId": incident.deployment_id,
        "status": incident.status,
        "level": incident.level,
        "occurrence": incident.occurrence,
        "recent": list(incident.recent),
        "firstText": incident.first_text,
        "context": list(incident.context),
        "noticesSent": incident.notices_sent,
        "lastNoticeAt": incident.last_notice_at,
        "pendingNotice": asdict(incident.pending) if incident.pending else None,
        "notifiedLevels": list(incident.notified_levels),
    }


def from_doc(incident_id: str, doc: Doc) -> Incident:
    pending = doc.get("pendingNotice")
    return Incident(
        id=incident_id,
        tenant_id=doc["tenantId"],
        app_id=doc["appId"],
        fingerprint=doc["fingerprint"],
        first_seen=doc["firstSeen"],
        last_seen=doc["lastSeen"],
        count=int(doc["count"]),
        revision=doc.get("revision"),
        deployment_id=doc.get("deploymentId"),
        status=doc.get("status", "open"),
        level=doc.get("level", "single"),
        occurrence=int(doc.get("occurrence", 1)),
        recent=tuple(doc.get("recent") or ()),
        first_text=doc.get("firstText", ""),
        context=tuple(doc.get("context") or ()),
        notices_sent=int(doc.get("noticesSent", 0)),
        last_notice_at=doc.get("lastNoticeAt"),
        pending=Notice(pending["kind"], int(pending["seq"])) if isinstance(pending, dict) else None,
        notified_levels=tuple(doc.get("notifiedLevels") or ()),
    )


class FirestoreIncidents:
    def __init__(self, db: Callable[[], firestore.Client]) -> None:
        self._db = db

    def _ref(self, incident_id: str) -> firestore.DocumentReference:
        return self._db().collection(INCIDENTS).document(incident_id)

    def get(self, incident_id: str) -> Incident | None:
        snapshot = self._ref(incident_id).get()
        return from_doc(incident_id, snapshot.to_dict() or {}) if snapshot.exists else None

    def record(
        self, incident_id: str, decide: Callable[[Incident | None], Incident], insert_ids: Sequence[str]
    ) -> Incident:
        def also(batch: firestore.WriteBatch, incident: Incident) -> None:
            now = clock.now()
            signals = self._ref(incident_id).collection(SIGNALS)
            doc_id = f"{int(now.timestamp() * 1000):013d}-{secrets.token_hex(4)}"
            batch.create(
                signals.document(doc_id),
                {
                    "tenantId": incident.tenant_id,
                    "ids": list(insert_ids),
                    "writtenAt": now,
                    "expireAt": now + RETENTION,
                },
            )

        result = self._apply(incident_id, lambda current: decide(current), also)
        assert result is not None
        return result

    def change(self, incident_id: str, decide: Callable[[Incident], Incident | None]) -> Incident | None:
        return self._apply(incident_id, lambda current: decide(current) if current is not None else None, None)

    def stored_ids(self, incident_id: str, since: datetime) -> set[str]:
        query = self._ref(incident_id).collection(SIGNALS).where(filter=firestore.FieldFilter("writtenAt", ">=", since))
        found: set[str] = set()
        for snapshot in query.stream():
            found.update(str(i) for i in (snapshot.to_dict() or {}).get("ids", []))
        return found

    def _apply(
        self,
        incident_id: str,
        decide: Callable[[Incident | None], Incident | None],
        also: Callable[[firestore.WriteBatch, Incident], None] | None,
    ) -> Incident | None:
        db = self._db()
        ref = self._ref(incident_id)
        for _ in range(ATTEMPTS):
            snapshot = ref.get()
            current = from_doc(incident_id, snapshot.to_dict() or {}) if snapshot.exists else None
            decided = decide(current)
            if decided is None:
                return current
            batch = db.batch()
            doc = {**to_doc(decided), "writes": firestore.Increment(1), "updatedAt": firestore.SERVER_TIMESTAMP}
            if snapshot.exists:
                batch.update(ref, doc, option=db.write_option(last_update_time=snapshot.update_time))
            else:
                batch.create(ref, doc)
            if also is not None:
                also(batch, decided)
            try:
                batch.commit()
            except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict):
                continue  # someone wrote in between: decide again on what is there now
            return decided
        raise RetryLater(f"incident {incident_id} kept changing; try again")
