"""A repository becomes a live URL: api -> deploy-requested -> Cloud Build -> cloud-builds -> Cloud Run
-> router, every hop a real server, every event a real Pub/Sub push."""

from __future__ import annotations

from pathlib import Path

import requests
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.cloud.devtools import cloudbuild_v1

from devgem import topology
from devgem.adapters import cloud_build, pubsub
from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.stack import Stack
from tests.fixtures import apps
from tests.waiting import wait_for


def _through_router(stack: Stack, url: str) -> requests.Response:
    host = url.split("//", 1)[1]
    return requests.get(stack.router_url + "/", headers={"Host": host}, timeout=10)


def _builds_for(deployment_id: str) -> list[cloudbuild_v1.Build]:
    client = cloudbuild_v1.CloudBuildClient(**client_kwargs(settings().cloud_build_endpoint))
    s = settings()
    request = {
        "parent": f"projects/{s.project}/locations/{s.region}",
        "project_id": s.project,
        "filter": f'tags="{cloud_build.deployment_tag(deployment_id)}"',
    }
    return list(client.list_builds(request=request))


def _revisions(service: str) -> list[str]:
    s = settings()
    client = run_v2.RevisionsClient(**client_kwargs(s.cloud_run_endpoint))
    parent = f"projects/{s.project}/locations/{s.region}/services/{service}"
    return [r.name.rsplit("/", 1)[-1] for r in client.list_revisions(parent=parent)]


def _wait_for_log(stack: Stack, function: str, text: str, count: int, timeout: float = 60) -> None:
    log = stack.children[function].log_path
    logged = lambda: log.read_text(errors="replace").count(text) >= count  # noqa: E731
    wait_for(logged, f"{function} to log {text!r} {count} times", timeout)


def test_the_example_app_goes_live_and_answers_through_the_router(stack: Stack, api: Api, repos: Path) -> None:
    repo = example_repos.example("hello-python", repos)
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])
    assert deployment["status"] == "queued"

    seen: list[str] = []
    final = watch.follow_deployment(deployment["id"], timeout=180, on_change=lambda d: seen.append(d["status"]))

    assert final["status"] == "live", final
    assert seen[-1] == "live" and "building" in seen
    assert set(final["stageTimes"]) >= {"queued", "building", "deploying", "live"}
    page = _through_router(stack, final["url"])
    assert page.status_code == 200
    assert "Hello from Devgem" in page.text
    assert final["revision"] in page.text
    app_now = api.call("GET", f"/v1/apps/{app['id']}").json()
    assert app_now["liveRevision"] == final["revision"]
    assert app_now["liveDeploymentId"] == deployment["id"]
    listed = api.call("GET", f"/v1/apps/{app['id']}/deployments").json()["deployments"]
    assert [d["id"] for d in listed] == [deployment["id"]]


def test_a_branch_that_does_not_exist_fails_with_the_reason_and_leaves_nothing_running(api: Api, repos: Path) -> None:
    repo = example_repos.example("hello-python", repos)
    app = api.create_app(str(repo), branch="no-such-branch")
    deployment = api.deploy(app["id"])

    final = watch.follow_deployment(deployment["id"], timeout=120)

    assert final["status"] == "failed"
    assert "branch no-such-branch not found" in final["error"]
    s = settings()
    services = run_v2.ServicesClient(**client_kwargs(s.cloud_run_endpoint))
    try:
        services.get_service(name=f"projects/{s.project}/locations/{s.region}/services/{app['serviceName']}")
        raise AssertionError("a service was created for a build that failed")
    except gexc.NotFound:
        pass


def test_the_same_deploy_request_delivered_three_times_makes_exactly_one_build(api: Api, repos: Path) -> None:
    repo = example_repos.example("hello-python", repos)
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])
    again = {"deploymentId": deployment["id"], "tenantId": api.tenant, "appId": app["id"]}
    pubsub.publish(topology.DEPLOY_REQUESTED, again, deploymentId=deployment["id"])
    pubsub.publish(topology.DEPLOY_REQUESTED, again, deploymentId=deployment["id"])

    final = watch.follow_deployment(deployment["id"], timeout=180)

    assert final["status"] == "live", final
    assert len(_builds_for(deployment["id"])) == 1


def test_repeated_and_late_build_statuses_change_nothing(stack: Stack, api: Api, repos: Path) -> None:
    repo = example_repos.example("hello-python", repos)
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])
    final = watch.follow_deployment(deployment["id"], timeout=180)
    assert final["status"] == "live", final
    (build,) = _builds_for(deployment["id"])
    log_before = stack.children["build_finished"].log_path.read_text(errors="replace").count("ignored")

    for status in ("SUCCESS", "WORKING", "QUEUED", "SUCCESS"):
        stale = cloudbuild_v1.Build.to_json(build)
        pubsub.publish_raw(topology.CLOUD_BUILDS, stale.encode(), buildId=build.id, status=status)
    _wait_for_log(stack, "build_finished", "ignored", log_before + 4)

    after = watch.follow_deployment(deployment["id"], timeout=10)
    assert after["status"] == "live"
    assert after["updatedAt"] == final["updatedAt"]
    assert _revisions(app["serviceName"]) == [final["revision"]]


def test_build_finished_killed_mid_rollout_still_reaches_live(stack: Stack, api: Api, repos: Path) -> None:
    repo = apps.slow_start_repo(repos)
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])

    mid = watch.follow_deployment(
        deployment["id"], timeout=180, until=lambda d: d.get("status") != "queued" and d.get("status") != "building"
    )
    assert mid["status"] == "deploying", mid
    stack.restart_function("build_finished", kill=True)

    final = watch.follow_deployment(deployment["id"], timeout=180)
    assert final["status"] == "live", final
    assert _through_router(stack, final["url"]).text == "slow but up"
    assert _revisions(app["serviceName"]) == [final["revision"]]


def test_a_newer_deploy_supersedes_and_cancels_the_older_one(api: Api, repos: Path) -> None:
    repo = apps.slow_build_repo(repos)  # the older build must still be running when the newer arrives
    app = api.create_app(str(repo))
    older = api.deploy(app["id"])
    newer = api.deploy(app["id"])

    final_newer = watch.follow_deployment(newer["id"], timeout=180)
    final_older = watch.follow_deployment(older["id"], timeout=60)

    assert final_newer["status"] == "live", final_newer
    assert final_older["status"] == "superseded", final_older
    assert final_older["supersededBy"] == newer["id"]
    for build in _builds_for(older["id"]):
        assert build.status != cloudbuild_v1.Build.Status.SUCCESS
    app_now = api.call("GET", f"/v1/apps/{app['id']}").json()
    assert app_now["liveDeploymentId"] == newer["id"]
