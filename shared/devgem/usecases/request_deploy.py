"""A user (or the agent, or a push) asks for a deploy: record it as queued, then announce it on deploy-requested."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from devgem import clock, topology
from devgem.adapters import store
from devgem.adapters.firestore_client import client
from devgem.domain import deployment as states
from devgem.domain import validation
from devgem.domain.deployment import Deployment, Status, Trigger
from devgem.domain.errors import NotFound, RetryLater
from devgem.domain.identity import Identity
from devgem.usecases.ports import Apps, Deployments, Publisher


@dataclass(frozen=True)
class RequestDeploy:
    apps: Apps
    deployments: Deployments
    publisher: Publisher
    now: Callable[[], datetime] = clock.now
    new_id: Callable[[], str] = clock.new_id

    def request(self, who: Identity, app_id: str, trigger: Trigger) -> Deployment:
        app = self.apps.get(who.tenant_id, validation.identifier(app_id, "app id"))
        deployment = Deployment(
            id=self.new_id(),
            tenant_id=who.tenant_id,
            app_id=app["id"],
            status=Status.QUEUED,
            trigger=trigger.value,
            requested_by=who.user_id,
            repo_url=app["repoUrl"],
            branch=app["branch"],
            subdirectory=app["subdirectory"],
            service_name=app["serviceName"],
            created_at=self.now(),
        )
        self.deployments.create(deployment)
        try:
            announce(self.publisher, deployment)
        except Exception as exc:
            # Never leave a deployment queued forever that nobody will pick up.
            self.deployments.change(
                deployment.id, lambda d: states.decide_enqueue_failed(states.existing(d), self.now())
            )
            raise RetryLater("the deploy could not be enqueued; try again in a moment") from exc
        return deployment


def announce(publisher: Publisher, deployment: Deployment) -> None:
    """Publish deploy-requested; also how the watchdog re-drives a deployment whose request was lost."""
    publisher.publish(
        topology.DEPLOY_REQUESTED,
        {"deploymentId": deployment.id, "tenantId": deployment.tenant_id, "appId": deployment.app_id},
        deploymentId=deployment.id,
    )


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
