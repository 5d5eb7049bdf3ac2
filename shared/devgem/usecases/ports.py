"""What the use cases talk to, as Protocols: Firestore, Cloud Build, Cloud Run, the URL probe, Pub/Sub, Slack.

The production adapters (devgem.adapters) implement these; the unit tests use in-memory fakes of the
same shape, so every transition of a deployment runs without a server. `devgem.bootstrap` wires the
production ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from google.cloud.devtools import cloudbuild_v1

from devgem.adapters.cloud_build import BuildRequest
from devgem.adapters.cloud_run import Rollout, Serving
from devgem.adapters.slack import IncidentNotice, SlackThread
from devgem.domain.deployment import Decision, Deployment
from devgem.domain.identity import Identity
from devgem.domain.incidents import Incident

T = TypeVar("T")


class Deployments(Protocol):
    """The `deployments` collection. `change` reads, decides and writes atomically, retrying a lost race."""

    def get(self, deployment_id: str) -> Deployment | None: ...

    def create(self, deployment: Deployment) -> None: ...

    def change(
        self,
        deployment_id: str,
        decide: Callable[[Deployment | None], Decision[T]],
        on_already_done: T | None = None,
    ) -> T:
        """Apply `decide`'s change; if its ledger key exists already, return `on_already_done` (or raise)."""
        ...

    def queued_or_building(self, tenant_id: str, app_id: str) -> list[Deployment]: ...

    def of_app(self, tenant_id: str, app_id: str) -> list[Deployment]:
        """Every deployment of the app, in no particular order (its history)."""
        ...

    def unfinished(self) -> list[Deployment]:
        """Every tenant's deployments that are not in a final state (for the watchdog)."""
        ...


class Apps(Protocol):
    def get(self, tenant_id: str, app_id: str) -> dict[str, Any]:
        """The app as stored, with its id; another tenant's app is NotFound, like an absent one."""
        ...

    def create(self, app_id: str, app: dict[str, Any]) -> None: ...

    def reserve_service_name(self, name: str, tenant_id: str, app_id: str) -> None:
        """Create-if-absent across every tenant; Conflict if the name is taken."""
        ...


class Builds(Protocol):
    """Cloud Build: the build fetches the source from git itself; builds are found again by tag."""

    def submit(self, request: BuildRequest) -> str: ...

    def find_build_for(self, deployment_id: str) -> str | None: ...

    def get(self, build_id: str) -> cloudbuild_v1.Build | None:
        """The build as Cloud Build reports it; None if there is no such build."""
        ...

    def cancel(self, build_id: str) -> None: ...


class Services(Protocol):
    """Cloud Run: a revision named after the deployment, with all traffic."""

    def roll_out(self, rollout: Rollout) -> Serving: ...

    def move_traffic(self, service: str, revision: str) -> Serving:
        """All traffic to an existing revision (a rollback); RevisionDeleted if it is gone."""
        ...


class UrlProbe(Protocol):
    def answers(self, url: str, timeout_seconds: float) -> tuple[bool, str]: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: dict[str, Any], **attributes: str) -> str: ...


class FailingTail(Protocol):
    """Keeps a failed build's last lines on its deployment, once they have arrived."""

    def keep(self, deployment_id: str) -> object: ...


class Notifier(Protocol):
    """Slack (devgem.adapters.slack.SlackNotifier): an incident's message, then replies in its thread."""

    def post_incident(self, notice: IncidentNotice) -> SlackThread: ...

    def reply(self, tenant_id: str, thread: SlackThread, text: str) -> SlackThread: ...


class SlackUsers(Protocol):
    def user_for(self, tenant_id: str, slack_team_id: str, slack_user_id: str) -> str | None:
        """The Devgem user of this tenant that the Slack user is; None if nobody mapped them."""
        ...


class RollsBack(Protocol):
    """What a Slack button needs of the rollback use case (devgem.usecases.roll_back.RollBack)."""

    def roll_back(self, who: Identity, app_id: str, to: str | None = None) -> object: ...


class Incidents(Protocol):
    """The `incidents` collection (devgem.adapters.incidents). `record` reads, decides and writes
    atomically, guarded by the update time it read, and writes the signals' insertIds in the same batch."""

    def get(self, incident_id: str) -> Incident | None: ...

    def record(
        self, incident_id: str, decide: Callable[[Incident | None], Incident], insert_ids: Sequence[str]
    ) -> Incident: ...

    def stored_ids(self, incident_id: str, since: datetime) -> set[str]:
        """insertIds recorded for this incident since `since` (by any instance): redeliveries' lookup."""
        ...

    def change(self, incident_id: str, decide: Callable[[Incident], Incident | None]) -> Incident | None:
        """Apply `decide` to the stored incident; None from it (or no incident) writes nothing."""
        ...


class IncidentAlerts(Protocol):
    """Tells people about an incident (Slack, the app's chat sessions). Called once per notice the
    incident records; `incident.pending` (kind and sequence number) is a key a sender may dedupe on."""

    def incident_opened(self, incident: Incident) -> None: ...

    def incident_escalated(self, incident: Incident) -> None: ...


class LogContext(Protocol):
    """An app's stored log lines (devgem.logs.reader), for an incident's context."""

    def lines_before(self, tenant_id: str, app_id: str, at: datetime, limit: int) -> list[str]: ...


class Delivered(Protocol):
    """A pulled message for a batch use case (devgem.entrypoints.pull_worker.Delivery), as much of it as this needs."""

    @property
    def data(self) -> bytes: ...

    @property
    def redelivered(self) -> bool: ...

    @property
    def published(self) -> datetime | None: ...
