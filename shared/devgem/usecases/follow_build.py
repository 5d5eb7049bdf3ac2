"""cloud-builds: follow a build's status and, on success, roll the image out and announce the URL.

Cloud Build publishes on every state change, repeats itself and may arrive out of order; and anyone
able to publish to the topic could write a message that looks like Cloud Build's. So a message is
only a hint: the build is read back from the Cloud Build API, and must be the deployment's (its
`dep-` tag, this project, the build id the deployment recorded) and in the state the message says.
Anything else is recorded as a rejected event and acknowledged.

The deployment only moves forward, so a late WORKING after SUCCESS changes nothing. The rollout is
safe to run again (the revision is named after the deployment), and the deployment becomes live, in
one atomic write with its ledger entry, only after the URL answered; a crash anywhere before that is
repaired by Pub/Sub redelivering SUCCESS or, once Pub/Sub gave up, by the watchdog.
"""

from __future__ import annotations

import logging
import re
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
from devgem.usecases.ports import Builds, Deployments, FailingTail, Services, UrlProbe

log = logging.getLogger(__name__)

_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # Cloud Build ids are UUIDs; nothing else reaches a URL


@dataclass(frozen=True)
class FollowBuild:
    deployments: Deployments
    builds: Builds
    services: Services
    probe: UrlProbe
    failing_tail: FailingTail
    public_url_template: str  # "{service}" is replaced by the Cloud Run service name
    probe_timeout_seconds: float
    project: str  # only builds of this project are Devgem's
    now: Callable[[], datetime] = clock.now

    def handle(self, message: PubSubMessage) -> str:
        build_id, status = message.attributes.get("buildId"), message.attributes.get("status")
        if status not in BUILD_STATUSES or not build_id or not _BUILD_ID.fullmatch(build_id):
            raise InvalidEvent(
                f"cloud-builds message has no valid buildId/status attributes ({build_id!r:.80}, {status!r:.40})"
            )
        try:
            told = cloud_build.parse_build(message.data)
        except ValueError as exc:
            raise InvalidEvent(f"cloud-builds message data is not a Build resource: {exc}") from exc
        deployment_id = cloud_build.deployment_id_from_tags(list(told.tags))
        if deployment_id is None:
            return "ignored: not a Devgem build"
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise InvalidEvent(f"build {build_id} names deployment {deployment_id}, which does not exist")
        build = self._as_cloud_build_says(build_id, deployment)
        said = cloudbuild_v1.Build.Status(build.status).name
        if said != status:  # an old notification, overtaken (or a made-up one): the current one is on its way
            return f"ignored: the message says {status}, Cloud Build says {said}"
        return self.apply(deployment, build)

    def _as_cloud_build_says(self, build_id: str, deployment: Deployment) -> cloudbuild_v1.Build:
        """Act only on what Cloud Build itself says of the build: a message is not proof, since anyone
        who can publish to the topic could have written it."""
        build = self.builds.get(build_id)
        if build is None:
            raise InvalidEvent(f"Cloud Build has no build {build_id} (the message names deployment {deployment.id})")
        if build.project_id != self.project:
            raise InvalidEvent(f"build {build_id} belongs to project {build.project_id}, not {self.project}")
        if cloud_build.deployment_id_from_tags(list(build.tags)) != deployment.id:
            raise InvalidEvent(f"build {build_id} is not a build of deployment {deployment.id}")
        if deployment.build_id and deployment.build_id != build_id:
            raise InvalidEvent(f"deployment {deployment.id} is built by {deployment.build_id}, not {build_id}")
        return build

    def apply(self, deployment: Deployment, build: cloudbuild_v1.Build) -> str:
        """Move the deployment as the build's state says; shared with the watchdog, which asks Cloud
        Build itself when a notification never came."""
        build_id, status = str(build.id), cloudbuild_v1.Build.Status(build.status).name
        if status in BUILD_IN_PROGRESS:
            return self._change(deployment.id, lambda d: states.decide_progress(d, build_id, status, self.now()))
        if status in BUILD_FAILED:
            outcome = self._fail(deployment.id, build_id, status, failure_summary(build, deployment))
            self.failing_tail.keep(deployment.id)  # the build's last 50 lines, once they have arrived
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
