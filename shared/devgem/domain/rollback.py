"""A rollback: which earlier release to bring back, when to refuse, and how it is recorded.

A rollback is a deployment like any other (trigger `rollback`), so an app's history stays one list and
"what is live, since when, and who asked" has one answer. It builds nothing: it moves traffic back to a
revision an earlier deployment made. That revision keeps its own template, so the image and the
configuration it ran with (env vars, secret references) come back exactly as they were then: deployments
carry no configuration of their own today, and restoring the revision is what restores the release.

It is created directly as `deploying` (there is no build to wait for) and ends `live` or `failed`, like
the last step of a deploy. Pure decisions; the use case (usecases/roll_back) does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from devgem.domain.deployment import Change, Decision, Deployment, Status, Trigger, can_move, moved
from devgem.domain.errors import Conflict, InvalidInput, NotFound


class NothingEarlier(Conflict):
    """The app has no earlier release that went live: there is nothing to go back to."""


class RolloutInFlight(Conflict):
    """Another deploy or rollback is moving traffic right now; two at once would race for the last word."""


class RevisionDeleted(Conflict):
    """The target's revision no longer exists on Cloud Run, so only a new deploy can bring that code back."""


def refuse_if_in_flight(history: Iterable[Deployment]) -> None:
    """A deployment in `deploying` is about to move traffic; one rollback beside it would be undone or undo it."""
    busy = sorted((d for d in history if d.status == Status.DEPLOYING), key=lambda d: d.created_at)
    if busy:
        d = busy[0]
        what = "a rollback" if d.trigger == Trigger.ROLLBACK else "a deploy"
        raise RolloutInFlight(f"{what} of this app is rolling out (deployment {d.id}); wait for it to finish")


def rival(record: Deployment, history: Iterable[Deployment]) -> Deployment | None:
    """Another rollout that started beside this rollback, seen once the rollback is recorded.

    Two rollbacks may both pass refuse_if_in_flight before either is written. Once written, each sees
    the other (or the later one does), and only the later yields: a deploy always wins, a rollback
    recorded first wins. So at most one rollback moves traffic, and no lock is needed.
    """
    order = (record.created_at, record.id)
    return next(
        (
            d
            for d in sorted(history, key=lambda d: (d.created_at, d.id))
            if d.id != record.id
            and d.status == Status.DEPLOYING
            and (d.trigger != Trigger.ROLLBACK or (d.created_at, d.id) < order)
        ),
        None,
    )


def pick_target(app: dict[str, Any], history: list[Deployment], to: str | None) -> Deployment:
    """The release to bring back: the one named by `to`, or the newest release older than the live one.

    "Older than the live one" counts from the release that first made the live revision, so rolling back
    twice walks further back instead of bouncing between two releases.
    """
    live_revision = app.get("liveRevision")
    target = _named(history, to) if to else _newest_before_live(history, live_revision)
    if target.revision == live_revision:
        raise Conflict(f"deployment {target.id} (revision {target.revision}) is already live")
    return target


def _named(history: list[Deployment], to: str) -> Deployment:
    found = next((d for d in history if d.id == to), None)
    if found is None:
        raise NotFound(f"deployment {to} not found in this app's history")
    if found.status != Status.LIVE or not found.revision:
        raise InvalidInput(f"deployment {to} never went live ({found.status.value}); pick one that did")
    return found


def _releases(history: Iterable[Deployment]) -> list[Deployment]:
    """Deployments that went live with a revision they built, oldest first (a rollback built nothing)."""
    went_live = (d for d in history if d.status == Status.LIVE and d.revision and d.trigger != Trigger.ROLLBACK)
    return sorted(went_live, key=lambda d: d.created_at)


def _newest_before_live(history: list[Deployment], live_revision: str | None) -> Deployment:
    releases = _releases(history)
    live = next((d for d in releases if d.revision == live_revision), None)
    earlier = [d for d in releases if d.revision != live_revision and (live is None or d.created_at < live.created_at)]
    if not earlier:
        raise NothingEarlier("there is no earlier release that went live to roll back to")
    return earlier[-1]


def rollback_deployment(
    app: dict[str, Any], target: Deployment, new_id: str, requested_by: str | None, now: datetime
) -> Deployment:
    """The record of the rollback, already `deploying`: its revision and image are the target's."""
    return Deployment(
        id=new_id,
        tenant_id=target.tenant_id,
        app_id=target.app_id,
        status=Status.DEPLOYING,
        trigger=Trigger.ROLLBACK.value,
        requested_by=requested_by,
        repo_url=str(app.get("repoUrl") or target.repo_url),
        branch=str(app.get("branch") or target.branch),
        subdirectory=str(app.get("subdirectory") or target.subdirectory),
        service_name=target.service_name,
        image=target.image,
        revision=target.revision,
        rollback_of=target.id,
        created_at=now,
    )


def decide_rollback_live(d: Deployment, url: str, now: datetime) -> Decision[str]:
    """Traffic moved and the URL answered: the rollback is live, and the app's live release with it."""
    if not can_move(d.status, Status.LIVE):
        return Decision(f"ignored: rollback already {d.status.value}")
    app_fields = {"liveRevision": d.revision, "liveDeploymentId": d.id, "url": url, "updatedAt": now}
    return Decision(f"live: {url}", Change(moved(Status.LIVE, now, url=url), app_fields=app_fields))


def decide_rollback_failed(d: Deployment, error: str, now: datetime) -> Decision[str]:
    if not can_move(d.status, Status.FAILED):
        return Decision(f"ignored: rollback already {d.status.value}")
    return Decision(f"failed: {error}", Change(moved(Status.FAILED, now, error=error)))
