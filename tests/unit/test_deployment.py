"""The deployment state machine: every decision from every state (devgem.domain.deployment)."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from devgem.domain.deployment import (
    BUILD_FAILED,
    BUILD_IN_PROGRESS,
    BUILD_SUCCESS,
    CLAIM_LEASE,
    TERMINAL,
    Claim,
    Decision,
    Deployment,
    Status,
    can_move,
    check_owner,
    decide_build_recorded,
    decide_claim,
    decide_deploying,
    decide_enqueue_failed,
    decide_failed,
    decide_live,
    decide_progress,
    decide_superseded,
    existing,
)
from devgem.domain.errors import InvalidEvent
from tests.unit.fakes import START, deployment


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "building"),
        ("queued", "deploying"),
        ("building", "deploying"),
        ("deploying", "live"),
        ("queued", "failed"),
        ("building", "cancelled"),
        ("building", "superseded"),
    ],
)
def test_moves_forward(current: str, target: str) -> None:
    assert can_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("building", "queued"), ("deploying", "building"), ("building", "building"), ("deploying", "deploying")],
)
def test_never_moves_back_or_stays(current: str, target: str) -> None:
    assert not can_move(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_never_move(terminal: Status) -> None:
    assert all(not can_move(terminal, target) for target in Status)


def test_unknown_state_is_an_error() -> None:
    with pytest.raises(ValueError):
        can_move("exploded", "live")


# Every decision against every state: what it reports, and whether it writes. The tables are the
# state machine's specification; a new state or transition must be added here to pass.

NOW = START + timedelta(minutes=5)
ALL = list(Status)


def _d(status: Status, **overrides: Any) -> Deployment:
    return deployment(status, **overrides)


CLAIM = {
    Status.QUEUED: (Claim.CLAIMED, Status.BUILDING),
    Status.BUILDING: (Claim.DUPLICATE, None),  # with a build id: another delivery submitted it
    Status.DEPLOYING: (Claim.DUPLICATE, None),
    Status.LIVE: (Claim.DUPLICATE, None),
    Status.FAILED: (Claim.DUPLICATE, None),
    Status.CANCELLED: (Claim.DUPLICATE, None),
    Status.SUPERSEDED: (Claim.DUPLICATE, None),
}


@pytest.mark.parametrize("status", ALL)
def test_claim_from_every_state(status: Status) -> None:
    decision = decide_claim(_d(status, build_id="b1" if status != Status.QUEUED else None), NOW, NOW, AGE, "img")
    outcome, moved_to = CLAIM[status]
    assert decision.outcome == outcome
    assert (decision.change.fields["status"] if decision.change else None) == moved_to


AGE = timedelta(hours=24)


def test_claim_records_the_image_and_when() -> None:
    change = decide_claim(_d(Status.QUEUED), NOW, NOW, AGE, "img:1").change
    assert change is not None
    assert change.fields["image"] == "img:1" and change.fields["buildClaimedAt"] == NOW
    assert change.fields["stageTimes.building"] == NOW and change.ledger_key is None


def test_claim_of_a_request_older_than_events_live_fails_it() -> None:
    decision = decide_claim(_d(Status.QUEUED), NOW, NOW - AGE - timedelta(seconds=1), AGE, "img")
    assert decision.outcome == Claim.EXPIRED
    assert decision.change is not None and decision.change.fields["status"] == Status.FAILED
    assert "deploy again" in decision.change.fields["error"]


def test_claim_of_a_request_just_inside_the_age_is_built() -> None:
    assert decide_claim(_d(Status.QUEUED), NOW, NOW - AGE, AGE, "img").outcome == Claim.CLAIMED


def test_claim_without_publish_time_is_built() -> None:
    assert decide_claim(_d(Status.QUEUED), NOW, None, AGE, "img").outcome == Claim.CLAIMED


def test_claim_held_by_another_delivery_is_acked_for_the_watchdog_to_resume() -> None:
    held = _d(Status.BUILDING, build_claimed_at=NOW - CLAIM_LEASE + timedelta(seconds=1))
    decision = decide_claim(held, NOW, NOW, AGE, "img")
    assert decision.outcome == Claim.IN_FLIGHT and decision.change is None


def test_claim_whose_lease_ran_out_is_resumed() -> None:
    stale = _d(Status.BUILDING, build_claimed_at=NOW - CLAIM_LEASE)
    decision = decide_claim(stale, NOW, NOW, AGE, "img")
    assert decision.outcome == Claim.RESUME
    assert decision.change is not None and decision.change.fields == {"buildClaimedAt": NOW}


def test_claim_without_any_claim_time_is_resumed() -> None:
    assert decide_claim(_d(Status.BUILDING), NOW, NOW, AGE, "img").outcome == Claim.RESUME


# decide_progress: (reports, new status or None when no status change, writes?)
PROGRESS = {
    Status.QUEUED: ("progress: WORKING", Status.BUILDING, True),
    Status.BUILDING: ("progress: WORKING", None, True),
    Status.DEPLOYING: ("ignored: deployment already past building", None, False),
    Status.LIVE: ("ignored: deployment already past building", None, False),
    Status.FAILED: ("ignored: deployment already past building", None, False),
    Status.CANCELLED: ("ignored: deployment already past building", None, False),
    Status.SUPERSEDED: ("ignored: deployment already past building", None, False),
}


@pytest.mark.parametrize("status", ALL)
def test_progress_from_every_state(status: Status) -> None:
    decision = decide_progress(_d(status), "b1", "WORKING", NOW)
    outcome, moved_to, writes = PROGRESS[status]
    assert decision.outcome == outcome
    assert (decision.change is not None) == writes
    if decision.change:
        assert decision.change.fields.get("status") == moved_to
        assert decision.change.fields["buildStatus"] == "WORKING" and decision.change.fields["buildId"] == "b1"


@pytest.mark.parametrize("build_status", sorted(BUILD_IN_PROGRESS))
def test_progress_repeated_writes_nothing(build_status: str) -> None:
    noted = _d(Status.BUILDING, build_id="b1", build_status=build_status)
    decision = decide_progress(noted, "b1", build_status, NOW)
    assert decision.change is None and "already noted" in decision.outcome


def test_progress_keeps_the_first_build_id() -> None:
    change = decide_progress(_d(Status.BUILDING, build_id="first"), "second", "QUEUED", NOW).change
    assert change is not None and change.fields["buildId"] == "first"


FAIL = {s: s not in TERMINAL for s in ALL}


@pytest.mark.parametrize("status", ALL)
def test_failed_from_every_state(status: Status) -> None:
    decision = decide_failed(_d(status), "b1", "FAILURE", "boom", NOW)
    if FAIL[status]:
        assert decision.outcome == "failed: boom"
        assert decision.change is not None and decision.change.fields["status"] == Status.FAILED
        assert decision.change.fields["error"] == "boom" and decision.change.fields["stageTimes.failed"] == NOW
        assert decision.change.ledger_key == "build:b1:FAILURE"
    else:
        assert decision.change is None and decision.outcome == "ignored: deployment already finished"


@pytest.mark.parametrize("build_status", sorted(BUILD_FAILED | {BUILD_SUCCESS}))
def test_failed_is_keyed_on_the_build_and_its_status(build_status: str) -> None:
    change = decide_failed(_d(Status.BUILDING), "b7", build_status, "x", NOW).change
    assert change is not None and change.ledger_key == f"build:b7:{build_status}"


DEPLOYING = {
    Status.QUEUED: (True, True),
    Status.BUILDING: (True, True),
    Status.DEPLOYING: (True, False),  # an earlier attempt stopped mid-rollout: carry on, write nothing
    Status.LIVE: (False, False),
    Status.FAILED: (False, False),
    Status.CANCELLED: (False, False),
    Status.SUPERSEDED: (False, False),
}


@pytest.mark.parametrize("status", ALL)
def test_deploying_from_every_state(status: Status) -> None:
    decision = decide_deploying(_d(status), "b1", NOW)
    go, writes = DEPLOYING[status]
    assert decision.outcome is go and (decision.change is not None) == writes
    if decision.change:
        assert decision.change.fields["status"] == Status.DEPLOYING
        assert decision.change.fields["buildStatus"] == BUILD_SUCCESS


@pytest.mark.parametrize("status", ALL)
def test_live_from_every_state(status: Status) -> None:
    decision = decide_live(_d(status), "b1", "shop-rev", "https://shop", NOW)
    if status in TERMINAL:
        assert decision.change is None and decision.outcome == "ignored: deployment already finished"
        return
    assert decision.outcome == "live: https://shop"
    change = decision.change
    assert change is not None and change.fields["status"] == Status.LIVE
    assert change.fields["revision"] == "shop-rev" and change.fields["url"] == "https://shop"
    assert change.ledger_key == "build:b1:SUCCESS"
    assert change.app_fields == {
        "liveRevision": "shop-rev",
        "liveDeploymentId": "dep000000001",
        "url": "https://shop",
        "updatedAt": NOW,
    }


SUPERSEDE = {
    Status.QUEUED: True,
    Status.BUILDING: True,
    Status.DEPLOYING: False,  # about to take traffic: the newer one will replace it
    Status.LIVE: False,
    Status.FAILED: False,
    Status.CANCELLED: False,
    Status.SUPERSEDED: False,
}


@pytest.mark.parametrize("status", ALL)
def test_superseded_from_every_state(status: Status) -> None:
    decision = decide_superseded(_d(status, build_id="b1"), "newer", NOW)
    if SUPERSEDE[status]:
        assert decision.outcome == "b1"  # the build to cancel
        assert decision.change is not None and decision.change.fields["status"] == Status.SUPERSEDED
        assert decision.change.fields["supersededBy"] == "newer"
    else:
        assert decision == Decision(None)


def test_superseded_before_any_build_has_nothing_to_cancel() -> None:
    decision = decide_superseded(_d(Status.QUEUED), "newer", NOW)
    assert decision.outcome is None and decision.change is not None


@pytest.mark.parametrize("status", ALL)
def test_build_recorded_once_from_every_state(status: Status) -> None:
    first = decide_build_recorded(_d(status), "b1", NOW)
    assert first.outcome == status and first.change is not None and first.change.fields["buildId"] == "b1"
    again = decide_build_recorded(_d(status, build_id="b0"), "b1", NOW)
    assert again.outcome == status and again.change is None


@pytest.mark.parametrize("status", ALL)
def test_enqueue_failed_from_every_state(status: Status) -> None:
    decision = decide_enqueue_failed(_d(status), NOW)
    assert (decision.change is not None) == (status not in TERMINAL)


def test_owner_check_turns_absent_and_foreign_into_bad_events() -> None:
    with pytest.raises(InvalidEvent, match="does not exist"):
        check_owner(None, "d1", "tenant-a")
    with pytest.raises(InvalidEvent, match="does not belong"):
        check_owner(_d(Status.QUEUED), "d1", "tenant-b")
    assert check_owner(_d(Status.QUEUED), "d1", "tenant-a").tenant_id == "tenant-a"


def test_existing_turns_a_vanished_deployment_into_a_bad_event() -> None:
    with pytest.raises(InvalidEvent):
        existing(None)


@pytest.mark.parametrize("status", ALL)
def test_document_round_trip(status: Status) -> None:
    d = _d(status, requested_by="ana", image="img")
    doc = d.to_doc()
    assert doc["status"] == status.value and doc["stageTimes"] == {status.value: START}
    # A new deployment was last updated, and entered its state, when it was created.
    assert Deployment.from_doc(d.id, doc) == replace(d, updated_at=START, entered_at=START)


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in ALL for t in ALL])
def test_can_move_is_strictly_forward(current: Status, target: Status) -> None:
    order = [Status.QUEUED, Status.BUILDING, Status.DEPLOYING]
    expected = current not in TERMINAL and (target in TERMINAL or order.index(target) > order.index(current))
    assert can_move(current, target) is expected
