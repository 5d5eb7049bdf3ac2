"""deploy-requested: move the deployment queued -> building and submit exactly one Cloud Build build.

Pub/Sub may deliver the request twice, even at the same time. A transaction claims the deployment
(queued -> building) before the build is submitted, and the build carries the deployment's tag, so
a later attempt that finds a claim but no build id looks the build up instead of submitting another.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from devgem import clock, cloud_build, store, validation
from devgem.config import settings
from devgem.errors import InvalidEvent, NotFound, RetryLater
from devgem.events import PubSubMessage
from devgem.firestore_client import client
from devgem.states import Status, can_move

log = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(seconds=30)


def handle(message: PubSubMessage) -> str:
    body = message.json()
    deployment_id = _field(body, "deploymentId")
    tenant_id = _field(body, "tenantId")
    db = client()
    ref = store.deployment_ref(db, validation.identifier(deployment_id, "deploymentId"))
    outcome, deployment = _claim(db.transaction(), ref, tenant_id, message)
    if outcome != "claimed" and outcome != "resume":
        return outcome
    build_id = cloud_build.find_build_for(deployment_id) if outcome == "resume" else None
    if build_id is None:
        build_id = cloud_build.submit(
            cloud_build.BuildRequest(
                deployment_id=deployment_id,
                app_id=deployment["appId"],
                repo_url=deployment["repoUrl"],
                branch=deployment["branch"],
                subdirectory=deployment["subdirectory"],
                image=deployment["image"],
            )
        )
    # Only the first writer's build id counts; a racing duplicate found the same build by tag.
    if _record_build(db.transaction(), ref, build_id) == Status.SUPERSEDED:
        cloud_build.cancel(build_id)  # a newer deploy overtook this one while it was being submitted
        return "superseded while submitting; build cancelled"
    log.info("deployment %s: build %s submitted", deployment_id, build_id)
    superseded = supersede_older(db, {**deployment, "id": deployment_id})
    return f"submitted; superseded {superseded}" if superseded else "submitted"


def supersede_older(db: firestore.Client, deployment: store.Doc) -> list[str]:
    """Older deploys of the same app still queued or building will never be wanted: stop them.

    Cloud Build does not cancel superseded builds itself, and without this they pile up.
    """
    query = (
        db.collection(store.DEPLOYMENTS)
        .where(filter=firestore.FieldFilter("tenantId", "==", deployment["tenantId"]))
        .where(filter=firestore.FieldFilter("appId", "==", deployment["appId"]))
        .where(filter=firestore.FieldFilter("status", "in", [Status.QUEUED.value, Status.BUILDING.value]))
    )
    done = []
    for snapshot in query.stream():
        older = snapshot.to_dict() or {}
        if snapshot.id == deployment["id"] or older["createdAt"] >= deployment["createdAt"]:
            continue
        build_id = _mark_superseded(db.transaction(), snapshot.reference, deployment["id"])
        if build_id:
            try:
                cloud_build.cancel(build_id)
            except gexc.GoogleAPICallError as exc:  # already finished: nothing left to stop
                log.info("build %s of superseded deployment %s not cancelled: %s", build_id, snapshot.id, exc)
        done.append(snapshot.id)
    return done


@firestore.transactional
def _mark_superseded(tx: firestore.Transaction, ref: firestore.DocumentReference, newer_id: str) -> str | None:
    older = ref.get(transaction=tx).to_dict() or {}
    if not can_move(older.get("status", Status.QUEUED), Status.SUPERSEDED) or older["status"] == Status.DEPLOYING:
        return None
    now = clock.now()
    tx.update(
        ref,
        {
            "status": Status.SUPERSEDED.value,
            "error": f"superseded by deployment {newer_id}",
            "supersededBy": newer_id,
            "updatedAt": now,
            f"stageTimes.{Status.SUPERSEDED.value}": now,
        },
    )
    return str(older["buildId"]) if older.get("buildId") else None


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"deploy-requested message has no {name}")
    return value


@firestore.transactional
def _claim(
    tx: firestore.Transaction, ref: firestore.DocumentReference, tenant_id: str, message: PubSubMessage
) -> tuple[str, store.Doc]:
    snapshot = ref.get(transaction=tx)
    if not snapshot.exists:
        raise InvalidEvent(f"deployment {ref.id} does not exist")
    try:
        deployment = store.owned(snapshot, tenant_id, "deployment")
    except NotFound as exc:  # a forged tenant id finds nothing, and is never retried
        raise InvalidEvent(f"deployment {ref.id} does not belong to tenant {tenant_id}") from exc
    now = clock.now()
    status = deployment["status"]
    if status == Status.QUEUED and _too_old(message, now):
        tx.update(
            ref,
            {
                "status": Status.FAILED.value,
                "error": "the deploy request expired before it was picked up",
                "updatedAt": now,
            },
        )
        return "expired", deployment
    if status == Status.QUEUED:
        image = settings().image_template.format(service=deployment["serviceName"], deployment=ref.id)
        tx.update(
            ref,
            {
                "status": Status.BUILDING.value,
                "image": image,
                "buildClaimedAt": now,
                "updatedAt": now,
                f"stageTimes.{Status.BUILDING.value}": now,
            },
        )
        return "claimed", {**deployment, "image": image}
    if deployment.get("buildId") or not can_move(status, Status.DEPLOYING):
        return "duplicate", deployment
    claimed_at = deployment.get("buildClaimedAt")
    if claimed_at and now - claimed_at < CLAIM_LEASE:
        raise RetryLater(f"deployment {ref.id} is being submitted by another delivery")
    tx.update(ref, {"buildClaimedAt": now})
    return "resume", deployment


def _too_old(message: PubSubMessage, now: Any) -> bool:
    if message.publish_time is None:
        return False
    return bool((now - message.publish_time).total_seconds() > settings().max_event_age_seconds)


@firestore.transactional
def _record_build(tx: firestore.Transaction, ref: firestore.DocumentReference, build_id: str) -> str:
    deployment = ref.get(transaction=tx).to_dict() or {}
    if not deployment.get("buildId"):
        tx.update(ref, {"buildId": build_id, "updatedAt": clock.now()})
    return str(deployment.get("status"))
