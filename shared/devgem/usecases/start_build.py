"""deploy-requested: move the deployment queued -> building and submit exactly one Cloud Build build.

Pub/Sub may deliver the request twice, even at the same time. A guarded write claims the deployment
(queued -> building) before the build is submitted, and the build carries the deployment's tag, so
a later attempt that finds a claim but no build id looks the build up instead of submitting another.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from devgem import clock
from devgem.adapters import cloud_build, guarded_write, store
from devgem.adapters.firestore_client import client
from devgem.adapters.guarded_write import Decision
from devgem.adapters.pubsub import PubSubMessage
from devgem.config import settings
from devgem.domain import validation
from devgem.domain.deployment import Status, can_move
from devgem.domain.errors import InvalidEvent, NotFound, RetryLater

log = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(seconds=30)


def handle(message: PubSubMessage) -> str:
    body = message.json()
    deployment_id = _field(body, "deploymentId")
    tenant_id = _field(body, "tenantId")
    db = client()
    ref = store.deployment_ref(db, validation.identifier(deployment_id, "deploymentId"))
    outcome, deployment = _claim(db, ref, tenant_id, message)
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
    if _record_build(db, ref, build_id) == Status.SUPERSEDED:
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
        build_id = _mark_superseded(db, snapshot.reference, deployment["id"])
        if build_id:
            try:
                cloud_build.cancel(build_id)
            except gexc.GoogleAPICallError as exc:  # already finished: nothing left to stop
                log.info("build %s of superseded deployment %s not cancelled: %s", build_id, snapshot.id, exc)
        done.append(snapshot.id)
    return done


def _mark_superseded(db: firestore.Client, ref: firestore.DocumentReference, newer_id: str) -> str | None:
    """Return the build to cancel, if the older deployment was superseded and had one."""

    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[str | None]:
        older = snapshot.to_dict() or {}
        status = older.get("status", Status.QUEUED)
        if not can_move(status, Status.SUPERSEDED) or status == Status.DEPLOYING:
            return Decision(None)
        now = clock.now()
        update = {
            "status": Status.SUPERSEDED.value,
            "error": f"superseded by deployment {newer_id}",
            "supersededBy": newer_id,
            "updatedAt": now,
            f"stageTimes.{Status.SUPERSEDED.value}": now,
        }
        return Decision(str(older["buildId"]) if older.get("buildId") else None, update)

    return guarded_write.apply(db, ref, decide)


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"deploy-requested message has no {name}")
    return value


def _claim(
    db: firestore.Client, ref: firestore.DocumentReference, tenant_id: str, message: PubSubMessage
) -> tuple[str, store.Doc]:
    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[tuple[str, store.Doc]]:
        if not snapshot.exists:
            raise InvalidEvent(f"deployment {ref.id} does not exist")
        try:
            deployment = store.owned(snapshot, tenant_id, "deployment")
        except NotFound as exc:  # a forged tenant id finds nothing, and is never retried
            raise InvalidEvent(f"deployment {ref.id} does not belong to tenant {tenant_id}") from exc
        now = clock.now()
        status = deployment["status"]
        if status == Status.QUEUED and _too_old(message, now):
            error = "the deploy request expired before it was picked up"
            return Decision(("expired", deployment), {"status": Status.FAILED.value, "error": error, "updatedAt": now})
        if status == Status.QUEUED:
            image = settings().image_template.format(service=deployment["serviceName"], deployment=ref.id)
            update = {
                "status": Status.BUILDING.value,
                "image": image,
                "buildClaimedAt": now,
                "updatedAt": now,
                f"stageTimes.{Status.BUILDING.value}": now,
            }
            return Decision(("claimed", {**deployment, "image": image}), update)
        if deployment.get("buildId") or not can_move(status, Status.DEPLOYING):
            return Decision(("duplicate", deployment))
        claimed_at = deployment.get("buildClaimedAt")
        if claimed_at and now - claimed_at < CLAIM_LEASE:
            raise RetryLater(f"deployment {ref.id} is being submitted by another delivery")
        return Decision(("resume", deployment), {"buildClaimedAt": now})

    return guarded_write.apply(db, ref, decide)


def _too_old(message: PubSubMessage, now: Any) -> bool:
    if message.publish_time is None:
        return False
    return bool((now - message.publish_time).total_seconds() > settings().max_event_age_seconds)


def _record_build(db: firestore.Client, ref: firestore.DocumentReference, build_id: str) -> str:
    """Keep the first build id; return the deployment's status as it is now."""

    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[str]:
        deployment = snapshot.to_dict() or {}
        status = str(deployment.get("status"))
        if deployment.get("buildId"):
            return Decision(status)
        return Decision(status, {"buildId": build_id, "updatedAt": clock.now()})

    return guarded_write.apply(db, ref, decide)
