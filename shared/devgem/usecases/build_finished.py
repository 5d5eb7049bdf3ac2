"""cloud-builds: follow a build's status and, on success, roll the image out and announce the URL.

Cloud Build publishes on every state change, repeats itself and may arrive out of order. The
deployment only moves forward, so a late WORKING after SUCCESS changes nothing. The rollout is safe to
run again (the revision is named after the deployment), and the deployment becomes live, in one
transaction with its ledger entry, only after the URL answered; a crash anywhere before that is
repaired by Pub/Sub redelivering SUCCESS.
"""

from __future__ import annotations

import logging

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1

from devgem import clock, cloud_build, cloud_run, ledger, naming, probe, store
from devgem.config import settings
from devgem.errors import InvalidEvent
from devgem.events import PubSubMessage
from devgem.firestore_client import client
from devgem.states import BUILD_FAILED, BUILD_IN_PROGRESS, BUILD_STATUSES, BUILD_SUCCESS, Status, can_move

log = logging.getLogger(__name__)


def handle(message: PubSubMessage) -> str:
    build_id, status = message.attributes.get("buildId"), message.attributes.get("status")
    if status not in BUILD_STATUSES or not build_id:
        raise InvalidEvent(f"cloud-builds message has no valid buildId/status attributes ({build_id!r}, {status!r})")
    try:
        build = cloud_build.parse_build(message.data)
    except ValueError as exc:
        raise InvalidEvent(f"cloud-builds message data is not a Build resource: {exc}") from exc
    deployment_id = cloud_build.deployment_id_from_tags(list(build.tags))
    if deployment_id is None:
        return "ignored: not a Devgem build"
    db = client()
    ref = store.deployment_ref(db, deployment_id)
    snapshot = ref.get()
    if not snapshot.exists:
        raise InvalidEvent(f"build {build_id} names deployment {deployment_id}, which does not exist")
    deployment = {**(snapshot.to_dict() or {}), "id": deployment_id}
    if status in BUILD_IN_PROGRESS:
        return _note_progress(db.transaction(), ref, build_id, status)
    if status in BUILD_FAILED:
        return _mark_failed(db.transaction(), db, ref, build_id, status, failure_summary(build, deployment))
    return _roll_out(db, ref, deployment, build_id)


@firestore.transactional
def _note_progress(tx: firestore.Transaction, ref: firestore.DocumentReference, build_id: str, status: str) -> str:
    deployment = ref.get(transaction=tx).to_dict() or {}
    update: dict[str, object] = {"buildStatus": status, "updatedAt": clock.now()}
    if not deployment.get("buildId"):
        update["buildId"] = build_id
    if deployment.get("status") == Status.QUEUED:
        update["status"] = Status.BUILDING.value
        update[f"stageTimes.{Status.BUILDING.value}"] = clock.now()
    elif not can_move(deployment.get("status", Status.QUEUED), Status.DEPLOYING):
        return "ignored: deployment already past building"
    tx.update(ref, update)
    return f"progress: {status}"


@firestore.transactional
def _mark_failed(
    tx: firestore.Transaction,
    db: firestore.Client,
    ref: firestore.DocumentReference,
    build_id: str,
    build_status: str,
    error: str,
) -> str:
    deployment = ref.get(transaction=tx).to_dict() or {}
    if not can_move(deployment.get("status", Status.QUEUED), Status.FAILED):
        return "ignored: deployment already finished"
    now = clock.now()
    tx.update(
        ref,
        {
            "status": Status.FAILED.value,
            "buildStatus": build_status,
            "buildId": deployment.get("buildId") or build_id,
            "error": error,
            "updatedAt": now,
            f"stageTimes.{Status.FAILED.value}": now,
        },
    )
    ledger.record(tx, db, f"build:{build_id}:{build_status}", deployment.get("tenantId", ""))
    return f"failed: {error}"


def failure_summary(build: cloudbuild_v1.Build, deployment: store.Doc) -> str:
    detail = build.failure_info.detail or build.status_detail
    status = cloudbuild_v1.Build.Status(build.status).name if build.status else "FAILURE"
    if build.failure_info.type_ == cloudbuild_v1.Build.FailureInfo.FailureType.FETCH_SOURCE_FAILED:
        return f"could not fetch the source: {detail or 'branch ' + deployment.get('branch', '?') + ' not found'}"
    if status == "TIMEOUT":
        return f"the build took longer than {cloud_build.BUILD_TIMEOUT_SECONDS} s and was stopped"
    if status == "CANCELLED":
        return "the build was cancelled"
    return f"the build failed ({status}): {detail or 'see the build log'}"


def _roll_out(db: firestore.Client, ref: firestore.DocumentReference, deployment: store.Doc, build_id: str) -> str:
    if not _start_deploying(db.transaction(), ref, build_id):
        return "ignored: deployment already finished"
    service = deployment["serviceName"]
    rollout = cloud_run.Rollout(
        service=service,
        revision=naming.revision_name(service, deployment["id"]),
        image=deployment["image"],
        labels={"devgem-tenant": deployment["tenantId"], "devgem-app": deployment["appId"], "devgem-managed": "true"},
    )
    try:
        serving = cloud_run.roll_out(rollout)
    except Exception as exc:
        if _is_permanent(exc):
            return _mark_failed(
                db.transaction(), db, ref, build_id, BUILD_SUCCESS, f"the new revision did not start: {exc}"
            )
        raise
    url = settings().public_url_template.format(service=service)
    ok, seen = probe.answers(url, settings().probe_timeout_seconds)
    if not ok:
        return _mark_failed(db.transaction(), db, ref, build_id, BUILD_SUCCESS, f"{url} did not answer ({seen})")
    return _go_live(db.transaction(), db, ref, build_id, serving.revision, url)


def _is_permanent(exc: Exception) -> bool:
    """A revision that fails to start is the app's fault; anything else (network, 5xx) is retried."""
    return isinstance(exc, (gexc.InvalidArgument, gexc.FailedPrecondition, gexc.AlreadyExists)) or (
        isinstance(exc, gexc.GoogleAPICallError) and exc.code is not None and 400 <= int(exc.code) < 500
    )


@firestore.transactional
def _start_deploying(tx: firestore.Transaction, ref: firestore.DocumentReference, build_id: str) -> bool:
    deployment = ref.get(transaction=tx).to_dict() or {}
    status = deployment.get("status", Status.QUEUED)
    if status == Status.DEPLOYING:
        return True  # an earlier attempt stopped mid-rollout; carry on
    if not can_move(status, Status.DEPLOYING):
        return False
    now = clock.now()
    tx.update(
        ref,
        {
            "status": Status.DEPLOYING.value,
            "buildStatus": BUILD_SUCCESS,
            "buildId": deployment.get("buildId") or build_id,
            "updatedAt": now,
            f"stageTimes.{Status.DEPLOYING.value}": now,
        },
    )
    return True


@firestore.transactional
def _go_live(
    tx: firestore.Transaction,
    db: firestore.Client,
    ref: firestore.DocumentReference,
    build_id: str,
    revision: str,
    url: str,
) -> str:
    key = f"build:{build_id}:{BUILD_SUCCESS}"
    if ledger.seen(tx, db, key):
        return "duplicate"
    deployment = ref.get(transaction=tx).to_dict() or {}
    if not can_move(deployment.get("status", Status.QUEUED), Status.LIVE):
        return "ignored: deployment already finished"
    app_ref = store.app_ref(db, deployment["appId"])
    now = clock.now()
    tx.update(
        ref,
        {
            "status": Status.LIVE.value,
            "revision": revision,
            "url": url,
            "updatedAt": now,
            f"stageTimes.{Status.LIVE.value}": now,
        },
    )
    tx.update(
        app_ref,
        {"liveRevision": revision, "liveDeploymentId": ref.id, "url": url, "updatedAt": now},
    )
    ledger.record(tx, db, key, deployment.get("tenantId", ""))
    log.info("deployment %s is live at %s (revision %s)", ref.id, url, revision)
    return f"live: {url}"
