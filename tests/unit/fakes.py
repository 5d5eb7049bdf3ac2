"""In-memory stand-ins for the use cases' ports (devgem.usecases.ports), for unit tests of pure logic.

They keep the contracts the use cases rely on: a change is atomic and its ledger key makes a repeat
fail; a build is found again by its deployment's tag; a revision is named by the caller. Failures
are injected per call (`fail_next`), to replay a crash at each step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud.devtools import cloudbuild_v1

from devgem.adapters.cloud_build import BuildRequest, deployment_tag, parse_build
from devgem.adapters.cloud_run import Rollout, Serving
from devgem.adapters.pubsub import PubSubMessage
from devgem.adapters.slack import IncidentNotice, SlackThread
from devgem.domain.deployment import TERMINAL, Decision, Deployment, Status
from devgem.domain.errors import Conflict, NotFound
from devgem.domain.identity import Identity
from devgem.domain.rollback import RevisionDeleted

T = TypeVar("T")
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PROJECT = "devgem-test"


class Crash(Exception):
    """A process dying mid-step: the message is redelivered later."""


@dataclass
class FakeClock:
    at: datetime = START

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class FailOnce:
    """`fail_next("submit", exc)` makes the next submit raise exc, as a crash or an outage would."""

    def __init__(self) -> None:
        self._failures: dict[str, list[BaseException]] = {}

    def fail_next(self, method: str, exc: BaseException) -> None:
        assert callable(getattr(self, method)), method
        self._failures.setdefault(method, []).append(exc)

    def _maybe_fail(self, method: str) -> None:
        if self._failures.get(method):
            raise self._failures[method].pop(0)


@dataclass
class InMemoryDeployments(FailOnce):
    docs: dict[str, Deployment] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # every field ever written, by deployment
    ledger: set[str] = field(default_factory=set)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0

    def __post_init__(self) -> None:
        FailOnce.__init__(self)

    def get(self, deployment_id: str) -> Deployment | None:
        return self.docs.get(deployment_id)

    def create(self, deployment: Deployment) -> None:
        self._maybe_fail("create")
        assert deployment.id not in self.docs, "create must not overwrite"
        self.docs[deployment.id] = deployment
        self.fields[deployment.id] = deployment.to_doc()
        self.writes += 1

    def change(
        self,
        deployment_id: str,
        decide: Callable[[Deployment | None], Decision[T]],
        on_already_done: T | None = None,
    ) -> T:
        decision = decide(self.docs.get(deployment_id))
        change = decision.change
        if change is None:
            return decision.outcome
        self._maybe_fail("change")
        if change.ledger_key and change.ledger_key in self.ledger:
            if on_already_done is None:
                raise gexc.AlreadyExists(f"ledger {change.ledger_key}")
            return on_already_done
        if change.ledger_key:
            self.ledger.add(change.ledger_key)
        current = self.docs[deployment_id]
        self.fields[deployment_id].update(change.fields)
        self.docs[deployment_id] = _apply(current, change.fields)
        if change.app_fields:
            self.apps.setdefault(current.app_id, {}).update(change.app_fields)
        self.writes += 1
        return decision.outcome

    def queued_or_building(self, tenant_id: str, app_id: str) -> list[Deployment]:
        return [
            d
            for d in self.docs.values()
            if d.tenant_id == tenant_id and d.app_id == app_id and d.status in (Status.QUEUED, Status.BUILDING)
        ]

    def of_app(self, tenant_id: str, app_id: str) -> list[Deployment]:
        return [d for d in self.docs.values() if d.tenant_id == tenant_id and d.app_id == app_id]

    def unfinished(self) -> list[Deployment]:
        return [d for d in self.docs.values() if d.status not in TERMINAL]


def _apply(d: Deployment, fields: dict[str, Any]) -> Deployment:
    """The deployment as Firestore would hold it after an update (dotted keys set nested fields)."""
    doc = d.to_doc() | {"stageTimes": {}}
    doc.update({k: v for k, v in _doc_of(d).items() if v is not None})
    for key, value in fields.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            doc.setdefault(outer, {})[inner] = value
        else:
            doc[key] = value
    return Deployment.from_doc(d.id, doc)


def _doc_of(d: Deployment) -> dict[str, Any]:
    """The fields from_doc reads that to_doc (a new deployment's document) leaves out."""
    stage_times = {d.status.value: d.entered_at} if d.entered_at else {}
    return {
        "buildClaimedAt": d.build_claimed_at,
        "redrivenAt": d.redriven_at,
        "updatedAt": d.updated_at,
        "stageTimes": stage_times or None,
    }


@dataclass
class FakeBuilds(FailOnce):
    submitted: list[BuildRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    by_tag: dict[str, str] = field(default_factory=dict)
    crash_after_submit: bool = False  # the build exists, but the caller dies before hearing its id
    builds: dict[str, cloudbuild_v1.Build] = field(default_factory=dict)  # what Cloud Build says of each

    def __post_init__(self) -> None:
        FailOnce.__init__(self)

    def submit(self, request: BuildRequest) -> str:
        self._maybe_fail("submit")
        build_id = f"build-{len(self.submitted) + 1}"
        self.submitted.append(request)
        self.by_tag[deployment_tag(request.deployment_id)] = build_id
        self.builds[build_id] = cloudbuild_v1.Build(
            id=build_id,
            project_id=PROJECT,
            status=cloudbuild_v1.Build.Status.QUEUED,
            tags=["devgem", deployment_tag(request.deployment_id)],
        )
        if self.crash_after_submit:
            self.crash_after_submit = False
            raise Crash("died after submitting")
        return build_id

    def find_build_for(self, deployment_id: str) -> str | None:
        return self.by_tag.get(deployment_tag(deployment_id))

    def get(self, build_id: str) -> cloudbuild_v1.Build | None:
        self._maybe_fail("get")
        return self.builds.get(build_id)

    def now_in(self, message: PubSubMessage) -> None:
        """Cloud Build is in the state the message reports (it published it just now)."""
        try:
            build = parse_build(message.data)
        except ValueError:
            return  # not a build at all: Cloud Build has nothing to say about it
        self.builds[build.id] = build

    def cancel(self, build_id: str) -> None:
        self._maybe_fail("cancel")
        self.cancelled.append(build_id)


@dataclass
class FakeServices(FailOnce):
    rollouts: list[Rollout] = field(default_factory=list)
    serving: dict[str, str] = field(default_factory=dict)  # service -> revision with all traffic
    revisions: set[str] = field(default_factory=set)  # every revision that exists (not deleted)
    moves: list[tuple[str, str]] = field(default_factory=list)  # traffic moved to an existing revision

    def __post_init__(self) -> None:
        FailOnce.__init__(self)

    def roll_out(self, rollout: Rollout) -> Serving:
        self._maybe_fail("roll_out")
        self.rollouts.append(rollout)
        self.serving[rollout.service] = rollout.revision
        self.revisions.add(rollout.revision)
        return Serving(revision=rollout.revision, uri=f"https://{rollout.service}.run.app")

    def move_traffic(self, service: str, revision: str) -> Serving:
        self._maybe_fail("move_traffic")
        if revision not in self.revisions:
            raise RevisionDeleted(f"revision {revision} was deleted; deploy again to bring that code back")
        self.moves.append((service, revision))
        self.serving[service] = revision
        return Serving(revision=revision, uri=f"https://{service}.run.app")


@dataclass
class FakeProbe:
    result: tuple[bool, str] = (True, "HTTP 200")
    probed: list[str] = field(default_factory=list)

    def answers(self, url: str, timeout_seconds: float) -> tuple[bool, str]:
        self.probed.append(url)
        return self.result


@dataclass
class FakeTail:
    kept: list[str] = field(default_factory=list)

    def keep(self, deployment_id: str) -> object:
        self.kept.append(deployment_id)
        return None


@dataclass
class FakePublisher(FailOnce):
    published: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        FailOnce.__init__(self)

    def publish(self, topic: str, data: dict[str, Any], **attributes: str) -> str:
        self._maybe_fail("publish")
        self.published.append((topic, data, attributes))
        return str(len(self.published))


@dataclass
class FakeApps:
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_names: dict[str, tuple[str, str]] = field(default_factory=dict)

    def get(self, tenant_id: str, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id)
        if app is None or app["tenantId"] != tenant_id:
            raise NotFound(f"app {app_id} not found")
        return {**app, "id": app_id}

    def create(self, app_id: str, app: dict[str, Any]) -> None:
        assert app_id not in self.apps, "create must not overwrite"
        self.apps[app_id] = app

    def reserve_service_name(self, name: str, tenant_id: str, app_id: str) -> None:
        if name in self.service_names:
            raise Conflict(f"service name {name} is taken")
        self.service_names[name] = (tenant_id, app_id)


@dataclass
class FakeNotifier(FailOnce):
    """Slack as the Notifier port: every post kept in order, threads by their parent's ts."""

    posts: list[tuple[SlackThread, IncidentNotice]] = field(default_factory=list)
    replies: list[tuple[str, SlackThread, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        FailOnce.__init__(self)

    def post_incident(self, notice: IncidentNotice) -> SlackThread:
        self._maybe_fail("post_incident")
        thread = SlackThread(channel="C-TEST", ts=f"1.{len(self.posts) + len(self.replies) + 1:06d}")
        self.posts.append((thread, notice))
        return thread

    def reply(self, tenant_id: str, thread: SlackThread, text: str) -> SlackThread:
        self._maybe_fail("reply")
        self.replies.append((tenant_id, thread, text))
        return SlackThread(channel=thread.channel, ts=f"1.{len(self.posts) + len(self.replies):06d}")


@dataclass
class FakeSlackUsers:
    """(tenant, slack user) -> Devgem user; `team` set: only that workspace's user of that id."""

    users: dict[tuple[str, str], str] = field(default_factory=dict)
    team: str = ""

    def user_for(self, tenant_id: str, slack_team_id: str, slack_user_id: str) -> str | None:
        if self.team and slack_team_id != self.team:
            return None
        return self.users.get((tenant_id, slack_user_id))


@dataclass
class FakeRollBack:
    calls: list[tuple[Identity, str, str | None]] = field(default_factory=list)

    def roll_back(self, who: Identity, app_id: str, to: str | None = None) -> object:
        self.calls.append((who, app_id, to))
        return {"id": "rollback-deployment"}


def deployment(status: Status = Status.QUEUED, **overrides: Any) -> Deployment:
    base = Deployment(
        id="dep000000001",
        tenant_id="tenant-a",
        app_id="app000000001",
        status=status,
        trigger="api",
        repo_url="https://github.com/ana/shop",
        branch="main",
        subdirectory="",
        service_name="shop-abc123",
        created_at=START,
    )
    return replace(base, **overrides)


def deploy_requested(
    d: Deployment, published_at: datetime | None = START, tenant_id: str | None = None
) -> PubSubMessage:
    body = {"deploymentId": d.id, "tenantId": tenant_id or d.tenant_id, "appId": d.app_id}
    return PubSubMessage(json.dumps(body).encode(), {"deploymentId": d.id}, "m-1", published_at)


def build_status(
    deployment_id: str | None,
    status: str,
    build_id: str = "build-1",
    failure_type: str = "",
    detail: str = "",
) -> PubSubMessage:
    """The Build resource Cloud Build publishes to cloud-builds on a status change."""
    build = cloudbuild_v1.Build(
        id=build_id,
        project_id=PROJECT,
        status=getattr(cloudbuild_v1.Build.Status, status),
        tags=["devgem", deployment_tag(deployment_id)] if deployment_id else ["someone-else"],
        status_detail=detail,
    )
    if failure_type:
        build.failure_info = cloudbuild_v1.Build.FailureInfo(
            type_=getattr(cloudbuild_v1.Build.FailureInfo.FailureType, failure_type), detail=detail
        )
    data = cloudbuild_v1.Build.to_json(build).encode()
    return PubSubMessage(data, {"buildId": build_id, "status": status}, f"m-{status}", START)
