"""cloud-builds with fakes at the edges: statuses repeat and reorder, processes die mid-rollout, and the
deployment still ends in exactly one place, with one revision, announced once."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from google.api_core import exceptions as gexc

from devgem.adapters.pubsub import PubSubMessage
from devgem.domain.deployment import BUILD_FAILED, BUILD_IN_PROGRESS, Deployment, Status
from devgem.domain.errors import InvalidEvent
from devgem.usecases.follow_build import FollowBuild
from tests.unit.fakes import (
    PROJECT,
    START,
    Crash,
    FakeBuilds,
    FakeClock,
    FakeProbe,
    FakeServices,
    FakeTail,
    InMemoryDeployments,
    build_status,
    deployment,
)

URL = "https://shop-abc123.apps.example.com"


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    deployments: InMemoryDeployments = field(default_factory=InMemoryDeployments)
    builds: FakeBuilds = field(default_factory=FakeBuilds)
    services: FakeServices = field(default_factory=FakeServices)
    probe: FakeProbe = field(default_factory=FakeProbe)
    tail: FakeTail = field(default_factory=FakeTail)

    @property
    def use_case(self) -> FollowBuild:
        return FollowBuild(
            self.deployments,
            self.builds,
            self.services,
            self.probe,
            self.tail,
            "https://{service}.apps.example.com",
            5.0,
            PROJECT,
            now=self.clock.now,
        )

    def building(self, **overrides: object) -> Deployment:
        d = deployment(Status.BUILDING, build_id="build-1", image="img:1", **overrides)
        self.deployments.create(d)
        return d

    def handle(self, message: PubSubMessage, *, cloud_build_agrees: bool = True) -> str:
        """Handle a notification; Cloud Build is in the state it reports unless it is stale or forged."""
        self.clock.advance(1)
        if cloud_build_agrees:
            self.builds.now_in(message)
        return self.use_case.handle(message)

    def now_status(self, d: Deployment) -> Status:
        found = self.deployments.get(d.id)
        assert found is not None
        return found.status


@pytest.fixture()
def world() -> World:
    return World()


def test_success_rolls_out_probes_and_goes_live(world: World) -> None:
    d = world.building()
    assert world.handle(build_status(d.id, "SUCCESS")) == f"live: {URL}"
    [rollout] = world.services.rollouts
    assert rollout.revision == f"shop-abc123-{d.id}" and rollout.image == "img:1"
    assert rollout.labels == {"devgem-tenant": "tenant-a", "devgem-app": d.app_id, "devgem-managed": "true"}
    assert world.probe.probed == [URL]
    live = world.deployments.get(d.id)
    assert live is not None and live.status == Status.LIVE and live.url == URL and live.revision == rollout.revision
    assert world.deployments.apps[d.app_id]["liveDeploymentId"] == d.id
    assert world.deployments.ledger == {"build:build-1:SUCCESS"}


def test_a_repeated_success_changes_nothing(world: World) -> None:
    d = world.building()
    world.handle(build_status(d.id, "SUCCESS"))
    writes = world.deployments.writes
    assert world.handle(build_status(d.id, "SUCCESS")) == "ignored: deployment already finished"
    assert len(world.services.rollouts) == 1 and world.deployments.writes == writes


@pytest.mark.parametrize("late", sorted(BUILD_IN_PROGRESS | BUILD_FAILED))
def test_a_late_status_after_live_changes_nothing(world: World, late: str) -> None:
    d = world.building()
    world.handle(build_status(d.id, "SUCCESS"))
    writes = world.deployments.writes
    assert world.handle(build_status(d.id, late)).startswith("ignored")
    assert world.now_status(d) == Status.LIVE and world.deployments.writes == writes


@pytest.mark.parametrize("late", sorted(BUILD_IN_PROGRESS))
def test_a_late_progress_after_failure_changes_nothing(world: World, late: str) -> None:
    d = world.building()
    world.handle(build_status(d.id, "FAILURE"))
    assert world.handle(build_status(d.id, late)).startswith("ignored")
    assert world.now_status(d) == Status.FAILED


def test_progress_moves_a_queued_deployment_to_building(world: World) -> None:
    d = deployment(Status.QUEUED)
    world.deployments.create(d)
    assert world.handle(build_status(d.id, "WORKING")) == "progress: WORKING"
    stored = world.deployments.get(d.id)
    assert stored is not None and stored.status == Status.BUILDING and stored.build_id == "build-1"


def test_the_same_progress_twice_is_written_once(world: World) -> None:
    d = world.building()
    world.handle(build_status(d.id, "WORKING"))
    writes = world.deployments.writes
    assert world.handle(build_status(d.id, "WORKING")) == "progress: WORKING (already noted)"
    assert world.deployments.writes == writes


@pytest.mark.parametrize(
    ("status", "failure_type", "detail", "says"),
    [
        ("FAILURE", "", "step 0 exited 1", "the build failed (FAILURE): step 0 exited 1"),
        ("FAILURE", "", "", "the build failed (FAILURE): see the build log"),
        ("FAILURE", "FETCH_SOURCE_FAILED", "", "could not fetch the source: branch main not found"),
        ("FAILURE", "FETCH_SOURCE_FAILED", "repository not found", "could not fetch the source: repository not found"),
        ("TIMEOUT", "", "", "the build took longer than 1200 s and was stopped"),
        ("CANCELLED", "", "", "the build was cancelled"),
        ("INTERNAL_ERROR", "", "", "the build failed (INTERNAL_ERROR): see the build log"),
        ("EXPIRED", "", "", "the build failed (EXPIRED): see the build log"),
    ],
)
def test_a_failed_build_says_why_and_keeps_its_tail(
    world: World, status: str, failure_type: str, detail: str, says: str
) -> None:
    d = world.building()
    assert world.handle(build_status(d.id, status, failure_type=failure_type, detail=detail)) == f"failed: {says}"
    stored = world.deployments.get(d.id)
    assert stored is not None and stored.status == Status.FAILED and stored.error == says
    assert world.tail.kept == [d.id] and not world.services.rollouts


def test_a_repeated_failure_is_recorded_once_and_fills_a_missing_tail(world: World) -> None:
    d = world.building()
    world.handle(build_status(d.id, "FAILURE"))
    writes = world.deployments.writes
    assert world.handle(build_status(d.id, "FAILURE")) == "ignored: deployment already finished"
    assert world.deployments.writes == writes
    assert world.tail.kept == [d.id, d.id]  # a crashed first attempt may not have stored it


def test_a_revision_that_cannot_start_fails_the_deployment(world: World) -> None:
    d = world.building()
    world.services.fail_next("roll_out", gexc.FailedPrecondition("container failed to start"))
    outcome = world.handle(build_status(d.id, "SUCCESS"))
    assert outcome.startswith("failed: the new revision did not start") and "container failed" in outcome
    assert world.now_status(d) == Status.FAILED


def test_an_outage_during_rollout_is_retried_and_then_goes_live(world: World) -> None:
    d = world.building()
    world.services.fail_next("roll_out", gexc.ServiceUnavailable("try again"))
    with pytest.raises(gexc.ServiceUnavailable):
        world.handle(build_status(d.id, "SUCCESS"))
    assert world.now_status(d) == Status.DEPLOYING
    assert world.handle(build_status(d.id, "SUCCESS")) == f"live: {URL}"


def test_a_crash_after_the_rollout_is_repaired_by_redelivery_with_one_revision(world: World) -> None:
    d = world.building()
    real_probe = world.probe.answers

    def die(url: str, timeout_seconds: float) -> tuple[bool, str]:
        raise Crash("killed while probing")

    world.probe.answers = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        world.handle(build_status(d.id, "SUCCESS"))
    world.probe.answers = real_probe  # type: ignore[method-assign]
    assert world.handle(build_status(d.id, "SUCCESS")) == f"live: {URL}"
    assert {r.revision for r in world.services.rollouts} == {f"shop-abc123-{d.id}"}


def test_a_crash_while_going_live_is_repaired_by_redelivery(world: World) -> None:
    d = world.building()
    world.deployments.fail_next("change", Crash("first change: deploying"))
    with pytest.raises(Crash):
        world.handle(build_status(d.id, "SUCCESS"))
    assert world.now_status(d) == Status.BUILDING
    assert world.handle(build_status(d.id, "SUCCESS")) == f"live: {URL}"


def test_a_url_that_never_answers_fails_the_deployment_with_what_was_seen(world: World) -> None:
    d = world.building()
    world.probe.result = (False, "HTTP 502")
    assert world.handle(build_status(d.id, "SUCCESS")) == f"failed: {URL} did not answer (HTTP 502)"
    stored = world.deployments.get(d.id)
    assert stored is not None and stored.status == Status.FAILED
    assert d.app_id not in world.deployments.apps  # the app's live release is untouched


@pytest.mark.parametrize("finished", [Status.SUPERSEDED, Status.CANCELLED, Status.FAILED])
def test_success_of_a_finished_deployment_rolls_nothing_out(world: World, finished: Status) -> None:
    d = deployment(finished, build_id="build-1", image="img:1")
    world.deployments.create(d)
    assert world.handle(build_status(d.id, "SUCCESS")) == "ignored: deployment already finished"
    assert not world.services.rollouts


def test_a_build_devgem_did_not_start_is_ignored(world: World) -> None:
    assert world.handle(build_status(None, "SUCCESS")) == "ignored: not a Devgem build"


def test_a_build_naming_an_absent_deployment_is_a_bad_event(world: World) -> None:
    with pytest.raises(InvalidEvent, match="does not exist"):
        world.handle(build_status("dep0000000zz", "SUCCESS"))


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"buildId": "b1"},
        {"status": "SUCCESS"},
        {"buildId": "b1", "status": "EXPLODED"},
        {"buildId": "", "status": "SUCCESS"},
    ],
)
def test_missing_or_unknown_attributes_are_a_bad_event(world: World, attributes: dict[str, str]) -> None:
    with pytest.raises(InvalidEvent, match="attributes"):
        world.handle(PubSubMessage(b"{}", attributes, "m", START))


@pytest.mark.parametrize("data", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b'{"tags": 5}', b'{"id": {}}'])
def test_data_that_is_not_a_build_is_a_bad_event(world: World, data: bytes) -> None:
    with pytest.raises(InvalidEvent, match="Build resource"):
        world.handle(PubSubMessage(data, {"buildId": "b1", "status": "SUCCESS"}, "m", START))


# --- a message is a hint: only what Cloud Build itself says moves a deployment ---------------------


def test_a_success_cloud_build_never_reported_is_rejected_and_changes_nothing(world: World) -> None:
    d = world.building()
    world.builds.now_in(build_status(d.id, "WORKING"))
    writes = world.deployments.writes
    with pytest.raises(InvalidEvent, match="no build made-up"):
        world.handle(build_status(d.id, "SUCCESS", build_id="made-up"), cloud_build_agrees=False)
    assert world.now_status(d) == Status.BUILDING and world.deployments.writes == writes
    assert not world.services.rollouts


def test_a_success_naming_another_deployment_than_its_build_is_rejected(world: World) -> None:
    victim = world.building()
    other = deployment(Status.BUILDING, id="dep000000002", build_id="build-2", image="img:2")
    world.deployments.create(other)
    world.builds.now_in(build_status(other.id, "SUCCESS", build_id="build-2"))
    forged = build_status(victim.id, "SUCCESS", build_id="build-2")  # other's real build, victim's tag
    with pytest.raises(InvalidEvent, match=f"not a build of deployment {victim.id}"):
        world.handle(forged, cloud_build_agrees=False)
    assert world.now_status(victim) == Status.BUILDING and not world.services.rollouts


def test_a_build_of_another_project_is_rejected(world: World) -> None:
    d = world.building()
    message = build_status(d.id, "SUCCESS")
    world.builds.now_in(message)
    world.builds.builds["build-1"].project_id = "someone-elses-project"
    with pytest.raises(InvalidEvent, match="belongs to project someone-elses-project"):
        world.handle(message, cloud_build_agrees=False)
    assert world.now_status(d) == Status.BUILDING


def test_a_second_build_of_the_same_deployment_is_rejected(world: World) -> None:
    d = world.building()  # built by build-1
    with pytest.raises(InvalidEvent, match=f"deployment {d.id} is built by build-1, not build-9"):
        world.handle(build_status(d.id, "FAILURE", build_id="build-9"))
    assert world.now_status(d) == Status.BUILDING


def test_a_status_cloud_build_does_not_report_is_ignored(world: World) -> None:
    d = world.building()
    world.builds.now_in(build_status(d.id, "WORKING"))
    outcome = world.handle(build_status(d.id, "SUCCESS"), cloud_build_agrees=False)
    assert outcome == "ignored: the message says SUCCESS, Cloud Build says WORKING"
    assert world.now_status(d) == Status.BUILDING and not world.services.rollouts


@pytest.mark.parametrize("build_id", ["../../v1/projects/x", "a b", "", "x" * 65, "build-1?status=SUCCESS"])
def test_a_build_id_that_is_not_an_id_is_a_bad_event(world: World, build_id: str) -> None:
    d = world.building()
    message = build_status(d.id, "SUCCESS")
    with pytest.raises(InvalidEvent, match="no valid buildId"):
        world.use_case.handle(PubSubMessage(message.data, {"buildId": build_id, "status": "SUCCESS"}, "m", None))
