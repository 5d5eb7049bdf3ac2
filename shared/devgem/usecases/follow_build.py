"""cloud-builds: follow a build's status and, on success, roll the image out and announce the URL.

Cloud Build publishes on every state change, repeats itself and may arrive out of order. The
deployment only moves forward, so a late WORKING after SUCCESS changes nothing. The rollout is safe to
run again (the revision is named after the deployment), and the deployment becomes live, in one
atomic write with its ledger entry, only after the URL answered; a crash anywhere before that is
repaired by Pub/Sub redelivering SUCCESS.
"""

from __future__ import annotations

import logging

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1

from devgem import clock
from devgem.adapters import cloud_build, cloud_run, guarded_write, ledger, probe, store
from devgem.adapters.firestore_client import client
from devgem.adapters.guarded_write import Decision
from devgem.adapters.pubsub import PubSubMessage
from devgem.config import settings
from devgem.domain import naming
from devgem.domain.deployment import BUILD_FAILED, BUILD_IN_PROGRESS, BUILD_STATUSES, BUILD_SUCCESS, Status, can_move
from devgem.domain.errors import InvalidEvent
from devgem.logs import tail

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
        return _note_progress(db, ref, build_id, status)
    if status in BUILD_FAILED:
        outcome = _mark_failed(db, ref, build_id, status, failure_summary(build, deployment))
        tail.keep_failing_tail(db, deployment_id)  # the build's last 50 lines, once they have arrived
        return outcome
    return _roll_out(db, ref, deployment, build_id)


def _note_progress(db: firestore.Client, ref: firestore.DocumentReference, build_id: str, status: str) -> str:
    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[str]:
        deployment = snapshot.to_dict() or {}
        if not can_move(deployment.get("status", Status.QUEUED), Status.DEPLOYING):
            return Decision("ignored: deployment already past building")
        if deployment.get("buildStatus") == status and deployment.get("buildId"):
            return Decision(f"progress: {status} (already noted)")
        update: dict[str, object] = {"buildStatus": status, "buildId": deployment.get("buildId") or build_id}
        if deployment.get("status") == Status.QUEUED:
            update["status"] = Status.BUILDING.value
            update[f"stageTimes.{Status.BUILDING.value}"] = clock.now()
        return Decision(f"progress: {status}", {**update, "updatedAt": clock.now()})

    return guarded_write.apply(db, ref, decide)


def _mark_failed(
    db: firestore.Client, ref: firestore.DocumentReference, build_id: str, build_status: str, error: str
) -> str:
    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[str]:
        deployment = snapshot.to_dict() or {}
        if not can_move(deployment.get("status", Status.QUEUED), Status.FAILED):
            return Decision("ignored: deployment already finished")
        now = clock.now()
        update = {
            "status": Status.FAILED.value,
            "buildStatus": build_status,
            "buildId": deployment.get("buildId") or build_id,
            "error": error,
            "updatedAt": now,
            f"stageTimes.{Status.FAILED.value}": now,
        }
        key = f"build:{build_id}:{build_status}"
        return Decision(f"failed: {error}", update, [ledger.entry(db, key, deployment.get("tenantId", ""))])

    return guarded_write.apply(db, ref, decide, on_already_done="duplicate")


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
    if not _start_deploying(db, ref, build_id):
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
            return _mark_failed(db, ref, build_id, BUILD_SUCCESS, f"the new revision did not start: {exc}")
        raise
    url = settings().public_url_template.format(service=service)
    ok, seen = probe.answers(url, settings().probe_timeout_seconds)
    if not ok:
        return _mark_failed(db, ref, build_id, BUILD_SUCCESS, f"{url} did not answer ({seen})")
    return _go_live(db, ref, build_id, serving.revision, url)


def _is_permanent(exc: Exception) -> bool:
    """A revision that fails to start is the app's fault; anything else (network, 5xx) is retried."""
    return isinstance(exc, (gexc.InvalidArgument, gexc.FailedPrecondition, gexc.AlreadyExists)) or (
        isinstance(exc, gexc.GoogleAPICallError) and exc.code is not None and 400 <= int(exc.code) < 500
    )


def _start_deploying(db: firestore.Client, ref: firestore.DocumentReference, build_id: str) -> bool:
    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[bool]:
        deployment = snapshot.to_dict() or {}
        status = deployment.get("status", Status.QUEUED)
        if status == Status.DEPLOYING:
            return Decision(True)  # an earlier attempt stopped mid-rollout; carry on
        if not can_move(status, Status.DEPLOYING):
            return Decision(False)
        now = clock.now()
        update = {
            "status": Status.DEPLOYING.value,
            "buildStatus": BUILD_SUCCESS,
            "buildId": deployment.get("buildId") or build_id,
            "updatedAt": now,
            f"stageTimes.{Status.DEPLOYING.value}": now,
        }
        return Decision(True, update)

    return guarded_write.apply(db, ref, decide)


def _go_live(db: firestore.Client, ref: firestore.DocumentReference, build_id: str, revision: str, url: str) -> str:
    def decide(snapshot: firestore.DocumentSnapshot) -> Decision[str]:
        deployment = snapshot.to_dict() or {}
        if not can_move(deployment.get("status", Status.QUEUED), Status.LIVE):
            return Decision("ignored: deployment already finished")
        now = clock.now()
        update = {
            "status": Status.LIVE.value,
            "revision": revision,
            "url": url,
            "updatedAt": now,
            f"stageTimes.{Status.LIVE.value}": now,
        }
        app_ref = store.app_ref(db, deployment["appId"])
        app_update = {"liveRevision": revision, "liveDeploymentId": ref.id, "url": url, "updatedAt": now}
        key = f"build:{build_id}:{BUILD_SUCCESS}"
        also = [lambda batch: batch.update(app_ref, app_update), ledger.entry(db, key, deployment.get("tenantId", ""))]
        return Decision(f"live: {url}", update, also)

    outcome = guarded_write.apply(db, ref, decide, on_already_done="duplicate")
    log.info("deployment %s: %s (revision %s)", ref.id, outcome, revision)
    return outcome
