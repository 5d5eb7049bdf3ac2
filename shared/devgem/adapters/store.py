"""Firestore documents: apps, deployments, service-name reservations, rejected events.

Every document carries tenantId. Reads by id go through `owned`, which turns another tenant's
document into NotFound, so no caller can forget the check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from devgem import clock
from devgem.adapters.collections import APPS, DEPLOYMENTS, REJECTED_EVENTS, SERVICE_NAMES
from devgem.adapters.guarded_write import Snapshot
from devgem.domain.errors import Conflict, NotFound

Doc = dict[str, Any]


def owned(snapshot: Snapshot, tenant_id: str, what: str) -> Doc:
    data = snapshot.to_dict() if snapshot.exists else None
    if not data or data.get("tenantId") != tenant_id:
        raise NotFound(f"{what} {snapshot.id} not found")
    data["id"] = snapshot.id
    return data


def app_ref(db: firestore.Client, app_id: str) -> firestore.DocumentReference:
    return db.collection(APPS).document(app_id)


def deployment_ref(db: firestore.Client, deployment_id: str) -> firestore.DocumentReference:
    return db.collection(DEPLOYMENTS).document(deployment_id)


def get_app(db: firestore.Client, tenant_id: str, app_id: str) -> Doc:
    return owned(app_ref(db, app_id).get(), tenant_id, "app")


def get_deployment(db: firestore.Client, tenant_id: str, deployment_id: str) -> Doc:
    return owned(deployment_ref(db, deployment_id).get(), tenant_id, "deployment")


class FirestoreApps:
    """The apps collection behind the use cases' Apps port."""

    def __init__(self, db: Callable[[], firestore.Client]) -> None:
        self._db = db

    def get(self, tenant_id: str, app_id: str) -> Doc:
        return get_app(self._db(), tenant_id, app_id)

    def create(self, app_id: str, app: Doc) -> None:
        app_ref(self._db(), app_id).create(app)

    def reserve_service_name(self, name: str, tenant_id: str, app_id: str) -> None:
        reserve_service_name(self._db(), name, tenant_id, app_id)


def list_apps(db: firestore.Client, tenant_id: str, limit: int = 100) -> list[Doc]:
    query = db.collection(APPS).where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
    docs = [{**(s.to_dict() or {}), "id": s.id} for s in query.limit(limit).stream()]
    return sorted(docs, key=lambda d: d["createdAt"], reverse=True)


def list_deployments(db: firestore.Client, tenant_id: str, app_id: str, limit: int = 50) -> list[Doc]:
    query = (
        db.collection(DEPLOYMENTS)
        .where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
        .where(filter=firestore.FieldFilter("appId", "==", app_id))
        .order_by("createdAt", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )
    return [{**(s.to_dict() or {}), "id": s.id} for s in query.stream()]


def reserve_service_name(db: firestore.Client, name: str, tenant_id: str, app_id: str) -> None:
    """Create-if-absent: the reservation is what makes a service name unique across tenants."""
    try:
        db.collection(SERVICE_NAMES).document(name).create({"tenantId": tenant_id, "appId": app_id, "at": clock.now()})
    except gexc.AlreadyExists as exc:
        raise Conflict(f"service name {name} is taken") from exc


REJECTED_RETENTION = timedelta(days=30)


def record_rejected_event(db: firestore.Client, source: str, reason: str, raw: bytes | str) -> None:
    """Keep a permanently bad message for a human, then let Pub/Sub forget it."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    at = clock.now()
    db.collection(REJECTED_EVENTS).add(
        {
            "source": source,
            "reason": reason[:2000],
            "raw": text[:10_000],
            "rawBytes": len(raw),
            "at": at,
            "expireAt": at + REJECTED_RETENTION,
            "tenantId": None,
        }
    )
