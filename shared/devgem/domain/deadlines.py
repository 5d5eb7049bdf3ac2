"""Every state of a deployment that is not final has a deadline, so none is left in between.

Events get lost for good: a function killed after its claim, a Cloud Build notification pushed while
build_finished was down until Pub/Sub gave up, localcloud or Cloud Build unreachable for longer than
the retries last. The watchdog (a scheduled function) looks at every unfinished deployment and decides
here, with no I/O: a step that went quiet is re-driven, because each step is safe to run again (the
build is found by its tag, the revision by its name); a deployment that stayed in one state too long
is failed with a message that says what happened and that the user can deploy again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from devgem.domain.deployment import (
    BUILD_TIMEOUT,
    CLAIM_LEASE,
    TERMINAL,
    Change,
    Decision,
    Deployment,
    Status,
    Trigger,
    moved,
)


@dataclass(frozen=True)
class Deadline:
    quiet: timedelta  # nothing happened for this long: re-drive the step
    total: timedelta  # in this state for this long: give up
    gave_up: str  # what the user is told, before "; deploy again"


BUILD_GIVE_UP = BUILD_TIMEOUT + timedelta(minutes=10)  # Cloud Build stops the build itself at BUILD_TIMEOUT

DEADLINES = {
    # deploy-requested is normally picked up within a second; an hour is an outage, and a deploy that
    # starts an hour after it was asked for would surprise more than help.
    Status.QUEUED: Deadline(timedelta(seconds=30), timedelta(hours=1), "the build could not be started within an hour"),
    # Past the build's own timeout plus a margin, Cloud Build's news of it is not coming.
    Status.BUILDING: Deadline(
        timedelta(seconds=60),
        BUILD_GIVE_UP,
        f"the build had no outcome within {BUILD_GIVE_UP.seconds // 60} minutes",
    ),
    # A rollout and its URL check (60 s at most) take about a minute; quiet for two means the attempt
    # died. Running it again beside a slow one is harmless: same revision name, and going live is
    # recorded once (ledger).
    Status.DEPLOYING: Deadline(
        timedelta(minutes=2), timedelta(minutes=15), "the new revision was not serving within 15 minutes"
    ),
}


class Step(StrEnum):
    ON_TIME = "on time"
    REQUEST_AGAIN = "request again"  # queued, or claimed without a build: announce deploy-requested again
    CHECK_BUILD = "check build"  # building, and quiet: ask Cloud Build how its build is doing
    ROLL_OUT_AGAIN = "roll out again"  # deploying, and quiet: the rollout attempt died; run it again
    GAVE_UP = "gave up"


def decide_watch(d: Deployment, now: datetime) -> Decision[Step]:
    """What the watchdog does with one deployment; the change marks it re-driven, so passes that
    overlap do not re-drive it twice."""
    if d.status in TERMINAL:
        return Decision(Step.ON_TIME)
    deadline = DEADLINES[d.status]
    entered = d.entered_at or d.created_at
    if now - entered > deadline.total:
        return Decision(Step.GAVE_UP, Change(moved(Status.FAILED, now, error=f"{deadline.gave_up}; deploy again")))
    claimed_without_build = d.status == Status.BUILDING and not d.build_id
    quiet = CLAIM_LEASE if claimed_without_build else deadline.quiet
    heard = max(t for t in (entered, d.updated_at, d.build_claimed_at, d.redriven_at) if t is not None)
    if now - heard < quiet:
        return Decision(Step.ON_TIME)
    if d.trigger == Trigger.ROLLBACK:
        # The caller waited on the rollback and has been told it failed, or has gone: moving traffic
        # later, unasked, would surprise more than help, and it would keep refusing other rollouts.
        error = "the rollback was interrupted; roll back again"
        return Decision(Step.GAVE_UP, Change(moved(Status.FAILED, now, error=error)))
    if d.status == Status.QUEUED or claimed_without_build:
        step = Step.REQUEST_AGAIN
    elif d.status == Status.BUILDING:
        step = Step.CHECK_BUILD
    else:
        step = Step.ROLL_OUT_AGAIN
    return Decision(step, Change({"redrivenAt": now}))
