"""Asking for a deploy: stored as queued with who and why, then announced; never left queued unannounced."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from devgem import topology
from devgem.domain.deployment import Status, Trigger
from devgem.domain.errors import InvalidInput, NotFound, RetryLater
from devgem.domain.identity import Identity
from devgem.usecases.request_deploy import RequestDeploy
from tests.unit.fakes import START, FakeApps, FakeClock, FakePublisher, InMemoryDeployments

ANA = Identity("tenant-a", "ana")
APP = {
    "tenantId": "tenant-a",
    "repoUrl": "https://github.com/ana/shop",
    "branch": "main",
    "subdirectory": "web",
    "serviceName": "shop-abc123",
}


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    apps: FakeApps = field(default_factory=lambda: FakeApps({"app000000001": dict(APP)}))
    deployments: InMemoryDeployments = field(default_factory=InMemoryDeployments)
    publisher: FakePublisher = field(default_factory=FakePublisher)

    @property
    def use_case(self) -> RequestDeploy:
        return RequestDeploy(
            self.apps, self.deployments, self.publisher, now=self.clock.now, new_id=lambda: "dep000000001"
        )


@pytest.fixture()
def world() -> World:
    return World()


@pytest.mark.parametrize("trigger", list(Trigger))
def test_a_deploy_is_stored_queued_with_its_trigger_then_announced(world: World, trigger: Trigger) -> None:
    d = world.use_case.request(ANA, "app000000001", trigger)
    assert (d.status, d.trigger, d.requested_by, d.created_at) == (Status.QUEUED, trigger.value, "ana", START)
    assert (d.repo_url, d.branch, d.subdirectory, d.service_name) == (
        APP["repoUrl"],
        "main",
        "web",
        "shop-abc123",
    )
    assert world.deployments.get(d.id) == d
    assert world.publisher.published == [
        (
            topology.DEPLOY_REQUESTED,
            {"deploymentId": d.id, "tenantId": "tenant-a", "appId": "app000000001"},
            {"deploymentId": d.id},
        )
    ]


def test_a_deploy_that_cannot_be_announced_is_failed_not_left_queued(world: World) -> None:
    world.publisher.fail_next("publish", TimeoutError("pubsub down"))
    with pytest.raises(RetryLater, match="try again"):
        world.use_case.request(ANA, "app000000001", Trigger.API)
    stored = world.deployments.get("dep000000001")
    assert stored is not None and stored.status == Status.FAILED and "enqueue" in str(stored.error)


def test_another_tenants_app_is_not_found_and_nothing_is_written(world: World) -> None:
    with pytest.raises(NotFound):
        world.use_case.request(Identity("tenant-b", "eve"), "app000000001", Trigger.API)
    assert world.deployments.writes == 0 and not world.publisher.published


@pytest.mark.parametrize("app_id", ["", "../x", "APP", "a" * 200, "app 1"])
def test_a_hostile_app_id_is_refused(world: World, app_id: str) -> None:
    with pytest.raises(InvalidInput):
        world.use_case.request(ANA, app_id, Trigger.API)
    assert world.deployments.writes == 0
