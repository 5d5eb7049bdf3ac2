"""deploy-requested with fakes at the edges: one build per deployment, whatever is redelivered or crashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc

from devgem.adapters.cloud_build import BuildRequest
from devgem.domain.deployment import CLAIM_LEASE, Deployment, Status, decide_superseded, existing
from devgem.domain.errors import InvalidEvent
from devgem.usecases.start_build import StartBuild
from tests.unit.fakes import (
    START,
    Crash,
    FakeBuilds,
    FakeClock,
    InMemoryDeployments,
    deploy_requested,
    deployment,
)


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    deployments: InMemoryDeployments = field(default_factory=InMemoryDeployments)
    builds: FakeBuilds = field(default_factory=FakeBuilds)

    @property
    def use_case(self) -> StartBuild:
        return StartBuild(
            self.deployments, self.builds, "img/{service}:{deployment}", timedelta(hours=24), now=self.clock.now
        )

    def add(self, d: Deployment) -> Deployment:
        self.deployments.create(d)
        return d

    def status(self, d: Deployment) -> Status:
        found = self.deployments.get(d.id)
        assert found is not None
        return found.status


@pytest.fixture()
def world() -> World:
    return World()


def test_submits_one_build_of_the_branch_with_the_deployment_image(world: World) -> None:
    d = world.add(deployment())
    assert world.use_case.handle(deploy_requested(d)) == "submitted"
    [request] = world.builds.submitted
    assert (request.deployment_id, request.repo_url, request.branch) == (d.id, d.repo_url, "main")
    assert request.image == f"img/shop-abc123:{d.id}"
    stored = world.deployments.get(d.id)
    assert stored is not None and stored.status == Status.BUILDING and stored.build_id == "build-1"
    assert world.deployments.fields[d.id]["stageTimes.building"] == START


def test_a_redelivered_request_submits_nothing_more(world: World) -> None:
    d = world.add(deployment())
    world.use_case.handle(deploy_requested(d))
    writes = world.deployments.writes
    assert world.use_case.handle(deploy_requested(d)) == "duplicate"
    assert len(world.builds.submitted) == 1 and world.deployments.writes == writes


def test_crash_after_the_claim_before_the_submit_is_resumed_after_the_lease(world: World) -> None:
    d = world.add(deployment())
    world.builds.fail_next("submit", Crash("died before submitting"))
    with pytest.raises(Crash):
        world.use_case.handle(deploy_requested(d))
    assert world.status(d) == Status.BUILDING and not world.builds.submitted
    # Within the lease the first delivery may still be submitting: acked, and nothing submitted.
    assert world.use_case.handle(deploy_requested(d)) == "in flight" and not world.builds.submitted
    world.clock.advance(CLAIM_LEASE.total_seconds())
    assert world.use_case.handle(deploy_requested(d)) == "submitted"
    assert len(world.builds.submitted) == 1


def test_crash_after_the_submit_finds_the_build_by_its_tag(world: World) -> None:
    d = world.add(deployment())
    world.builds.crash_after_submit = True
    with pytest.raises(Crash):
        world.use_case.handle(deploy_requested(d))
    world.clock.advance(CLAIM_LEASE.total_seconds() + 1)
    assert world.use_case.handle(deploy_requested(d)) == "submitted"
    assert len(world.builds.submitted) == 1  # found by tag, not submitted again
    stored = world.deployments.get(d.id)
    assert stored is not None and stored.build_id == "build-1"


def test_crash_while_recording_the_build_id_is_resumed_without_a_second_build(world: World) -> None:
    d = world.add(deployment())
    world.use_case.handle(deploy_requested(d))  # claim, submit, record: writes 2 (create was 1)
    fresh = world.add(deployment(id="dep000000002"))
    world.deployments.fail_next("change", Crash("died before the claim was written"))
    with pytest.raises(Crash):
        world.use_case.handle(deploy_requested(fresh))
    assert world.status(fresh) == Status.QUEUED  # nothing written: the redelivery starts over
    assert world.use_case.handle(deploy_requested(fresh)).startswith("submitted")
    assert [r.deployment_id for r in world.builds.submitted] == [d.id, fresh.id]


def test_a_request_that_waited_too_long_is_failed_not_built(world: World) -> None:
    d = world.add(deployment())
    assert world.use_case.handle(deploy_requested(d, published_at=START - timedelta(hours=25))) == "expired"
    assert world.status(d) == Status.FAILED and not world.builds.submitted


def test_another_tenants_deployment_is_a_bad_event(world: World) -> None:
    d = world.add(deployment())
    with pytest.raises(InvalidEvent, match="does not belong"):
        world.use_case.handle(deploy_requested(d, tenant_id="tenant-b"))
    assert world.status(d) == Status.QUEUED and not world.builds.submitted


def test_an_absent_deployment_is_a_bad_event(world: World) -> None:
    with pytest.raises(InvalidEvent, match="does not exist"):
        world.use_case.handle(deploy_requested(deployment()))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"deploymentId": "dep000000001"}', b'{"deploymentId": 7, "tenantId": "t"}'],
)
def test_malformed_requests_are_bad_events(world: World, body: bytes) -> None:
    message = deploy_requested(world.add(deployment()))
    with pytest.raises(InvalidEvent):
        world.use_case.handle(type(message)(body, {}, "m", START))
    assert not world.builds.submitted


def test_a_hostile_deployment_id_is_refused_before_any_read(world: World) -> None:
    message = deploy_requested(deployment(id="../apps/x"))
    with pytest.raises(Exception, match="deploymentId"):
        world.use_case.handle(message)


def test_a_newer_deploy_supersedes_older_queued_and_building_ones(world: World) -> None:
    queued = world.add(deployment(id="dep00000000a", created_at=START))
    building = world.add(deployment(id="dep00000000b", created_at=START + timedelta(seconds=1)))
    assert world.use_case.handle(deploy_requested(building)) == f"submitted; superseded {[queued.id]}"
    newest = world.add(deployment(id="dep00000000c", created_at=START + timedelta(seconds=2)))
    assert world.use_case.handle(deploy_requested(newest)) == f"submitted; superseded {[building.id]}"
    assert world.status(queued) == Status.SUPERSEDED and world.status(building) == Status.SUPERSEDED
    assert world.builds.cancelled == ["build-1"]  # the older one's build; the queued one had none
    assert world.status(newest) == Status.BUILDING


def test_an_older_deploy_never_supersedes_a_newer_one(world: World) -> None:
    newer = world.add(deployment(id="dep00000000n", created_at=START + timedelta(seconds=5)))
    older = world.add(deployment(id="dep00000000o", created_at=START))
    assert world.use_case.handle(deploy_requested(older)) == "submitted"
    assert world.status(newer) == Status.QUEUED and not world.builds.cancelled


def test_a_deploy_superseded_while_submitting_cancels_its_own_build(world: World) -> None:
    d = world.add(deployment())
    real_submit = world.builds.submit

    def submit_then_overtaken(request: BuildRequest) -> str:
        build_id = real_submit(request)
        world.deployments.change(d.id, lambda found: decide_superseded(existing(found), "newer", START))
        return build_id

    world.builds.submit = submit_then_overtaken  # type: ignore[method-assign]
    assert world.use_case.handle(deploy_requested(d)) == "superseded while submitting; build cancelled"
    assert world.builds.cancelled == ["build-1"]


def test_a_build_that_cannot_be_cancelled_does_not_stop_the_newer_deploy(world: World) -> None:
    older = world.add(deployment(id="dep00000000a"))
    world.use_case.handle(deploy_requested(older))
    newer = world.add(deployment(id="dep00000000b", created_at=START + timedelta(seconds=1)))
    world.builds.fail_next("cancel", gexc.FailedPrecondition("build already finished"))
    assert world.use_case.handle(deploy_requested(newer)) == f"submitted; superseded {[older.id]}"
    assert world.status(older) == Status.SUPERSEDED
