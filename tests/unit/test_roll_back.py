"""Rolling back with fakes at the edges: traffic moves to an earlier revision without a build, the
rollback is a deployment in the app's history, every refusal is clear, and the next deploy un-pins."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from devgem.domain.deployment import Deployment, Status
from devgem.domain.errors import Conflict, InvalidInput, NotFound, RetryLater
from devgem.domain.identity import Identity
from devgem.domain.rollback import NothingEarlier, RevisionDeleted, RolloutInFlight
from devgem.usecases.follow_build import FollowBuild
from devgem.usecases.roll_back import RollBack
from tests.unit.fakes import (
    PROJECT,
    START,
    FakeApps,
    FakeBuilds,
    FakeClock,
    FakeProbe,
    FakeServices,
    FakeTail,
    InMemoryDeployments,
    build_status,
    deployment,
)

ANA = Identity("tenant-a", "ana")
BOB = Identity("tenant-b", "bob")
APP_ID = "app000000001"
SERVICE = "shop-abc123"
URL = f"https://{SERVICE}.apps.example.com"


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    apps: FakeApps = field(default_factory=FakeApps)
    services: FakeServices = field(default_factory=FakeServices)
    probe: FakeProbe = field(default_factory=FakeProbe)
    builds: FakeBuilds = field(default_factory=FakeBuilds)
    deployments: InMemoryDeployments = field(init=False)
    ids: int = 0

    def __post_init__(self) -> None:
        app: dict[str, Any] = {"tenantId": "tenant-a", "repoUrl": "https://github.com/ana/shop", "branch": "main"}
        self.apps.apps[APP_ID] = app | {"subdirectory": "", "serviceName": SERVICE}
        self.deployments = InMemoryDeployments(apps=self.apps.apps)  # live writes land on the app

    def new_id(self) -> str:
        self.ids += 1
        return f"rollback{self.ids:04d}"

    @property
    def use_case(self) -> RollBack:
        return RollBack(
            self.deployments,
            self.apps,
            self.services,
            self.probe,
            "https://{service}.apps.example.com",
            5.0,
            now=self.clock.now,
            new_id=self.new_id,
        )

    def release(self, n: int, status: Status = Status.LIVE) -> Deployment:
        """Deployment dN, as a deploy leaves it; a live one made revision shop-abc123-dN and took the app."""
        revision = f"{SERVICE}-d{n}" if status == Status.LIVE else None
        d = deployment(status, id=f"d{n}000000", created_at=START + timedelta(minutes=n), revision=revision)
        self.deployments.create(d)
        if revision:
            self.services.revisions.add(revision)
            self.services.serving[SERVICE] = revision
            self.apps.apps[APP_ID].update(liveRevision=revision, liveDeploymentId=d.id)
        return d

    def live_revision(self) -> str:
        return str(self.apps.apps[APP_ID]["liveRevision"])


@pytest.fixture()
def world() -> World:
    return World()


def test_traffic_goes_back_to_the_earlier_revision_recorded_as_a_live_rollback(world: World) -> None:
    world.release(1)
    world.release(2)
    d = world.use_case.roll_back(ANA, APP_ID)
    assert (d.status, d.trigger, d.rollback_of, d.revision, d.url) == (
        Status.LIVE,
        "rollback",
        "d1000000",
        f"{SERVICE}-d1",
        URL,
    )
    assert world.services.moves == [(SERVICE, f"{SERVICE}-d1")] and world.services.rollouts == []  # no build
    assert world.builds.submitted == []
    assert world.probe.probed == [URL]
    assert world.live_revision() == f"{SERVICE}-d1"
    assert world.apps.apps[APP_ID]["liveDeploymentId"] == d.id
    assert world.deployments.fields[d.id]["requestedBy"] == "ana"


def test_to_names_the_release_to_bring_back(world: World) -> None:
    world.release(1)
    world.release(2)
    world.release(3)
    assert world.use_case.roll_back(ANA, APP_ID, to="d1000000").revision == f"{SERVICE}-d1"


def test_nothing_earlier_is_refused_and_nothing_moves(world: World) -> None:
    world.release(1)
    with pytest.raises(NothingEarlier, match="no earlier release"):
        world.use_case.roll_back(ANA, APP_ID)
    assert world.services.moves == [] and len(world.deployments.docs) == 1


def test_another_tenants_app_is_not_found(world: World) -> None:
    world.release(1)
    world.release(2)
    with pytest.raises(NotFound):
        world.use_case.roll_back(BOB, APP_ID)
    assert world.services.moves == []


def test_another_rollout_in_flight_is_refused_naming_it(world: World) -> None:
    world.release(1)
    world.release(2)
    world.release(3, Status.DEPLOYING)
    with pytest.raises(RolloutInFlight, match="d3000000"):
        world.use_case.roll_back(ANA, APP_ID)
    assert world.services.moves == []


def test_a_deleted_revision_is_refused_and_the_attempt_recorded_failed(world: World) -> None:
    world.release(1)
    world.release(2)
    world.services.revisions.discard(f"{SERVICE}-d1")
    with pytest.raises(RevisionDeleted, match=f"revision {SERVICE}-d1 was deleted"):
        world.use_case.roll_back(ANA, APP_ID)
    failed = world.deployments.get("rollback0001")
    assert failed is not None and failed.status == Status.FAILED and "deleted" in str(failed.error)
    assert world.live_revision() == f"{SERVICE}-d2"


@pytest.mark.parametrize(
    ("to", "error"), [("nope000000", NotFound), ("d2000000", InvalidInput), ("BAD!", InvalidInput)]
)
def test_a_bad_target_is_refused(world: World, to: str, error: type[Exception]) -> None:
    world.release(1)
    world.release(2, Status.FAILED)
    world.release(3)
    with pytest.raises(error):
        world.use_case.roll_back(ANA, APP_ID, to=to)
    assert world.services.moves == []


def test_the_live_release_as_target_is_refused(world: World) -> None:
    world.release(1)
    world.release(2)
    with pytest.raises(Conflict, match="already live"):
        world.use_case.roll_back(ANA, APP_ID, to="d2000000")


def test_a_url_that_does_not_answer_fails_the_rollback_with_why(world: World) -> None:
    world.release(1)
    world.release(2)
    world.probe.result = (False, "HTTP 502")
    d = world.use_case.roll_back(ANA, APP_ID)
    assert d.status == Status.FAILED and "HTTP 502" in str(d.error)
    assert world.live_revision() == f"{SERVICE}-d2"  # the app's live release is what answered last


def test_traffic_that_cannot_move_is_retried_later_and_the_attempt_failed(world: World) -> None:
    world.release(1)
    world.release(2)
    world.services.fail_next("move_traffic", ConnectionError("down"))
    with pytest.raises(RetryLater):
        world.use_case.roll_back(ANA, APP_ID)
    failed = world.deployments.get("rollback0001")
    assert failed is not None and failed.status == Status.FAILED
    world.use_case.roll_back(ANA, APP_ID)  # a failed attempt does not block the next
    assert world.live_revision() == f"{SERVICE}-d1"


def test_a_second_rollback_walks_further_back(world: World) -> None:
    world.release(1)
    world.release(2)
    world.release(3)
    world.use_case.roll_back(ANA, APP_ID)
    world.clock.advance(60)
    assert world.use_case.roll_back(ANA, APP_ID).revision == f"{SERVICE}-d1"


def test_the_next_deploy_takes_traffic_back_from_the_pinned_revision(world: World) -> None:
    world.release(1)
    world.release(2)
    world.use_case.roll_back(ANA, APP_ID)
    assert world.services.serving[SERVICE] == f"{SERVICE}-d1"
    d3 = deployment(Status.BUILDING, id="d3000000", build_id="build-1", image="img:3", created_at=START)
    world.deployments.create(d3)
    message = build_status(d3.id, "SUCCESS")
    world.builds.now_in(message)
    follow = FollowBuild(
        world.deployments,
        world.builds,
        world.services,
        world.probe,
        FakeTail(),
        "https://{service}.apps.example.com",
        5.0,
        PROJECT,
        now=world.clock.now,
    )
    assert follow.handle(message) == f"live: {URL}"
    assert world.services.serving[SERVICE] == f"{SERVICE}-d3000000"
    assert world.live_revision() == f"{SERVICE}-d3000000"


@dataclass
class RacingDeployments(InMemoryDeployments):
    """Another rollback is written between this one's check and its own write."""

    rival: Deployment | None = None

    def create(self, deployment: Deployment) -> None:
        if self.rival is not None and deployment.id != self.rival.id:
            super().create(self.rival)
            self.rival = None
        super().create(deployment)


@pytest.mark.parametrize(("rival_first", "yields"), [(True, True), (False, False)])
def test_of_two_rollbacks_started_together_only_the_later_moves_traffic(
    world: World, rival_first: bool, yields: bool
) -> None:
    world.deployments = RacingDeployments(apps=world.apps.apps)
    world.release(1)
    world.release(2)
    at = world.clock.now() + timedelta(seconds=-1 if rival_first else 1)
    rival = replace(deployment(Status.DEPLOYING, id="rival00000", created_at=at), trigger="rollback")
    world.deployments.rival = rival
    if yields:
        with pytest.raises(RolloutInFlight, match="rival00000"):
            world.use_case.roll_back(ANA, APP_ID)
        mine = world.deployments.get("rollback0001")
        assert mine is not None and mine.status == Status.FAILED and world.services.moves == []
    else:
        assert world.use_case.roll_back(ANA, APP_ID).status == Status.LIVE


def test_a_deploy_that_reached_deploying_meanwhile_wins(world: World) -> None:
    world.deployments = RacingDeployments(apps=world.apps.apps)
    world.release(1)
    world.release(2)
    world.deployments.rival = deployment(Status.DEPLOYING, id="d3000000", created_at=START + timedelta(hours=1))
    with pytest.raises(RolloutInFlight, match=r"a deploy of this app .* d3000000"):
        world.use_case.roll_back(ANA, APP_ID)
