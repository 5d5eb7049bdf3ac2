"""A user (or a push) asks for a deploy: record it as queued, then announce it on deploy-requested."""

from __future__ import annotations

from devgem import clock, topology
from devgem.adapters import pubsub, store
from devgem.adapters.firestore_client import client
from devgem.domain import validation
from devgem.domain.deployment import Status
from devgem.domain.errors import NotFound, RetryLater
from devgem.entrypoints.auth import Identity


def request_deploy(who: Identity, app_id: str, trigger: str = "chat") -> store.Doc:
    db = client()
    app = store.get_app(db, who.tenant_id, validation.identifier(app_id, "app id"))
    deployment_id = clock.new_id()
    now = clock.now()
    deployment = {
        "tenantId": who.tenant_id,
        "appId": app["id"],
        "trigger": trigger,
        "requestedBy": who.user_id,
        "status": Status.QUEUED.value,
        "repoUrl": app["repoUrl"],
        "branch": app["branch"],
        "subdirectory": app["subdirectory"],
        "serviceName": app["serviceName"],
        "url": None,
        "buildId": None,
        "buildStatus": None,
        "revision": None,
        "error": None,
        "createdAt": now,
        "updatedAt": now,
        "stageTimes": {Status.QUEUED.value: now},
    }
    ref = store.deployment_ref(db, deployment_id)
    ref.set(deployment)
    try:
        pubsub.publish(
            topology.DEPLOY_REQUESTED,
            {"deploymentId": deployment_id, "tenantId": who.tenant_id, "appId": app["id"]},
            deploymentId=deployment_id,
        )
    except Exception as exc:
        # Never leave a deployment queued forever that nobody will pick up.
        ref.update(
            {
                "status": Status.FAILED.value,
                "error": "could not enqueue the deploy; try again",
                "updatedAt": clock.now(),
            }
        )
        raise RetryLater("the deploy could not be enqueued; try again in a moment") from exc
    return {**deployment, "id": deployment_id}


def get_deployment(who: Identity, app_id: str, deployment_id: str) -> store.Doc:
    db = client()
    deployment = store.get_deployment(db, who.tenant_id, validation.identifier(deployment_id, "deployment id"))
    if deployment["appId"] != app_id:
        raise NotFound(f"deployment {deployment_id} not found")
    return deployment


def list_deployments(who: Identity, app_id: str) -> list[store.Doc]:
    db = client()
    app = store.get_app(db, who.tenant_id, validation.identifier(app_id, "app id"))
    return store.list_deployments(db, who.tenant_id, app["id"])
