"""Rollback on the real local stack: release 1, release 2, roll back and the router serves release 1
again from its own revision (no build), then the next deploy takes the traffic back. Refusals through the api."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from google.cloud import run_v2

from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devstack import watch
from devstack.api_client import Api
from devstack.stack import Stack
from tests.fixtures import apps

RELEASE = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"release {N} from {os.environ.get('K_REVISION')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""


def _release(repos: Path, name: str, n: int) -> Path:
    """The app's repository with release `n` as its newest commit."""
    return apps.repo_with(repos, name, {"main.py": RELEASE.replace("{N}", str(n)), "requirements.txt": "\n"})


def _deploy(api: Api, app_id: str) -> dict[str, Any]:
    deployment_id = api.deploy(app_id)["id"]
    final = watch.follow_deployment(deployment_id, timeout=180)
    assert final["status"] == "live", final
    return {**final, "id": deployment_id}


def _serving(stack: Stack, url: str) -> str:
    host = url.split("//", 1)[1]
    return requests.get(stack.router_url + "/", headers={"Host": host}, timeout=10).text


def _rollback(api: Api, app_id: str, **body: str) -> requests.Response:
    return api.call("POST", f"/v1/apps/{app_id}/rollback", json=body)


def test_rollback_serves_the_earlier_release_and_the_next_deploy_unpins(stack: Stack, api: Api, repos: Path) -> None:
    repo = _release(repos, "rollback-app", 1)
    app = api.create_app(str(repo))
    first = _deploy(api, app["id"])
    assert _serving(stack, first["url"]) == f"release 1 from {first['revision']}"
    _release(repos, "rollback-app", 2)
    second = _deploy(api, app["id"])
    assert _serving(stack, second["url"]) == f"release 2 from {second['revision']}"

    response = _rollback(api, app["id"])

    assert response.status_code == 200, response.text
    back = response.json()
    assert (back["status"], back["trigger"], back["rollbackOf"]) == ("live", "rollback", first["id"])
    assert back["revision"] == first["revision"]
    assert _serving(stack, first["url"]) == f"release 1 from {first['revision']}"
    app_now = api.call("GET", f"/v1/apps/{app['id']}").json()
    assert (app_now["liveRevision"], app_now["liveDeploymentId"]) == (first["revision"], back["id"])
    history = api.call("GET", f"/v1/apps/{app['id']}/deployments").json()["deployments"]
    assert {d["id"]: d["trigger"] for d in history}[back["id"]] == "rollback"
    assert len(_revisions(app["serviceName"])) == 2  # no new revision, no build

    _release(repos, "rollback-app", 3)
    third = _deploy(api, app["id"])
    assert _serving(stack, third["url"]) == f"release 3 from {third['revision']}"


def test_rollback_refusals_through_the_api(stack: Stack, api: Api, repos: Path) -> None:
    app = api.create_app(str(_release(repos, "rollback-refused", 1)))
    first = _deploy(api, app["id"])

    nothing = _rollback(api, app["id"])
    assert nothing.status_code == 409 and "no earlier release" in nothing.json()["error"]["message"]
    other_tenant = Api(stack, tenant=f"{api.tenant}-other")
    assert _rollback(other_tenant, app["id"]).status_code == 404
    assert _rollback(api, app["id"], to=first["id"]).status_code == 409  # already live

    _release(repos, "rollback-refused", 2)
    _deploy(api, app["id"])
    _delete_revision(app["serviceName"], first["revision"])
    deleted = _rollback(api, app["id"])
    assert deleted.status_code == 409
    assert f"revision {first['revision']} was deleted" in deleted.json()["error"]["message"]


def _revisions(service: str) -> list[str]:
    client = run_v2.RevisionsClient(**client_kwargs(settings().cloud_run_endpoint))
    return [r.name for r in client.list_revisions(parent=_service_name(service))]


def _delete_revision(service: str, revision: str) -> None:
    client = run_v2.RevisionsClient(**client_kwargs(settings().cloud_run_endpoint))
    client.delete_revision(name=f"{_service_name(service)}/revisions/{revision}").result(timeout=60)


def _service_name(service: str) -> str:
    s = settings()
    return f"projects/{s.project}/locations/{s.region}/services/{service}"
