"""A deployment and the state machine it moves through, as plain data and pure decisions.

Every change a handler makes to a deployment is decided here, from the deployment as read and what
happened, with no I/O: so each transition is unit-tested without Firestore, and the adapters only
carry the decided change out (atomically, guarded against a concurrent writer).

States only move forward, so repeated or reordered events are harmless:
queued -> building -> deploying -> live, or failed, cancelled, superseded. Every state that is not
final has a deadline (DEADLINES): the watchdog re-drives a step that went quiet and fails a deployment
that stayed too long, so none is left in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from devgem.domain.errors import InvalidEvent

T = TypeVar("T")


class Status(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    LIVE = "live"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


TERMINAL = frozenset({Status.LIVE, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED})
_RANK = {Status.QUEUED: 0, Status.BUILDING: 1, Status.DEPLOYING: 2}


def can_move(current: str, target: str) -> bool:
    """True if `target` is strictly ahead of `current`; a terminal state never moves."""
    cur, tgt = Status(current), Status(target)
    if cur in TERMINAL:
        return False
    if tgt in TERMINAL:
        return True
    return _RANK[tgt] > _RANK[cur]


class Trigger(StrEnum):
    """Who asked for the deployment: history reads as one list, so each says where it came from."""

    API = "api"  # a direct api call (the CLI, make run, a script)
    CHAT = "chat"  # the agent, on a user's message
    PUSH = "push"  # a GitHub push to the linked branch
    ROLLBACK = "rollback"


# Cloud Build statuses (google.devtools.cloudbuild.v1.Build.Status names).
BUILD_IN_PROGRESS = frozenset({"STATUS_UNKNOWN", "PENDING", "QUEUED", "WORKING"})
BUILD_SUCCESS = "SUCCESS"
BUILD_FAILED = frozenset({"FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
BUILD_STATUSES = BUILD_IN_PROGRESS | BUILD_FAILED | {BUILD_SUCCESS}

# Cloud Build stops a build that runs longer than this (the build's own timeout, set when submitted).
BUILD_TIMEOUT = timedelta(seconds=1200)

# A delivery that claimed the deployment holds it this long before another may resume its submit.
CLAIM_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Deployment:
    """One deploy of an app, as stored in `deployments/{id}` (field names in `to_doc`)."""

    id: str
    tenant_id: str
    app_id: str
    status: Status
    trigger: str
    repo_url: str
    branch: str
    subdirectory: str
    service_name: str
    created_at: datetime
    requested_by: str | None = None
    image: str | None = None
    build_id: str | None = None
    build_status: str | None = None
    build_claimed_at: datetime | None = None
    revision: str | None = None
    url: str | None = None
    error: str | None = None
    updated_at: datetime | None = None  # the last move or progress
    entered_at: datetime | None = None  # when it reached its current status
    redriven_at: datetime | None = None  # when the watchdog last re-drove its step
    rollback_of: str | None = None  # a rollback: the earlier deployment whose revision it brought back

    @classmethod
    def from_doc(cls, deployment_id: str, doc: dict[str, Any]) -> Deployment:
        return cls(
            id=deployment_id,
            tenant_id=str(doc.get("tenantId") or ""),
            app_id=str(doc.get("appId") or ""),
            status=Status(doc.get("status") or Status.QUEUED),
            trigger=str(doc.get("trigger") or Trigger.API),
            repo_url=str(doc.get("repoUrl") or ""),
            branch=str(doc.get("branch") or ""),
            subdirectory=str(doc.get("subdirectory") or ""),
            service_name=str(doc.get("serviceName") or ""),
            created_at=doc["createdAt"],
            requested_by=doc.get("requestedBy"),
            image=doc.get("image"),
            build_id=doc.get("buildId"),
            build_status=doc.get("buildStatus"),
            build_claimed_at=doc.get("buildClaimedAt"),
            revision=doc.get("revision"),
            url=doc.get("url"),
            error=doc.get("error"),
            updated_at=doc.get("updatedAt"),
            entered_at=(doc.get("stageTimes") or {}).get(str(doc.get("status") or Status.QUEUED)),
            redriven_at=doc.get("redrivenAt"),
            rollback_of=doc.get("rollbackOf"),
        )

    def to_doc(self) -> dict[str, Any]:
        """The document a new deployment is created with."""
        rollback = {"rollbackOf": self.rollback_of} if self.rollback_of else {}
        return rollback | {
            "tenantId": self.tenant_id,
            "appId": self.app_id,
            "trigger": self.trigger,
            "requestedBy": self.requested_by,
            "status": self.status.value,
            "repoUrl": self.repo_url,
            "branch": self.branch,
            "subdirectory": self.subdirectory,
            "serviceName": self.service_name,
            "image": self.image,
            "url": self.url,
            "buildId": self.build_id,
            "buildStatus": self.build_status,
            "revision": self.revision,
            "error": self.error,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "stageTimes": {self.status.value: self.created_at},
        }


@dataclass(frozen=True)
class Change:
    """What to write, atomically: fields of the deployment, and what must be written with them.

    `ledger_key` is created in the same write and makes the write fail if it exists already, so a
    redelivered message that reaches the same transition twice changes nothing the second time.
    """

    fields: dict[str, Any]
    ledger_key: str | None = None
    app_fields: dict[str, Any] = field(default_factory=dict)  # the deployment's app, updated with it


@dataclass(frozen=True)
class Decision(Generic[T]):
    """The outcome to report, and the change to make (None: write nothing)."""

    outcome: T
    change: Change | None = None


def moved(status: Status, now: datetime, **fields: Any) -> dict[str, Any]:
    """The fields of a move to `status`; stageTimes keeps when each state was reached, for deadlines."""
    return {"status": status.value, "updatedAt": now, f"stageTimes.{status.value}": now, **fields}


class Claim(StrEnum):
    CLAIMED = "claimed"  # this delivery moved it queued -> building: submit the build
    RESUME = "resume"  # an earlier delivery claimed it and stopped before recording a build: find or submit
    DUPLICATE = "duplicate"  # already has a build, or is past building: nothing to do
    IN_FLIGHT = "in flight"  # another delivery claimed it moments ago; the watchdog resumes it if that one dies
    EXPIRED = "expired"  # the request waited longer than events may live: failed, not built


def decide_claim(
    d: Deployment, now: datetime, published_at: datetime | None, max_age: timedelta, image: str
) -> Decision[Claim]:
    """deploy-requested: claim the deployment before submitting, so two deliveries submit one build."""
    if d.status == Status.QUEUED and published_at is not None and now - published_at > max_age:
        error = "the deploy request expired before it was picked up; deploy again"
        return Decision(Claim.EXPIRED, Change(moved(Status.FAILED, now, error=error)))
    if d.status == Status.QUEUED:
        return Decision(Claim.CLAIMED, Change(moved(Status.BUILDING, now, image=image, buildClaimedAt=now)))
    if d.build_id or not can_move(d.status, Status.DEPLOYING):
        return Decision(Claim.DUPLICATE)
    if d.build_claimed_at and now - d.build_claimed_at < CLAIM_LEASE:
        # Acked, not retried: Pub/Sub's few quick retries would all land inside the lease and end in
        # the dead-letter topic; the watchdog resumes the claim once the lease has run out.
        return Decision(Claim.IN_FLIGHT)
    return Decision(Claim.RESUME, Change({"buildClaimedAt": now}))


def decide_build_recorded(d: Deployment, build_id: str, now: datetime) -> Decision[Status]:
    """Keep the first build id; the outcome is the status as it is now (superseded meanwhile?)."""
    if d.build_id:
        return Decision(d.status)
    return Decision(d.status, Change({"buildId": build_id, "updatedAt": now}))


def decide_superseded(d: Deployment, newer_id: str, now: datetime) -> Decision[str | None]:
    """An older deploy still queued or building is never wanted once a newer one started.

    The outcome is the build to cancel, if it had one. One already deploying is left to finish: its
    revision is about to take traffic and the newer one will replace it.
    """
    if not can_move(d.status, Status.SUPERSEDED) or d.status == Status.DEPLOYING:
        return Decision(None)
    error = f"superseded by deployment {newer_id}"
    return Decision(d.build_id, Change(moved(Status.SUPERSEDED, now, error=error, supersededBy=newer_id)))


def decide_progress(d: Deployment, build_id: str, build_status: str, now: datetime) -> Decision[str]:
    """A build still on its way (PENDING, QUEUED, WORKING): note it; a late one after the end changes nothing."""
    if not can_move(d.status, Status.DEPLOYING):
        return Decision("ignored: deployment already past building")
    if d.build_status == build_status and d.build_id:
        return Decision(f"progress: {build_status} (already noted)")
    fields: dict[str, Any] = {"buildStatus": build_status, "buildId": d.build_id or build_id, "updatedAt": now}
    if d.status == Status.QUEUED:
        fields.update(moved(Status.BUILDING, now))
    return Decision(f"progress: {build_status}", Change(fields))


def decide_failed(d: Deployment, build_id: str, build_status: str, error: str, now: datetime) -> Decision[str]:
    """The build failed, or its revision did not start or answer: failed, with why."""
    if not can_move(d.status, Status.FAILED):
        return Decision("ignored: deployment already finished")
    fields = moved(Status.FAILED, now, buildStatus=build_status, buildId=d.build_id or build_id, error=error)
    return Decision(f"failed: {error}", Change(fields, ledger_key=f"build:{build_id}:{build_status}"))


def decide_deploying(d: Deployment, build_id: str, now: datetime) -> Decision[bool]:
    """The build succeeded: start rolling out (True), unless the deployment is already finished."""
    if d.status == Status.DEPLOYING:
        return Decision(True)  # an earlier attempt stopped mid-rollout; carry on
    if not can_move(d.status, Status.DEPLOYING):
        return Decision(False)
    fields = moved(Status.DEPLOYING, now, buildStatus=BUILD_SUCCESS, buildId=d.build_id or build_id)
    return Decision(True, Change(fields))


def decide_live(d: Deployment, build_id: str, revision: str, url: str, now: datetime) -> Decision[str]:
    """The revision serves and its URL answered: live, and the app's live release, in one write."""
    if not can_move(d.status, Status.LIVE):
        return Decision("ignored: deployment already finished")
    app_fields = {"liveRevision": revision, "liveDeploymentId": d.id, "url": url, "updatedAt": now}
    return Decision(
        f"live: {url}",
        Change(
            moved(Status.LIVE, now, revision=revision, url=url),
            ledger_key=f"build:{build_id}:{BUILD_SUCCESS}",
            app_fields=app_fields,
        ),
    )


def decide_enqueue_failed(d: Deployment, now: datetime) -> Decision[str]:
    """The request was stored but could not be announced: fail it rather than leave it queued forever."""
    if not can_move(d.status, Status.FAILED):
        return Decision("ignored: deployment already moved")
    error = "could not enqueue the deploy; try again"
    return Decision("failed: not enqueued", Change(moved(Status.FAILED, now, error=error)))


def check_owner(d: Deployment | None, deployment_id: str, tenant_id: str) -> Deployment:
    """An event naming a deployment that is absent or another tenant's is a bad event, never retried."""
    if d is None:
        raise InvalidEvent(f"deployment {deployment_id} does not exist")
    if d.tenant_id != tenant_id:
        raise InvalidEvent(f"deployment {deployment_id} does not belong to tenant {tenant_id}")
    return d


def existing(d: Deployment | None) -> Deployment:
    """Deployments are never deleted while messages about them are in flight; one missing is a bad event."""
    if d is None:
        raise InvalidEvent("the deployment disappeared")
    return d
