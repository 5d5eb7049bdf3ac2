"""Roll an app back to an earlier release: the api, the CLI, the Slack button and the chat all come here.

No build: traffic moves back to the revision the earlier deployment made, which still holds that
release's image and configuration (devgem.domain.rollback says why that restores the config). The
rollback is recorded as a deployment first, as `deploying`, so that another deploy or rollback of the
app sees it in flight and is refused, and so that history stays one list. It is announced live only
after the URL answered, in the same write that makes it the app's live release; the next deploy pins
traffic to its own revision again (cloud_run.roll_out), so nothing stays pinned to the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from devgem import clock
from devgem.domain import deployment as states
from devgem.domain import rollback, validation
from devgem.domain.deployment import Deployment, Trigger
from devgem.domain.errors import RetryLater
from devgem.domain.identity import Identity
from devgem.domain.rollback import RevisionDeleted, RolloutInFlight
from devgem.usecases.ports import Apps, Deployments, Services, UrlProbe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollBack:
    deployments: Deployments
    apps: Apps
    services: Services
    probe: UrlProbe
    public_url_template: str  # "{service}" is replaced by the Cloud Run service name
    probe_timeout_seconds: float
    now: Callable[[], datetime] = clock.now
    new_id: Callable[[], str] = clock.new_id

    def roll_back(self, who: Identity, app_id: str, to: str | None = None) -> Deployment:
        """The rollback deployment as it ended: live, or failed with why. Refusals raise before anything moves."""
        app = self.apps.get(who.tenant_id, validation.identifier(app_id, "app id"))
        if to is not None:
            validation.identifier(to, "deployment id")
        history = self.deployments.of_app(who.tenant_id, app["id"])
        rollback.refuse_if_in_flight(history)
        target = rollback.pick_target(app, history, to)
        record = rollback.rollback_deployment(app, target, self.new_id(), who.user_id, self.now())
        self.deployments.create(record)
        self._yield_to_a_rival(record)
        return self._carry_out(record)

    def _yield_to_a_rival(self, record: Deployment) -> None:
        other = rollback.rival(record, self.deployments.of_app(record.tenant_id, record.app_id))
        if other is not None:
            what = "a rollback" if other.trigger == Trigger.ROLLBACK else "a deploy"
            error = f"{what} of this app started at the same time (deployment {other.id}); wait for it to finish"
            self._fail(record, error)
            raise RolloutInFlight(error)

    def _carry_out(self, record: Deployment) -> Deployment:
        revision = str(record.revision)
        try:
            self.services.move_traffic(record.service_name, revision)
        except RevisionDeleted as exc:
            self._fail(record, str(exc))
            raise
        except Exception as exc:
            self._fail(record, f"traffic could not be moved to revision {revision}: {exc}")
            raise RetryLater("the rollback could not move traffic; try again in a moment") from exc
        url = self.public_url_template.format(service=record.service_name)
        ok, seen = self.probe.answers(url, self.probe_timeout_seconds)
        if not ok:
            # Traffic stays on the earlier revision: going back to the release the user is fleeing
            # is not ours to decide.
            return self._fail(record, f"{url} did not answer ({seen}) after traffic moved to revision {revision}")
        outcome = self.deployments.change(
            record.id, lambda d: rollback.decide_rollback_live(states.existing(d), url, self.now())
        )
        log.info("rollback %s of app %s to %s: %s", record.id, record.app_id, revision, outcome)
        return self._current(record.id)

    def _fail(self, record: Deployment, error: str) -> Deployment:
        self.deployments.change(
            record.id, lambda d: rollback.decide_rollback_failed(states.existing(d), error, self.now())
        )
        log.warning("rollback %s of app %s failed: %s", record.id, record.app_id, error)
        return self._current(record.id)

    def _current(self, deployment_id: str) -> Deployment:
        return states.existing(self.deployments.get(deployment_id))
