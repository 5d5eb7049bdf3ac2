"""Which release a rollback brings back, and every way it refuses (devgem.domain.rollback)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from devgem.domain.deadlines import Step, decide_watch
from devgem.domain.deployment import Deployment, Status, Trigger
from devgem.domain.errors import Conflict, InvalidInput, NotFound
from devgem.domain.rollback import (
    NothingEarlier,
    RolloutInFlight,
    decide_rollback_failed,
    decide_rollback_live,
    pick_target,
    refuse_if_in_flight,
    rollback_deployment,
)
from tests.unit.fakes import START, deployment


def release(n: int, status: Status = Status.LIVE, **overrides: Any) -> Deployment:
    fields: dict[str, Any] = {"revision": f"shop-d{n}", "image": f"img:{n}"} if status == Status.LIVE else {}
    return deployment(status, id=f"d{n}", created_at=START + timedelta(minutes=n), **(fields | overrides))


def app_live(revision: str | None) -> dict[str, Any]:
    return {"id": "app000000001", "liveRevision": revision, "repoUrl": "https://github.com/ana/shop", "branch": "main"}


def test_the_default_target_is_the_newest_release_before_the_live_one() -> None:
    history = [release(1), release(2), release(3, Status.FAILED), release(4)]
    assert pick_target(app_live("shop-d4"), history, None).id == "d2"


def test_a_second_rollback_walks_further_back() -> None:
    back_to_2 = release(5, trigger=Trigger.ROLLBACK.value, revision="shop-d2", rollback_of="d2")
    history = [release(1), release(2), release(4), back_to_2]
    assert pick_target(app_live("shop-d2"), history, None).id == "d1"


def test_nothing_earlier_is_refused() -> None:
    with pytest.raises(NothingEarlier, match="no earlier release"):
        pick_target(app_live("shop-d1"), [release(1), release(2, Status.FAILED)], None)


def test_a_named_target_must_be_in_this_apps_history() -> None:
    with pytest.raises(NotFound, match="nope"):
        pick_target(app_live("shop-d2"), [release(1), release(2)], "nope")


def test_a_named_target_must_have_gone_live() -> None:
    with pytest.raises(InvalidInput, match="never went live"):
        pick_target(app_live("shop-d3"), [release(1), release(2, Status.FAILED), release(3)], "d2")


def test_a_named_target_that_is_live_already_is_refused() -> None:
    with pytest.raises(Conflict, match="already live"):
        pick_target(app_live("shop-d2"), [release(1), release(2)], "d2")


def test_a_named_target_may_be_any_earlier_release() -> None:
    assert pick_target(app_live("shop-d3"), [release(1), release(2), release(3)], "d1").id == "d1"


def test_another_rollout_in_flight_is_refused_naming_it() -> None:
    with pytest.raises(RolloutInFlight, match="deployment d3"):
        refuse_if_in_flight([release(1), release(2), release(3, Status.DEPLOYING)])
    refuse_if_in_flight([release(1), release(2, Status.BUILDING)])  # a build has not touched traffic yet


def test_the_record_is_a_deploying_rollback_of_the_target() -> None:
    d = rollback_deployment(app_live("shop-d2"), release(1), "r1", "user-1", START)
    assert (d.status, d.trigger, d.rollback_of, d.revision, d.image) == (
        Status.DEPLOYING,
        "rollback",
        "d1",
        "shop-d1",
        "img:1",
    )
    assert d.to_doc()["rollbackOf"] == "d1" and "rollbackOf" not in release(1).to_doc()


def test_live_moves_the_app_in_the_same_write() -> None:
    d = rollback_deployment(app_live("shop-d2"), release(1), "r1", "user-1", START)
    decision = decide_rollback_live(d, "https://shop", START)
    assert decision.change is not None
    assert decision.change.fields["status"] == "live"
    assert decision.change.app_fields["liveRevision"] == "shop-d1"
    assert decision.change.app_fields["liveDeploymentId"] == "r1"
    assert decide_rollback_live(replace(d, status=Status.FAILED), "u", START).change is None


def test_failed_says_why_and_a_finished_rollback_never_moves() -> None:
    d = rollback_deployment(app_live("shop-d2"), release(1), "r1", "user-1", START)
    change = decide_rollback_failed(d, "no answer", START).change
    assert change is not None and change.fields["error"] == "no answer"
    assert decide_rollback_failed(replace(d, status=Status.LIVE), "x", START).change is None


def test_an_interrupted_rollback_is_failed_by_the_watchdog_not_re_driven() -> None:
    d = replace(rollback_deployment(app_live("shop-d2"), release(1), "r1", None, START), entered_at=START)
    decision = decide_watch(d, START + timedelta(minutes=3))
    assert decision.outcome == Step.GAVE_UP
    assert decision.change is not None and "roll back again" in decision.change.fields["error"]
