"""Every unfinished state has a deadline: a quiet step is re-driven once per quiet spell, an overstay fails."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devgem.domain.deadlines import DEADLINES, Step, decide_watch
from devgem.domain.deployment import CLAIM_LEASE, TERMINAL, Deployment, Status
from tests.unit.fakes import START, deployment

UNFINISHED = [s for s in Status if s not in TERMINAL]


def _d(status: Status, **overrides: object) -> Deployment:
    return deployment(status, **{"updated_at": START, "entered_at": START, **overrides})


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_finished_deployment_is_never_touched(status: Status) -> None:
    decision = decide_watch(_d(status), START + timedelta(days=30))
    assert decision.outcome == Step.ON_TIME and decision.change is None


@pytest.mark.parametrize("status", UNFINISHED)
def test_within_the_quiet_time_nothing_is_done(status: Status) -> None:
    d = _d(status, build_id="b1")
    decision = decide_watch(d, START + DEADLINES[status].quiet - timedelta(seconds=1))
    assert decision.outcome == Step.ON_TIME and decision.change is None


@pytest.mark.parametrize(
    ("status", "build_id", "step"),
    [
        (Status.QUEUED, None, Step.REQUEST_AGAIN),
        (Status.BUILDING, None, Step.REQUEST_AGAIN),  # claimed, and the submit never happened
        (Status.BUILDING, "b1", Step.CHECK_BUILD),
        (Status.DEPLOYING, "b1", Step.ROLL_OUT_AGAIN),
    ],
)
def test_a_quiet_step_is_re_driven_and_marked(status: Status, build_id: str | None, step: Step) -> None:
    now = START + DEADLINES[status].quiet + timedelta(seconds=1)
    decision = decide_watch(_d(status, build_id=build_id), now)
    assert decision.outcome == step
    assert decision.change is not None and decision.change.fields == {"redrivenAt": now}


def test_a_claim_without_a_build_is_resumed_once_its_lease_runs_out() -> None:
    claimed = _d(Status.BUILDING, build_claimed_at=START)
    assert decide_watch(claimed, START + CLAIM_LEASE - timedelta(seconds=1)).outcome == Step.ON_TIME
    assert decide_watch(claimed, START + CLAIM_LEASE + timedelta(seconds=1)).outcome == Step.REQUEST_AGAIN


@pytest.mark.parametrize("status", UNFINISHED)
def test_a_re_driven_step_is_not_re_driven_again_within_the_quiet_time(status: Status) -> None:
    quiet = DEADLINES[status].quiet
    redriven = START + quiet + timedelta(seconds=1)
    d = _d(status, build_id="b1", redriven_at=redriven)
    assert decide_watch(d, redriven + quiet - timedelta(seconds=1)).outcome == Step.ON_TIME
    assert decide_watch(d, redriven + quiet + timedelta(seconds=1)).outcome != Step.ON_TIME


@pytest.mark.parametrize("status", UNFINISHED)
def test_progress_resets_the_quiet_time(status: Status) -> None:
    quiet = DEADLINES[status].quiet
    d = _d(status, build_id="b1", updated_at=START + quiet)
    assert decide_watch(d, START + quiet + timedelta(seconds=1)).outcome == Step.ON_TIME


@pytest.mark.parametrize("status", UNFINISHED)
def test_an_overstay_fails_the_deployment_and_says_to_deploy_again(status: Status) -> None:
    total = DEADLINES[status].total
    recent_progress = START + total  # progress does not extend the stay in one state
    now = START + total + timedelta(seconds=1)
    decision = decide_watch(_d(status, build_id="b1", updated_at=recent_progress), now)
    assert decision.outcome == Step.GAVE_UP
    assert decision.change is not None and decision.change.fields["status"] == Status.FAILED
    assert decision.change.fields["error"].endswith("; deploy again")
    assert decision.change.fields[f"stageTimes.{Status.FAILED.value}"] == now


def test_an_old_document_without_stage_times_counts_from_its_creation() -> None:
    d = deployment(Status.QUEUED)  # no updated_at, entered_at
    assert decide_watch(d, START + DEADLINES[Status.QUEUED].total + timedelta(seconds=1)).outcome == Step.GAVE_UP
