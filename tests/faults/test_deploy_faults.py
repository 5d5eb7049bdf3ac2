"""kill -9 and outages during concurrent deploys, and forged build events: every deployment ends, within
its deadline, with at most one build; a forgery changes nothing. Real servers throughout: the functions
are killed as processes and started again, as Cloud Functions would start a new instance."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1

from devgem import topology
from devgem.adapters import cloud_build, pubsub
from devgem.adapters.collections import REJECTED_EVENTS
from devgem.adapters.firestore_client import client
from devgem.config import settings
from devgem.domain.deadlines import DEADLINES
from devgem.domain.deployment import CLAIM_LEASE, Status
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.faults import Kill, StormResult, storm
from devstack.stack import Stack
from tests.waiting import wait_for

WATCHDOG_TICK = topology.function("watchdog").local_every_seconds
# A killed claim is re-driven after its lease; a lost request after the queued quiet time. Then a build
# and a rollout (a few seconds each here), and slack for two cores running eight builds.
RECOVERY = CLAIM_LEASE.total_seconds() + DEADLINES[Status.QUEUED].quiet.total_seconds() + WATCHDOG_TICK + 120


def _report(result: StormResult) -> str:
    return json.dumps(
        {"by_status": result.by_status(), "builds": result.builds, "errors": result.request_errors}, indent=1
    )


def _all_live_with_one_build(result: StormResult) -> None:
    assert not result.stuck, _report(result)
    assert result.by_status() == {"live": len(result.deployments)}, _report(result)
    assert result.builds_per_deploy_max == 1, _report(result)


def test_each_function_killed_at_several_points_of_eight_concurrent_deploys(
    stack: Stack, api: Api, repos: Path
) -> None:
    for round_ in range(2):  # twice: a fault test kills more than once
        kills = [
            Kill(0.2 + round_ * 0.3, "api"),  # mid-request: some deploys are stored but maybe never announced
            Kill(0.8 + round_ * 0.4, "deploy_requested"),  # between claims and submits
            Kill(2.5 + round_, "deploy_requested"),
            Kill(4.0 + round_, "build_finished"),  # builds finishing, rollouts starting
            Kill(7.0 + round_, "build_finished"),
        ]
        result = storm(stack, api, repos, kills, deploys=8, timeout=RECOVERY)
        assert len(result.deployments) + len(result.request_errors) >= 8, _report(result)
        _all_live_with_one_build(result)


def test_localcloud_killed_while_builds_are_submitted(stack: Stack, api: Api, repos: Path) -> None:
    for round_ in range(2):
        result = storm(stack, api, repos, [Kill(0.5 + round_, "localcloud", down_for=3)], deploys=6, timeout=RECOVERY)
        assert not result.stuck, _report(result)
        assert result.builds_per_deploy_max <= 1, _report(result)
        for d in result.deployments.values():  # a build that died with localcloud fails, saying so
            assert d["status"] == "live" or (d["status"] == "failed" and d.get("error")), _report(result)


def _rejections_naming(deployment_id: str) -> list[str]:
    query = client().collection(REJECTED_EVENTS).where(filter=firestore.FieldFilter("source", "==", "build_finished"))
    return [str(s.get("reason")) for s in query.stream() if deployment_id in str(s.get("reason"))]


def _forge(deployment_id: str, build_id: str, status: str) -> None:
    build = cloudbuild_v1.Build(
        id=build_id,
        project_id=settings().project,
        status=getattr(cloudbuild_v1.Build.Status, status),
        tags=["devgem", cloud_build.deployment_tag(deployment_id)],
    )
    data = cloudbuild_v1.Build.to_json(build).encode()
    pubsub.publish_raw(topology.CLOUD_BUILDS, data, buildId=build_id, status=status)


def test_forged_build_events_change_nothing_and_a_deploy_queued_behind_an_outage_starts_after_it(
    stack: Stack, api: Api, repos: Path
) -> None:
    repo = str(example_repos.example("hello-python", repos))
    other = api.deploy(api.create_app(repo)["id"])
    other_live = watch.follow_deployment(other["id"], timeout=120)
    assert other_live["status"] == "live", other_live

    stack.kill("deploy_requested")  # an outage: the request waits in Pub/Sub, then is dropped
    try:
        victim = api.deploy(api.create_app(repo)["id"])
        _forge(victim["id"], "00000000-made-up-build", "SUCCESS")
        _forge(victim["id"], other_live["buildId"], "SUCCESS")  # another deployment's real build
        _forge(victim["id"], "00000000-made-up-build", "FAILURE")
        wait_for(lambda: len(_rejections_naming(victim["id"])) >= 3, "the 3 forgeries rejected")
        reasons = _rejections_naming(victim["id"])
        assert any("Cloud Build has no build 00000000-made-up-build" in r for r in reasons), reasons
        assert any(f"is not a build of deployment {victim['id']}" in r for r in reasons), reasons
        stored = client().collection("deployments").document(victim["id"]).get().to_dict() or {}
        assert stored["status"] == "queued" and stored.get("buildId") is None, stored
    finally:
        stack.start_again("deploy_requested")

    ended = watch.follow_deployment(victim["id"], timeout=RECOVERY)
    assert ended["status"] == "live", ended
    again = client().collection("deployments").document(other["id"]).get().to_dict() or {}
    assert again["status"] == "live" and again["revision"] == other_live["revision"]  # the forgery moved nothing
    assert len(_rejections_naming(victim["id"])) == 3  # each forgery acked once, not redelivered
