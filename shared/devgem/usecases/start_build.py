"""deploy-requested: move the deployment queued -> building and submit exactly one Cloud Build build.

Pub/Sub may deliver the request twice, even at the same time. The deployment is claimed
(queued -> building) before the build is submitted, and the build carries the deployment's tag, so
a later attempt that finds a claim but no build id looks the build up instead of submitting another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc

from devgem import clock
from devgem.adapters.cloud_build import BuildRequest
from devgem.adapters.pubsub import PubSubMessage
from devgem.domain import deployment as states
from devgem.domain import validation
from devgem.domain.deployment import Claim, Deployment, Status
from devgem.domain.errors import InvalidEvent
from devgem.usecases.ports import Builds, Deployments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartBuild:
    deployments: Deployments
    builds: Builds
    image_template: str  # "{service}" and "{deployment}" are replaced
    max_event_age: timedelta  # a request older than this is failed, not built
    now: Callable[[], datetime] = clock.now

    def handle(self, message: PubSubMessage) -> str:
        body = message.json()
        deployment_id = validation.identifier(_field(body, "deploymentId"), "deploymentId")
        tenant_id = _field(body, "tenantId")
        claim, deployment = self._claim(deployment_id, tenant_id, message.publish_time)
        if claim not in (Claim.CLAIMED, Claim.RESUME):
            return str(claim)
        build_id = self.builds.find_build_for(deployment_id) if claim == Claim.RESUME else None
        if build_id is None:
            build_id = self.builds.submit(
                BuildRequest(
                    deployment_id=deployment_id,
                    app_id=deployment.app_id,
                    repo_url=deployment.repo_url,
                    branch=deployment.branch,
                    subdirectory=deployment.subdirectory,
                    image=str(deployment.image),
                )
            )
        # Only the first writer's build id counts; a racing duplicate found the same build by tag.
        status = self.deployments.change(
            deployment_id, lambda d: states.decide_build_recorded(states.existing(d), build_id, self.now())
        )
        if status == Status.SUPERSEDED:
            self.builds.cancel(build_id)  # a newer deploy overtook this one while it was being submitted
            return "superseded while submitting; build cancelled"
        log.info("deployment %s: build %s submitted", deployment_id, build_id)
        superseded = self.supersede_older(deployment)
        return f"submitted; superseded {superseded}" if superseded else "submitted"

    def _claim(self, deployment_id: str, tenant_id: str, published_at: datetime | None) -> tuple[Claim, Deployment]:
        def decide(found: Deployment | None) -> states.Decision[tuple[Claim, Deployment]]:
            d = states.check_owner(found, deployment_id, tenant_id)
            image = self.image_template.format(service=d.service_name, deployment=d.id)
            decision = states.decide_claim(d, self.now(), published_at, self.max_event_age, image)
            claimed = replace(d, image=image) if decision.outcome == Claim.CLAIMED else d
            return states.Decision((decision.outcome, claimed), decision.change)

        return self.deployments.change(deployment_id, decide)

    def supersede_older(self, newer: Deployment) -> list[str]:
        """Older deploys of the same app still queued or building will never be wanted: stop them.

        Cloud Build does not cancel superseded builds itself, and without this they pile up.
        """
        done = []
        for older in self.deployments.queued_or_building(newer.tenant_id, newer.app_id):
            if older.id == newer.id or older.created_at >= newer.created_at:
                continue
            build_id = self.deployments.change(
                older.id, lambda d: states.decide_superseded(states.existing(d), newer.id, self.now())
            )
            if build_id:
                try:
                    self.builds.cancel(build_id)
                except gexc.GoogleAPICallError as exc:  # already finished: nothing left to stop
                    log.info("build %s of superseded deployment %s not cancelled: %s", build_id, older.id, exc)
            done.append(older.id)
        return done


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"deploy-requested message has no {name}")
    return value
