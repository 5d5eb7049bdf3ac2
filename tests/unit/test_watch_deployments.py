"""The watchdog with fakes at the edges: each lost event is repaired through the path that normally
runs the step, once per quiet spell, and a deployment that overstays is failed and its build stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from google.cloud.devtools import cloudbuild_v1

from devgem import topology
from devgem.domain.deadlines import DEADLINES, Step
from devgem.domain.deployment import CLAIM_LEASE, Deployment, Status
from devgem.usecases.follow_build import FollowBuild
from devgem.usecases.start_build import StartBuild
from devgem.usecases.watch_deployments import WatchDeployments
from tests.unit.fakes import (
    Crash,
    FakePublisher,
    deploy_requested,
    deployment,
)
from tests.unit.test_follow_build import World as FollowBuildWorld


@dataclass
class World(FollowBuildWorld):
    """build_finished's world (deployments, Cloud Build, Cloud Run, the probe), plus Pub/Sub."""

    publisher: FakePublisher = field(default_factory=FakePublisher)

    @property
    def follow_build(self) -> FollowBuild:
        return self.use_case

    @property
    def start_build(self) -> StartBuild:
        return StartBuild(
            self.deployments, self.builds, "img/{service}:{deployment}", timedelta(hours=24), self.clock.now
        )

    def watch(self, after: timedelta = timedelta(0)) -> dict[str, int]:
        self.clock.advance(after.total_seconds())
        return WatchDeployments(
            self.deployments, self.builds, self.publisher, self.follow_build, self.clock.now
        ).handle()

    def submitted(self) -> Deployment:
        """A deployment whose build was submitted and then heard of no more."""
        d = deployment()
        self.deployments.create(d)
        assert self.start_build.handle(deploy_requested(d)) == "submitted"
        return self.get(d)

    def cloud_build_says(self, d: Deployment, status: str) -> None:
        assert d.build_id
        self.builds.builds[d.build_id].status = getattr(cloudbuild_v1.Build.Status, status)

    def get(self, d: Deployment) -> Deployment:
        found = self.deployments.get(d.id)
        assert found is not None
        return found


@pytest.fixture()
def world() -> World:
    return World()


QUIET = {status: deadline.quiet + timedelta(seconds=1) for status, deadline in DEADLINES.items()}


def test_a_lost_request_is_announced_again_once_per_quiet_spell(world: World) -> None:
    d = deployment()
    world.deployments.create(d)
    assert world.watch() == {"on time": 1, "unfinished": 1}
    assert world.watch(QUIET[Status.QUEUED]) == {"request again": 1, "unfinished": 1}
    assert world.watch() == {"on time": 1, "unfinished": 1}  # an overlapping pass leaves it alone
    [(topic, body, attributes)] = world.publisher.published
    assert topic == topology.DEPLOY_REQUESTED and body["deploymentId"] == d.id and body["tenantId"] == d.tenant_id
    assert attributes == {"deploymentId": d.id}


def test_a_claim_whose_submit_died_is_resumed_after_its_lease_with_one_build(world: World) -> None:
    d = deployment()
    world.deployments.create(d)
    world.builds.fail_next("submit", Crash("deploy_requested killed between its claim and its submit"))
    with pytest.raises(Crash):
        world.start_build.handle(deploy_requested(d))
    assert world.start_build.handle(deploy_requested(d)) == "in flight"  # Pub/Sub's quick redelivery
    assert world.watch(CLAIM_LEASE - timedelta(seconds=1)).get("request again") is None
    assert world.watch(timedelta(seconds=2)).get("request again") == 1
    assert world.start_build.handle(deploy_requested(d)) == "submitted"  # the announcement, delivered
    assert len(world.builds.submitted) == 1 and world.get(d).build_id == "build-1"


def test_a_lost_success_is_heard_from_cloud_build_and_goes_live(world: World) -> None:
    d = world.submitted()
    world.cloud_build_says(d, "SUCCESS")  # ... and the notification never arrived
    assert world.watch(QUIET[Status.BUILDING]) == {"check build": 1, "unfinished": 1}
    live = world.get(d)
    assert live.status == Status.LIVE and live.url == "https://shop-abc123.apps.example.com"
    assert [r.revision for r in world.services.rollouts] == [f"shop-abc123-{d.id}"]


def test_a_lost_failure_is_heard_from_cloud_build(world: World) -> None:
    d = world.submitted()
    world.cloud_build_says(d, "FAILURE")
    world.watch(QUIET[Status.BUILDING])
    assert world.get(d).status == Status.FAILED and "the build failed (FAILURE)" in (world.get(d).error or "")


def test_a_build_still_working_is_left_to_work(world: World) -> None:
    d = world.submitted()
    world.cloud_build_says(d, "WORKING")
    assert world.watch(QUIET[Status.BUILDING]) == {"check build": 1, "unfinished": 1}
    assert world.get(d).status == Status.BUILDING and not world.services.rollouts


def test_a_build_cloud_build_does_not_know_fails_the_deployment(world: World) -> None:
    d = world.submitted()
    assert d.build_id
    del world.builds.builds[d.build_id]
    world.watch(QUIET[Status.BUILDING])
    failed = world.get(d)
    assert (
        failed.status == Status.FAILED
        and failed.error == f"Cloud Build has no record of build {d.build_id}; deploy again"
    )


def test_a_rollout_that_died_is_run_again_with_the_same_revision(world: World) -> None:
    d = world.submitted()
    world.cloud_build_says(d, "SUCCESS")
    world.services.fail_next("roll_out", Crash("build_finished killed mid-rollout"))
    with pytest.raises(Crash):
        world.follow_build.apply(d, world.builds.builds[d.build_id or ""])
    assert world.get(d).status == Status.DEPLOYING
    assert world.watch(QUIET[Status.DEPLOYING]) == {"roll out again": 1, "unfinished": 1}
    assert world.get(d).status == Status.LIVE
    assert [r.revision for r in world.services.rollouts] == [f"shop-abc123-{d.id}"]


def test_a_build_that_overstays_is_failed_and_stopped(world: World) -> None:
    d = world.submitted()
    world.cloud_build_says(d, "WORKING")
    assert world.watch(DEADLINES[Status.BUILDING].total + timedelta(seconds=1)) == {"gave up": 1, "unfinished": 1}
    failed = world.get(d)
    assert failed.status == Status.FAILED and (failed.error or "").endswith("deploy again")
    assert world.builds.cancelled == [d.build_id]
    assert world.watch(QUIET[Status.BUILDING]) == {"unfinished": 0}


def test_one_deployment_that_cannot_be_re_driven_does_not_stop_the_pass(world: World) -> None:
    first, second = deployment(id="dep000000001"), deployment(id="dep000000002")
    world.deployments.create(first)
    world.deployments.create(second)
    world.publisher.fail_next("publish", RuntimeError("Pub/Sub is down"))
    counts = world.watch(QUIET[Status.QUEUED])
    assert counts["unfinished"] == 2 and len(world.publisher.published) == 1
    # The failed one was marked re-driven before its publish failed: the next quiet spell tries again.
    assert world.watch(QUIET[Status.QUEUED]).get(str(Step.REQUEST_AGAIN)) == 2
