"""POST /v1/apps/{app}/rollback through `handle`: its body is parsed as strictly as the others, a live
rollback answers 200 with the deployment, a refusal answers with its status and says why."""

from __future__ import annotations

import json
from typing import Any

import flask
import pytest

from devgem import bootstrap
from devgem.domain.deployment import Status
from devgem.domain.identity import Identity
from devgem.entrypoints import auth, http_api
from tests.unit.test_roll_back import APP_ID, World

PATH = f"/v1/apps/{APP_ID}/rollback"


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setattr(auth, "verify", lambda header: Identity("tenant-a", "ana"))
    monkeypatch.setattr(bootstrap, "roll_back", lambda: w.use_case)
    return w


def _post(raw: bytes, path: str = PATH) -> tuple[int, dict[str, Any]]:
    app = flask.Flask(__name__)
    with app.test_request_context(path, method="POST", data=raw, content_type="application/json"):
        response = http_api.handle(flask.request)
    return response.status_code, json.loads(response.get_data())


def test_a_rollback_without_a_body_goes_back_one_release(world: World) -> None:
    world.release(1)
    world.release(2)
    status, body = _post(b"")
    assert status == 200
    assert (body["status"], body["trigger"], body["rollbackOf"]) == ("live", "rollback", "d1000000")


def test_to_names_the_release(world: World) -> None:
    for n in (1, 2, 3):
        world.release(n)
    status, body = _post(json.dumps({"to": "d1000000"}).encode())
    assert (status, body["revision"]) == (200, "shop-abc123-d1")


@pytest.mark.parametrize("value", [None, 1, [], {}, False])
def test_to_of_the_wrong_type_is_a_400(world: World, value: object) -> None:
    world.release(1)
    world.release(2)
    status, body = _post(json.dumps({"to": value}).encode())
    assert status == 400 and body["error"]["message"].startswith("to must be a string")
    assert world.services.moves == []


def test_nothing_earlier_is_a_409_that_says_so(world: World) -> None:
    world.release(1)
    status, body = _post(b"{}")
    assert status == 409 and "no earlier release" in body["error"]["message"]


def test_another_tenants_app_is_a_404(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.release(1)
    world.release(2)
    monkeypatch.setattr(auth, "verify", lambda header: Identity("tenant-b", "bob"))
    assert _post(b"")[0] == 404


def test_a_rollout_in_flight_is_a_409_naming_it(world: World) -> None:
    world.release(1)
    world.release(2)
    world.release(3, Status.DEPLOYING)
    status, body = _post(b"")
    assert status == 409 and "d3000000" in body["error"]["message"]


def test_a_url_that_did_not_answer_is_a_502_with_the_failed_rollback(world: World) -> None:
    world.release(1)
    world.release(2)
    world.probe.result = (False, "HTTP 500")
    status, body = _post(b"")
    assert status == 502 and "HTTP 500" in body["error"]["message"]
    assert body["deployment"]["status"] == "failed"
