"""Cloud Build through the real google-cloud-build client, as Devgem's adapter calls it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions
from google.cloud.devtools import cloudbuild_v1

from tests.localcloud.conftest import (
    PROJECT,
    PYTHON_APP,
    REGION,
    PubSub,
    Server,
    build_json,
    create_build,
    run_build,
    wait_build,
    wait_for,
)

IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/svc:dep"
SLOW_NODE_APP = {
    # npm runs the root package's postinstall on install: a build that takes 30 s, without any network.
    "package.json": json.dumps(
        {
            "name": "slow",
            "version": "1.0.0",
            "scripts": {"start": "node server.js", "postinstall": "sleep 30"},
            "dependencies": {"lib": "file:./lib"},
        }
    ),
    "lib/package.json": '{"name": "lib", "version": "1.0.0"}',
    "server.js": "require('http').createServer((q, s) => s.end('node')).listen(process.env.PORT)",
}


def test_build_success_publishes_every_status(
    cb: cloudbuild_v1.CloudBuildClient, needs_pubsub: PubSub, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"main.py": PYTHON_APP, "requirements.txt": ""})
    op = create_build(cb, str(repo), IMAGE, tags=["devgem", "dep-ok", "app-a"])
    build_id = op.metadata.build.id  # available at once, without waiting for the operation
    assert op.metadata.build.status.name == "QUEUED"
    build = wait_build(cb, build_id)
    assert build.status.name == "SUCCESS", build.status_detail
    assert build.name == f"projects/{PROJECT}/locations/{REGION}/builds/{build_id}"
    assert build.project_id == PROJECT
    assert list(build.tags) == ["devgem", "dep-ok", "app-a"]
    assert build.source.git_source.url == str(repo) and build.source.git_source.revision == "main"
    assert build.steps[0].args[1] == IMAGE and build.steps[0].status.name == "SUCCESS"
    assert build.create_time <= build.start_time <= build.finish_time
    assert build.timeout.total_seconds() == 1200
    assert len(build.source_provenance.resolved_git_source.revision) == 40
    assert op.result(timeout=10).status.name == "SUCCESS"
    assert "DONE" in requests.get(build.log_url, timeout=5).text

    msgs = needs_pubsub.builds.wait(lambda m: m.attributes.get("buildId") == build_id, count=3)
    statuses = {m.attributes["status"] for m in msgs}
    assert statuses == {"QUEUED", "WORKING", "SUCCESS"}
    for m in msgs:
        data = build_json(m)
        assert data["id"] == build_id and data["status"] == m.attributes["status"]  # enum names, camelCase
        assert data["projectId"] == PROJECT and data["tags"] == ["devgem", "dep-ok", "app-a"]
        assert data["source"]["gitSource"]["url"] == str(repo)
    final = build_json(next(m for m in msgs if m.attributes["status"] == "SUCCESS"))
    assert "finishTime" in final and "startTime" in final

    # The build's lines arrive on log-entry as LogEntry JSON of resource type "build".
    entries = needs_pubsub.logs.wait(
        lambda m: json.loads(m.data).get("resource", {}).get("labels", {}).get("build_id") == build_id, count=5
    )
    entry = json.loads(entries[0].data)
    assert entry["logName"] == f"projects/{PROJECT}/logs/cloudbuild"
    assert entry["resource"] == {
        "type": "build",
        "labels": {"build_id": build_id, "build_trigger_id": "", "project_id": PROJECT},
    }
    assert {"insertId", "timestamp", "receiveTimestamp", "severity", "textPayload"} <= entry.keys()
    texts = [json.loads(m.data)["textPayload"] for m in entries]
    assert "FETCHSOURCE" in texts
    assert len({json.loads(m.data)["insertId"] for m in entries}) == len(entries)


def test_branch_not_found(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"index.html": "hi"})
    build = run_build(cb, str(repo), IMAGE, revision="nope")
    assert build.status.name == "FAILURE"
    assert build.status_detail == "branch nope not found"
    assert build.failure_info.type_.name == "FETCH_SOURCE_FAILED"
    assert build.failure_info.detail == "branch nope not found"
    with pytest.raises(exceptions.GoogleAPICallError, match="branch nope not found"):
        create_build(cb, str(repo), IMAGE, revision="nope").result(timeout=30)


def test_unreachable_repository(cb: cloudbuild_v1.CloudBuildClient, tmp_path: Path) -> None:
    build = run_build(cb, str(tmp_path / "missing"), IMAGE)
    assert build.status.name == "FAILURE" and build.failure_info.type_.name == "FETCH_SOURCE_FAILED"
    assert build.status_detail.startswith("could not read repository")


def test_dockerfile_only(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"Dockerfile": "FROM python:3.12\n"})
    build = run_build(cb, str(repo), IMAGE)
    assert build.status.name == "FAILURE"
    assert "Dockerfile" in build.status_detail and "cannot run Docker" in build.status_detail
    assert build.failure_info.type_.name == "USER_BUILD_STEP"


def test_nothing_recognisable(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"README.md": "hello"})
    build = run_build(cb, str(repo), IMAGE)
    assert build.status.name == "FAILURE"
    assert "looked for package.json" in build.status_detail


def test_python_without_start_command(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"requirements.txt": "", "lib.py": "x = 1"})
    build = run_build(cb, str(repo), IMAGE)
    assert build.status.name == "FAILURE"
    assert "Procfile" in build.status_detail and "main.py" in build.status_detail


def test_subdirectory(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"README.md": "monorepo", "services/web/index.html": "<h1>sub</h1>"})
    assert run_build(cb, str(repo), IMAGE + "-sub", directory="services/web").status.name == "SUCCESS"
    missing = run_build(cb, str(repo), IMAGE, directory="services/api")
    assert missing.status.name == "FAILURE"
    assert missing.status_detail == "directory services/api not found in repository"
    escape = run_build(cb, str(repo), IMAGE, directory="../..")
    assert escape.status.name == "FAILURE"


def test_non_pack_build_fails(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"index.html": "x"})
    op = cb.create_build(
        project_id=PROJECT,
        build=cloudbuild_v1.Build(
            source=cloudbuild_v1.Source(git_source=cloudbuild_v1.GitSource(url=str(repo), revision="main")),
            steps=[cloudbuild_v1.BuildStep(name="gcr.io/cloud-builders/docker", args=["build", "-t", "x", "."])],
        ),
    )
    build_id = op.metadata.build.id
    # The global form: projects/P/builds, names in location "global".
    assert op.metadata.build.name == f"projects/{PROJECT}/locations/global/builds/{build_id}"
    build = wait_for(
        lambda: (b := cb.get_build(project_id=PROJECT, id=build_id)).status.name == "FAILURE" and b, 30, "failure"
    )
    assert "only buildpacks (pack) builds can run locally" in build.status_detail
    assert op.operation.name.startswith(f"operations/build/{PROJECT}/")
    with pytest.raises(exceptions.GoogleAPICallError, match="only buildpacks"):
        op.result(timeout=30)  # polls GET /v1/operations/build/...


def test_get_list_and_not_found(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"index.html": "x"})
    first = run_build(cb, str(repo), IMAGE + "-l1", tags=["devgem", "dep-list1", "app-l"])
    second = run_build(cb, str(repo), IMAGE + "-l2", tags=["devgem", "dep-list2", "app-l"])
    by_name = cb.get_build(request={"name": f"projects/{PROJECT}/locations/{REGION}/builds/{first.id}"})
    by_id = cb.get_build(request={"project_id": PROJECT, "id": first.id})
    assert by_name.id == by_id.id == first.id
    parent = f"projects/{PROJECT}/locations/{REGION}"
    listed = cb.list_builds(request={"parent": parent, "project_id": PROJECT, "filter": 'tags="dep-list1"'})
    assert [b.id for b in listed] == [first.id]
    both = [b.id for b in cb.list_builds(request={"parent": parent, "project_id": PROJECT, "filter": 'tags="app-l"'})]
    assert both == [second.id, first.id]  # newest first
    paged = cb.list_builds(request={"parent": parent, "filter": 'tags="app-l"', "page_size": 1})
    assert [b.id for b in paged] == [second.id, first.id]
    with pytest.raises(exceptions.NotFound):
        cb.get_build(request={"name": f"projects/{PROJECT}/locations/{REGION}/builds/nope"})
    with pytest.raises(exceptions.BadRequest):
        list(cb.list_builds(request={"parent": parent, "filter": "color=red"}))


def _build_processes(server: Server, build_id: str) -> list[int]:
    """Processes working inside this build's own directories (npm, its postinstall's sleep), and no one else's.

    The checkout is in builds/ID, the app is built (npm install runs) in images/ID.
    """
    workspaces = [str((server.workdir / kind / build_id).resolve()) for kind in ("builds", "images")]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")  # "<path> (deleted)" once the checkout is removed
        except OSError:  # gone meanwhile, a zombie, or not ours to inspect
            continue
        if any(cwd.split(" (deleted)")[0] == w or cwd.startswith(w + "/") for w in workspaces):
            pids.append(int(entry.name))
    return pids


def test_cancel_running_build_kills_it(
    cb: cloudbuild_v1.CloudBuildClient, server: Server, needs_pubsub: PubSub, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo(SLOW_NODE_APP)
    op = create_build(cb, str(repo), IMAGE + "-slow")
    build_id = op.metadata.build.id
    name = f"projects/{PROJECT}/locations/{REGION}/builds/{build_id}"

    def sleeping() -> bool:
        return "sleep 30" in requests.get(f"{server.api_url}/localcloud/builds/{build_id}/log", timeout=5).text

    wait_for(sleeping, 30, "npm's postinstall")
    wait_for(lambda: _build_processes(server, build_id), 10, "the build's processes in its directories")
    cancelled = cb.cancel_build(request={"name": name, "project_id": PROJECT, "id": build_id})
    assert cancelled.status.name == "CANCELLED"
    assert cb.get_build(request={"name": name}).status.name == "CANCELLED"
    assert _build_processes(server, build_id) == []
    needs_pubsub.builds.wait(
        lambda m: m.attributes.get("buildId") == build_id and m.attributes["status"] == "CANCELLED"
    )
    # Cancelling a finished build changes nothing.
    assert cb.cancel_build(request={"name": name, "project_id": PROJECT, "id": build_id}).status.name == "CANCELLED"


def test_timeout(cb: cloudbuild_v1.CloudBuildClient, make_repo: Callable[..., Path]) -> None:
    repo = make_repo(SLOW_NODE_APP)
    build = run_build(cb, str(repo), IMAGE + "-timeout", timeout=2)
    assert build.status.name == "TIMEOUT"
    assert "timeout" in build.status_detail


def test_builds_beyond_the_pool_stay_queued(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    from tests.localcloud.conftest import _opts, start_server

    srv: Server = start_server(tmp_path / "work", None, "--max-builds", "1")
    try:
        client = cloudbuild_v1.CloudBuildClient(**_opts(srv))
        repo = make_repo(SLOW_NODE_APP)
        first = create_build(client, str(repo), IMAGE + "-q1").metadata.build.id
        second = create_build(client, str(repo), IMAGE + "-q2").metadata.build.id
        wait_for(lambda: client.get_build(project_id=PROJECT, id=first).status.name == "WORKING", 10, "first")
        # The first build is well into its steps (so the second has long asked for the only slot).
        wait_for(
            lambda: "sleep 30" in requests.get(f"{srv.api_url}/localcloud/builds/{first}/log", timeout=5).text,
            30,
            "the first build's postinstall",
        )
        assert client.get_build(project_id=PROJECT, id=second).status.name == "QUEUED"
        queued = client.cancel_build(project_id=PROJECT, id=second)
        assert queued.status.name == "CANCELLED"
    finally:
        assert srv.stop() == 0
    # The interrupted build is recorded as INTERNAL_ERROR, not left WORKING forever.
    state = json.loads((srv.workdir / "state.json").read_text())
    assert state["builds"][first]["status"] == "INTERNAL_ERROR"
