"""Cloud Run and the router through the real google-cloud-run client, as Devgem's adapter calls it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import run_v2
from google.cloud.devtools import cloudbuild_v1

from tests.localcloud.conftest import PROJECT, REGION, PubSub, Server, run_build, wait_for

PARENT = f"projects/{PROJECT}/locations/{REGION}"
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST


def to_revision(rev: str) -> list[run_v2.TrafficTarget]:
    return [run_v2.TrafficTarget(type_=REVISION, revision=rev, percent=100)]


def create(run: run_v2.ServicesClient, name: str, revision: str, image: str, env: dict[str, str] | None = None) -> Any:
    """create_service exactly as Devgem's production adapter calls it; returns the operation."""
    return run.create_service(
        parent=PARENT,
        service_id=name,
        service=run_v2.Service(
            labels={"devgem-app": "a1"},
            template=run_v2.RevisionTemplate(
                revision=revision,
                labels={"devgem-deployment": "d1"},
                containers=[
                    run_v2.Container(image=image, env=[run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()])
                ],
            ),
            traffic=to_revision(revision),
        ),
    )


def deploy(run: run_v2.ServicesClient, svc: run_v2.Service, revision: str, image: str, env: dict[str, str]) -> Any:
    svc.template.revision = revision
    svc.template.containers[0].image = image
    svc.template.containers[0].env = [run_v2.EnvVar(name=k, value=v) for k, v in env.items()]
    svc.traffic = to_revision(revision)
    return run.update_service(service=svc).result(timeout=120)


def test_deploy_update_and_rollback(
    run: run_v2.ServicesClient, revisions: run_v2.RevisionsClient, server: Server, python_image: str
) -> None:
    name = "shop"
    with pytest.raises(exceptions.NotFound):
        run.get_service(name=f"{PARENT}/services/{name}")

    svc = create(run, name, f"{name}-d1", python_image, {"MESSAGE": "v1"}).result(timeout=120)
    assert svc.name == f"{PARENT}/services/{name}"
    assert svc.uri == f"http://{name}.localhost:{server.router_port}"
    assert svc.latest_ready_revision == svc.latest_created_revision == f"{PARENT}/services/{name}/revisions/{name}-d1"
    assert svc.terminal_condition.type_ == "Ready"
    assert svc.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert svc.observed_generation == svc.generation == 1
    assert [(t.revision, t.percent) for t in svc.traffic_statuses] == [(f"{name}-d1", 100)]
    assert svc.labels["devgem-app"] == "a1"
    response = server.get(name, "/")
    assert response.status_code == 200 and response.text == f"v1 from {name}-d1 of {name}"
    assert response.headers["X-App"] == "yes"

    svc = deploy(run, run.get_service(name=svc.name), f"{name}-d2", python_image, {"MESSAGE": "v2"})
    assert svc.latest_ready_revision.endswith("/revisions/shop-d2") and svc.generation == 2
    assert server.get(name).text == "v2 from shop-d2 of shop"

    # Rollback: traffic back to d1, the template unchanged (d2 exists with the same containers).
    wait_for(lambda: _state(server, "shop-d1") == "stopped", 10, "idle d1 to stop")
    svc = run.get_service(name=svc.name)
    svc.traffic = to_revision(f"{name}-d1")
    svc = run.update_service(service=svc).result(timeout=120)
    assert [(t.revision, t.percent) for t in svc.traffic_statuses] == [("shop-d1", 100)]
    assert _state(server, "shop-d1") == "ready"
    assert server.get(name).text == "v1 from shop-d1 of shop"
    revs = [r.name.rsplit("/", 1)[-1] for r in revisions.list_revisions(parent=svc.name)]
    assert revs == ["shop-d2", "shop-d1"]
    rev = revisions.get_revision(name=f"{svc.name}/revisions/shop-d1")
    assert rev.containers[0].image == python_image and rev.labels["devgem-deployment"] == "d1"
    assert rev.service == svc.name
    assert any(c.type_ == "Ready" and c.state == run_v2.Condition.State.CONDITION_SUCCEEDED for c in rev.conditions)
    with pytest.raises(exceptions.NotFound):
        revisions.get_revision(name=f"{svc.name}/revisions/shop-nope")

    # LATEST goes to the newest ready revision.
    svc.traffic = [run_v2.TrafficTarget(type_=LATEST, percent=100)]
    svc = run.update_service(service=svc).result(timeout=120)
    assert svc.traffic_statuses[0].revision == "shop-d2"
    assert server.get(name).text == "v2 from shop-d2 of shop"


def _state(server: Server, revision: str) -> str:
    """The state of a revision's instance, from localcloud's debugging endpoint."""
    instances = requests.get(f"{server.api_url}/localcloud/instances", timeout=5).json()["instances"]
    return next((i["state"] for i in instances if i["revision"] == revision), "none")


def test_revision_names_are_immutable(run: run_v2.ServicesClient, python_image: str, server: Server) -> None:
    svc = create(run, "immut", "immut-a", python_image, {"MESSAGE": "a"}).result(timeout=120)
    # Same name, same containers: nothing new, only traffic would move.
    same = run.update_service(service=svc).result(timeout=120)
    assert same.latest_created_revision == svc.latest_created_revision
    # Same name, different containers: ALREADY_EXISTS (HTTP 409).
    svc.template.containers[0].env = [run_v2.EnvVar(name="MESSAGE", value="b")]
    with pytest.raises(exceptions.Conflict, match="already exists"):
        run.update_service(service=svc)
    # No name: a generated one, service-00002-xyz style.
    svc.template.revision = ""
    svc.traffic = [run_v2.TrafficTarget(type_=LATEST, percent=100)]
    generated = run.update_service(service=svc).result(timeout=120)
    short = generated.latest_ready_revision.rsplit("/", 1)[-1]
    assert short.startswith("immut-0000") and len(short.split("-")[-1]) == 3
    assert server.get("immut").text == f"b from {short} of immut"
    with pytest.raises(exceptions.Conflict):
        create(run, "immut", "immut-x", python_image)
    with pytest.raises(exceptions.BadRequest, match="prefixed by the service name"):
        create(run, "immut2", "other-1", python_image)
    run.delete_service(name=svc.name).result(timeout=30)
    with pytest.raises(exceptions.NotFound):
        run.get_service(name=svc.name)
    assert server.get("immut").status_code == 404


def test_traffic_split(run: run_v2.ServicesClient, python_image: str, server: Server) -> None:
    svc = create(run, "split", "split-a", python_image, {"MESSAGE": "a"}).result(timeout=120)
    svc = deploy(run, svc, "split-b", python_image, {"MESSAGE": "b"})
    svc.traffic = [
        run_v2.TrafficTarget(type_=REVISION, revision="split-a", percent=50),
        run_v2.TrafficTarget(type_=REVISION, revision="split-b", percent=50),
    ]
    run.update_service(service=svc).result(timeout=120)
    seen = {server.get("split").text.split()[0] for _ in range(40)}
    assert seen == {"a", "b"}
    svc.traffic = [run_v2.TrafficTarget(type_=REVISION, revision="split-a", percent=60)]
    with pytest.raises(exceptions.BadRequest, match="add up to 100"):
        run.update_service(service=svc)


def test_unknown_image_fails_the_operation(run: run_v2.ServicesClient) -> None:
    op = create(run, "noimage", "noimage-1", "example.com/nothing:here")
    with pytest.raises(exceptions.GoogleAPICallError, match=r"image example\.com/nothing:here not found"):
        op.result(timeout=60)


def test_app_that_fails_to_start(
    run: run_v2.ServicesClient, cb: cloudbuild_v1.CloudBuildClient, server: Server, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"main.py": "import sys\nprint('missing DATABASE_URL', file=sys.stderr)\nsys.exit(4)\n"})
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/broken:1"
    assert run_build(cb, str(repo), image).status.name == "SUCCESS"
    op = create(run, "broken", "broken-1", image)
    with pytest.raises(exceptions.GoogleAPICallError) as e:
        op.result(timeout=60)
    assert "missing DATABASE_URL" in str(e.value) and "PORT" in str(e.value)
    svc = run.get_service(name=f"{PARENT}/services/broken")
    assert svc.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED
    assert svc.latest_created_revision.endswith("broken-1") and not svc.latest_ready_revision
    response = server.get("broken")
    assert response.status_code == 503 and "broken" in response.text


def test_router_unknown_host(server: Server) -> None:
    response = server.get("nosuchservice")
    assert response.status_code == 404
    assert "nosuchservice" in response.text and response.headers["Content-Type"].startswith("text/plain")
    bare = requests.get(f"http://127.0.0.1:{server.router_port}/", timeout=5)
    assert bare.status_code == 404 and "localhost" in bare.text


def test_router_proxies_method_body_query_and_streams(
    run: run_v2.ServicesClient, python_image: str, server: Server
) -> None:
    create(run, "echo", "echo-1", python_image).result(timeout=120)
    response = server.get("echo", "/submit?a=1&b=%20x", method="POST", data=b"payload" * 1000)
    assert response.status_code == 201
    assert response.text == "echo:" + "payload" * 1000 + " q=/submit?a=1&b=%20x"


def _restarts(server: Server, revision: str) -> int:
    instances = requests.get(f"{server.api_url}/localcloud/instances", timeout=5).json()["instances"]
    return int(next((i["restarts"] for i in instances if i["revision"] == revision), 0))


def test_crashed_revision_is_restarted(
    run: run_v2.ServicesClient, python_image: str, server: Server, pubsub: PubSub | None
) -> None:
    create(run, "crashy", "crashy-1", python_image).result(timeout=120)
    pid = int(server.get("crashy", "/pid").text)
    assert server.get("crashy", "/crash").status_code in (502, 503)
    # Once the supervisor has seen the exit, a new instance starts (backoff 1 s) and requests wait
    # for it. (A request in the instant between the crash and that gets 503, as on Cloud Run.)
    wait_for(lambda: _restarts(server, "crashy-1") >= 1, 10, "the supervisor to see the crash")
    assert server.get("crashy").status_code == 200
    assert int(server.get("crashy", "/pid").text) != pid
    if pubsub is not None:
        pubsub.logs.wait(
            lambda m: (
                (e := json.loads(m.data)).get("textPayload") == "Container called exit(3)."
                and e["resource"]["labels"].get("revision_name") == "crashy-1"
                and e["logName"].endswith("run.googleapis.com%2Fvarlog%2Fsystem")
                and e["severity"] == "ERROR"
            )
        )


def test_revision_output_reaches_log_entry(
    run: run_v2.ServicesClient, python_image: str, server: Server, needs_pubsub: PubSub
) -> None:
    create(run, "logs", "logs-1", python_image).result(timeout=120)
    server.get("logs", "/log-me")

    def of_revision(m: Any) -> bool:
        return bool(json.loads(m.data)["resource"]["labels"].get("revision_name") == "logs-1")

    structured = needs_pubsub.logs.wait(lambda m: of_revision(m) and "jsonPayload" in json.loads(m.data))
    entry = json.loads(structured[0].data)
    assert entry["jsonPayload"] == {"message": "structured /log-me"}
    assert entry["severity"] == "WARNING"
    assert entry["logName"] == f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout"
    assert entry["resource"] == {
        "type": "cloud_run_revision",
        "labels": {
            "service_name": "logs",
            "revision_name": "logs-1",
            "configuration_name": "logs",
            "location": REGION,
            "project_id": PROJECT,
        },
    }
    assert entry["labels"]["instanceId"]
    started = needs_pubsub.logs.wait(
        lambda m: of_revision(m) and json.loads(m.data).get("textPayload", "").startswith("app starting on port")
    )
    assert json.loads(started[0].data)["severity"] == "DEFAULT"
    assert structured[0].attributes["logging.googleapis.com/timestamp"] == entry["timestamp"]


def test_static_and_node_apps(
    run: run_v2.ServicesClient, cb: cloudbuild_v1.CloudBuildClient, server: Server, make_repo: Callable[..., Path]
) -> None:
    static = make_repo({"index.html": "<h1>static site</h1>", "about/index.html": "about"})
    node = make_repo(
        {
            "package.json": json.dumps({"name": "n", "version": "1.0.0", "scripts": {"start": "node server.js"}}),
            "server.js": "require('http').createServer((q, s) => s.end('node says ' + q.url)).listen(process.env.PORT)",
        }
    )
    for kind, repo in (("static", static), ("node", node)):
        image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/{kind}:1"
        assert run_build(cb, str(repo), image).status.name == "SUCCESS"
        create(run, kind, f"{kind}-1", image).result(timeout=120)
    assert server.get("static", "/").text == "<h1>static site</h1>"
    assert server.get("static", "/about/").text == "about"
    assert server.get("static", "/missing").status_code == 404
    assert server.get("node", "/x?y=1").text == "node says /x?y=1"


def test_sigterm_stops_every_revision_and_restart_restores_services(
    tmp_path: Path, make_repo: Callable[..., Path]
) -> None:
    from tests.localcloud.conftest import PYTHON_APP, _opts, start_server

    srv = start_server(tmp_path / "work", None, "--sync-wait", "0")  # op.result() must poll the operation
    try:
        client = cloudbuild_v1.CloudBuildClient(**_opts(srv))
        services = run_v2.ServicesClient(**_opts(srv))
        repo = make_repo({"main.py": PYTHON_APP})
        image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/persist:1"
        assert run_build(client, str(repo), image).status.name == "SUCCESS"
        create(services, "persist", "persist-1", image).result(timeout=120)
        pid = int(srv.get("persist", "/pid").text)
    finally:
        assert srv.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # A restarted localcloud still knows the image and the service, and serves it again.
    again = start_server(tmp_path / "work", None)
    try:
        assert again.get("persist").text == "hello from persist-1 of persist"
        svc = run_v2.ServicesClient(**_opts(again)).get_service(name=f"{PARENT}/services/persist")
        assert svc.latest_ready_revision.endswith("persist-1")
        pid2 = int(again.get("persist", "/pid").text)
    finally:
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(30) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid2, 0)


def test_leftovers_of_a_killed_localcloud_are_killed(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    from tests.localcloud.conftest import _opts, start_server

    srv = start_server(tmp_path / "work", None)
    repo = make_repo({"index.html": "hi"})
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/left:1"
    assert run_build(cloudbuild_v1.CloudBuildClient(**_opts(srv)), str(repo), image).status.name == "SUCCESS"
    create(run_v2.ServicesClient(**_opts(srv)), "left", "left-1", image).result(timeout=120)
    pid = next(i["pid"] for i in requests.get(f"{srv.api_url}/localcloud/instances", timeout=5).json()["instances"])
    srv.proc.kill()  # no chance to clean up
    srv.proc.wait()
    os.kill(pid, 0)  # the static server is still running
    again = start_server(tmp_path / "work", None)
    try:
        wait_for(lambda: not _alive(pid), 5, "the leftover to be killed")
        assert again.get("left").text == "hi"
    finally:
        assert again.stop() == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (not reaped by its dead parent yet) counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


def test_fast_output_is_not_blocked_and_all_lines_arrive(
    run: run_v2.ServicesClient, python_image: str, server: Server, needs_pubsub: PubSub
) -> None:
    """3,000 lines at once (with invalid UTF-8): the app is not slowed down, and every line is published."""
    create(run, "flood", "flood-1", python_image).result(timeout=120)
    assert server.get("flood", "/flood?n=3000").status_code == 200

    def flood_lines() -> list[Any]:
        return needs_pubsub.logs.find(
            lambda m: b"flood-1" in m.data and json.loads(m.data).get("textPayload", "").startswith("flood ")
        )

    wait_for(lambda: len(flood_lines()) >= 3000, 30, "3000 log entries")
    entries = [json.loads(m.data) for m in flood_lines()]
    assert {e["textPayload"] for e in entries} == {f"flood {i} \ufffd" for i in range(3000)}
    assert len({e["insertId"] for e in entries}) == 3000


def test_python_dependencies_and_procfile(
    run: run_v2.ServicesClient, cb: cloudbuild_v1.CloudBuildClient, server: Server, make_repo: Callable[..., Path]
) -> None:
    """requirements.txt is pip-installed into the app's venv (a local wheel: no network), and the
    Procfile's web: line starts the app with that venv's python first on PATH."""
    repo = make_repo(
        {
            "requirements.txt": "./wheels/tinypkg-1.0-py3-none-any.whl\n",
            "Procfile": "web: python serve.py --greeting from-procfile\n",
            "serve.py": (
                "import os, sys, tinypkg\n"
                "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
                "class H(BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        body = f'{tinypkg.VALUE} {sys.argv[2]}'.encode()\n"
                "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
                "HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
            ),
        }
    )
    _write_wheel(repo / "wheels" / "tinypkg-1.0-py3-none-any.whl")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "wheel"], check=True
    )
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/wheel:1"
    build = run_build(cb, str(repo), image)
    assert build.status.name == "SUCCESS", build.status_detail
    create(run, "wheel", "wheel-1", image).result(timeout=120)
    assert server.get("wheel").text == "from tinypkg from-procfile"


def _write_wheel(path: Path) -> None:
    """A minimal pure-Python wheel, written by hand so the test needs neither network nor setuptools."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {
        "tinypkg/__init__.py": "VALUE = 'from tinypkg'\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},,\n" for name in files] + ["tinypkg-1.0.dist-info/RECORD,,\n"]
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr("tinypkg-1.0.dist-info/RECORD", "".join(record))
