"""kill -9, freezes and outages during concurrent deploys, and forged build events: every deployment
ends within its deadline with at most one build, and a forgery changes nothing. Real servers throughout:
functions and localcloud are killed as processes and started again, as Cloud Functions would start a new
instance; the scenarios are bench.faults_deploys, which `make bench-faults` runs too."""

from __future__ import annotations

import json
from pathlib import Path

from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1

from bench import faults_deploys as faults
from bench.faults_deploys import Kill, Storm
from devgem import topology
from devgem.adapters import cloud_build, pubsub
from devgem.adapters.collections import DEPLOYMENTS, REJECTED_EVENTS
from devgem.adapters.firestore_client import client
from devgem.config import settings
from devgem.domain.deadlines import DEADLINES
from devgem.domain.deployment import CLAIM_LEASE, Status
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.stack import Stack
from tests.waiting import wait_for

TICK = topology.function("watchdog").local_every_seconds
BUILD_AND_ROLLOUT = 90  # a few seconds each here; slack for two cores running several builds at once


def _all_live_with_one_build(storm: Storm, within: float) -> None:
    report = json.dumps(storm.summary(), indent=1)
    assert storm.deployments and not storm.stuck, report
    assert storm.by_status() == {"live": len(storm.deployments)}, report
    assert storm.builds_per_deploy_max == 1, report
    assert max(storm.recover_seconds) < within, f"{storm.recover_seconds} (deadline {within} s)\n{report}"


def test_deploy_requested_killed_between_claims_and_submits(stack: Stack, api: Api, repos: Path) -> None:
    """Redeliveries within the claim's lease are acked; the watchdog resumes each claim after it, finding
    the build by its tag where the submit had reached Cloud Build ("thaw") or submitting it ("kill")."""
    within = CLAIM_LEASE.total_seconds() + TICK + BUILD_AND_ROLLOUT
    for localcloud in ("thaw", "kill"):
        storm = faults.claims_without_submits(stack, api, repos, localcloud, timeout=within + 30)
        _all_live_with_one_build(storm, within)


def test_build_notifications_never_heard_are_asked_of_cloud_build(stack: Stack, api: Api, repos: Path) -> None:
    within = DEADLINES[Status.BUILDING].quiet.total_seconds() + TICK + BUILD_AND_ROLLOUT
    _all_live_with_one_build(faults.notifications_lost(stack, api, repos, timeout=within + 30), within)


def test_each_function_killed_at_random_moments_of_eight_concurrent_deploys(
    stack: Stack, api: Api, repos: Path
) -> None:
    # Whatever was hit: a request lost with the api, a claim, a rollout (the emulator did not push
    # SUCCESS again for minutes to a function that had refused its connection): the longest quiet time.
    within = max(d.quiet for d in DEADLINES.values()).total_seconds() + TICK + BUILD_AND_ROLLOUT
    for round_ in range(2):  # twice: a fault test kills more than once
        kills = [
            Kill(0.1 + round_ * 0.3, "api"),  # mid-request: a deploy may be stored and never announced
            Kill(0.6 + round_ * 0.4, "deploy_requested"),
            Kill(3.0 + round_, "build_finished"),
            Kill(6.0 + round_, "build_finished"),
        ]
        _all_live_with_one_build(faults.random_kills(stack, api, repos, kills, timeout=within + 30), within)


def _rejections_naming(deployment_id: str) -> list[str]:
    source = firestore.FieldFilter("source", "==", "build_finished")
    query = client().collection(REJECTED_EVENTS).where(filter=source)
    return [str(s.get("reason")) for s in query.stream() if deployment_id in str(s.get("reason"))]


def _forge(deployment_id: str, build_id: str, status: str) -> None:
    """A message that looks like Cloud Build's, naming a deployment it did not build."""
    build = cloudbuild_v1.Build(
        id=build_id,
        project_id=settings().project,
        status=getattr(cloudbuild_v1.Build.Status, status),
        tags=["devgem", cloud_build.deployment_tag(deployment_id)],
    )
    data = cloudbuild_v1.Build.to_json(build).encode()
    pubsub.publish_raw(topology.CLOUD_BUILDS, data, buildId=build_id, status=status)


def _stored(deployment_id: str) -> dict[str, object]:
    return client().collection(DEPLOYMENTS).document(deployment_id).get().to_dict() or {}


def test_forged_build_events_change_nothing_and_a_lost_request_still_starts(
    stack: Stack, api: Api, repos: Path
) -> None:
    repo = str(example_repos.example("hello-python", repos))
    other_id = api.deploy(api.create_app(repo)["id"])["id"]
    other = watch.follow_deployment(other_id, timeout=120)
    assert other["status"] == "live", other

    with faults.swallowing(stack, "deploy_requested") as swallowed:  # the request will be lost
        victim = api.deploy(api.create_app(repo)["id"])["id"]
        _forge(victim, "00000000-made-up-build", "SUCCESS")
        _forge(victim, str(other["buildId"]), "SUCCESS")  # another deployment's real build
        _forge(victim, "00000000-made-up-build", "FAILURE")
        wait_for(lambda: len(_rejections_naming(victim)) >= 3, "the three forgeries to be rejected")
        reasons = _rejections_naming(victim)
        assert sum("Cloud Build has no build 00000000-made-up-build" in r for r in reasons) == 2, reasons
        assert any(f"is not a build of deployment {victim}" in r for r in reasons), reasons
        assert _stored(victim)["status"] == "queued" and _stored(victim).get("buildId") is None
        wait_for(lambda: any(a.get("deploymentId") == victim for a in swallowed), "the request to be lost")

    within = DEADLINES[Status.QUEUED].quiet.total_seconds() + TICK + BUILD_AND_ROLLOUT
    ended = watch.follow_deployment(victim, timeout=within)
    assert ended["status"] == "live", ended
    assert len(_rejections_naming(victim)) == 3  # each forgery was acked once, not redelivered
    untouched = _stored(other_id)
    assert untouched["status"] == "live" and untouched["revision"] == other["revision"]
