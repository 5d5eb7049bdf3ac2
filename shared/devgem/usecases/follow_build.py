"""cloud-builds: follow a build's status and, on success, roll the image out and announce the URL.

Cloud Build publishes on every state change, repeats itself and may arrive out of order. The
deployment only moves forward, so a late WORKING after SUCCESS changes nothing. The rollout is safe to
run again (the revision is named after the deployment), and the deployment becomes live, in one
atomic write with its ledger entry, only after the URL answered; a crash anywhere before that is
repaired by Pub/Sub redelivering SUCCESS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc
from google.cloud.devtools import cloudbuild_v1

from devgem import clock
from devgem.adapters import cloud_build
from devgem.adapters.cloud_run import Rollout
from devgem.adapters.pubsub import PubSubMessage
from devgem.domain import deployment as states
from devgem.domain import naming
from devgem.domain.deployment import BUILD_FAILED, BUILD_IN_PROGRESS, BUILD_STATUSES, BUILD_SUCCESS, Deployment
from devgem.domain.errors import InvalidEvent
from devgem.usecases.ports import Deployments, FailingTail, Services, UrlProbe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowBuild:
    deployments: Deployments
    services: Services
    probe: UrlProbe
    failing_tail: FailingTail
    public_url_template: str  # "{service}" is replaced by the Cloud Run service name
    probe_timeout_seconds: float
    now: Callable[[], datetime] = clock.now

    def handle(self, message: PubSubMessage) -> str:
        build_id, status = message.attributes.get("buildId"), message.attributes.get("status")
        if status not in BUILD_STATUSES or not build_id:
            raise InvalidEvent(
                f"cloud-builds message has no valid buildId/status attributes ({build_id!r}, {status!r})"
            )
        try:
            build = cloud_build.parse_build(message.data)
        except ValueError as exc:
            raise InvalidEvent(f"cloud-builds message data is not a Build resource: {exc}") from exc
        deployment_id = cloud_build.deployment_id_from_tags(list(build.tags))
        if deployment_id is None:
            return "ignored: not a Devgem build"
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise InvalidEvent(f"build {build_id} names deployment {deployment_id}, which does not exist")
        if status in BUILD_IN_PROGRESS:
            return self._change(deployment_id, lambda d: states.decide_progress(d, build_id, status, self.now()))
        if status in BUILD_FAILED:
            outcome = self._fail(deployment_id, build_id, status, failure_summary(build, deployment))
            self.failing_tail.keep(deployment_id)  # the build's last 50 lines, once they have arrived
            return outcome
        return self._roll_out(deployment, build_id)

    def _change(self, deployment_id: str, decide: Callable[[Deployment], states.Decision[str]]) -> str:
        return self.deployments.change(deployment_id, lambda d: decide(states.existing(d)), on_already_done="duplicate")

    def _fail(self, deployment_id: str, build_id: str, build_status: str, error: str) -> str:
        return self._change(deployment_id, lambda d: states.decide_failed(d, build_id, build_status, error, self.now()))

    def _roll_out(self, deployment: Deployment, build_id: str) -> str:
        started = self.deployments.change(
            deployment.id, lambda d: states.decide_deploying(states.existing(d), build_id, self.now())
        )
        if not started:
            return "ignored: deployment already finished"
        service = deployment.service_name
        rollout = Rollout(
            service=service,
            revision=naming.revision_name(service, deployment.id),
            image=str(deployment.image),
            labels={"devgem-tenant": deployment.tenant_id, "devgem-app": deployment.app_id, "devgem-managed": "true"},
        )
        try:
            serving = self.services.roll_out(rollout)
        except Exception as exc:
            if _is_permanent(exc):
                return self._fail(deployment.id, build_id, BUILD_SUCCESS, f"the new revision did not start: {exc}")
            raise
        url = self.public_url_template.format(service=service)
        ok, seen = self.probe.answers(url, self.probe_timeout_seconds)
        if not ok:
            return self._fail(deployment.id, build_id, BUILD_SUCCESS, f"{url} did not answer ({seen})")
        outcome = self._change(
            deployment.id, lambda d: states.decide_live(d, build_id, serving.revision, url, self.now())
        )
        log.info("deployment %s: %s (revision %s)", deployment.id, outcome, serving.revision)
        return outcome


def failure_summary(build: cloudbuild_v1.Build, deployment: Deployment) -> str:
    """Why a build failed, in the user's words."""
    detail = build.failure_info.detail or build.status_detail
    status = cloudbuild_v1.Build.Status(build.status).name if build.status else "FAILURE"
    if build.failure_info.type_ == cloudbuild_v1.Build.FailureInfo.FailureType.FETCH_SOURCE_FAILED:
        return f"could not fetch the source: {detail or 'branch ' + (deployment.branch or '?') + ' not found'}"
    if status == "TIMEOUT":
        return f"the build took longer than {cloud_build.BUILD_TIMEOUT_SECONDS} s and was stopped"
    if status == "CANCELLED":
        return "the build was cancelled"
    return f"the build failed ({status}): {detail or 'see the build log'}"


def _is_permanent(exc: Exception) -> bool:
    """A revision that fails to start is the app's fault; anything else (network, 5xx) is retried."""
    return isinstance(exc, (gexc.InvalidArgument, gexc.FailedPrecondition, gexc.AlreadyExists)) or (
        isinstance(exc, gexc.GoogleAPICallError) and exc.code is not None and 400 <= int(exc.code) < 500
    )
