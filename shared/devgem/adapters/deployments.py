"""The `deployments` collection behind the use cases' Deployments port.

`change` carries a domain Decision out as one guarded atomic batch: the deployment's fields, its
ledger entry and its app's fields together, or nothing (see guarded_write).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.cloud import firestore

from devgem.adapters import guarded_write, ledger
from devgem.adapters.collections import APPS, DEPLOYMENTS
from devgem.domain.deployment import TERMINAL, Decision, Deployment, Status

T = TypeVar("T")


class FirestoreDeployments:
    def __init__(self, db: Callable[[], firestore.Client]) -> None:
        self._db = db  # a factory, so the client is made when first needed, not at import

    def _ref(self, deployment_id: str) -> firestore.DocumentReference:
        return self._db().collection(DEPLOYMENTS).document(deployment_id)

    def get(self, deployment_id: str) -> Deployment | None:
        snapshot = self._ref(deployment_id).get()
        return _from_snapshot(snapshot)

    def create(self, deployment: Deployment) -> None:
        self._ref(deployment.id).create(deployment.to_doc())

    def change(
        self,
        deployment_id: str,
        decide: Callable[[Deployment | None], Decision[T]],
        on_already_done: T | None = None,
    ) -> T:
        db = self._db()

        def decide_batch(snapshot: guarded_write.Snapshot) -> guarded_write.Decision[T]:
            deployment = _from_snapshot(snapshot)
            decision = decide(deployment)
            change = decision.change
            if change is None or deployment is None:
                return guarded_write.Decision(decision.outcome)
            also: list[Callable[[firestore.WriteBatch], None]] = []
            if change.ledger_key:
                also.append(ledger.entry(db, change.ledger_key, deployment.tenant_id))
            if change.app_fields:
                app_ref = db.collection(APPS).document(deployment.app_id)
                also.append(lambda batch: batch.update(app_ref, change.app_fields))
            return guarded_write.Decision(decision.outcome, change.fields, also)

        return guarded_write.apply(db, self._ref(deployment_id), decide_batch, on_already_done)

    def queued_or_building(self, tenant_id: str, app_id: str) -> list[Deployment]:
        query = (
            self._db()
            .collection(DEPLOYMENTS)
            .where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
            .where(filter=firestore.FieldFilter("appId", "==", app_id))
            .where(filter=firestore.FieldFilter("status", "in", [Status.QUEUED.value, Status.BUILDING.value]))
        )
        return [d for d in (_from_snapshot(s) for s in query.stream()) if d is not None]

    def of_app(self, tenant_id: str, app_id: str) -> list[Deployment]:
        query = (
            self._db()
            .collection(DEPLOYMENTS)
            .where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
            .where(filter=firestore.FieldFilter("appId", "==", app_id))
        )
        return [d for d in (_from_snapshot(s) for s in query.stream()) if d is not None]

    def unfinished(self) -> list[Deployment]:
        unfinished = [s.value for s in Status if s not in TERMINAL]
        query = self._db().collection(DEPLOYMENTS).where(filter=firestore.FieldFilter("status", "in", unfinished))
        return [d for d in (_from_snapshot(s) for s in query.stream()) if d is not None]


def _from_snapshot(snapshot: guarded_write.Snapshot) -> Deployment | None:
    data = snapshot.to_dict() if snapshot.exists else None
    return Deployment.from_doc(snapshot.id, data) if data else None
