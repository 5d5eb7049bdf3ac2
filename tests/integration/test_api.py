"""The api function in functions-framework against the Firestore emulator: what bad input gets."""

from __future__ import annotations

import pytest
import requests

from devstack.api_client import Api
from devstack.stack import Stack


def test_create_and_read_an_app(api: Api) -> None:
    app = api.create_app("https://github.com/ana/shop", branch="main", subdirectory="web")
    assert app["tenantId"] == api.tenant
    assert app["serviceName"].startswith("shop-")
    got = api.call("GET", f"/v1/apps/{app['id']}")
    assert got.status_code == 200
    assert got.json()["repoUrl"] == "https://github.com/ana/shop"
    assert got.json()["subdirectory"] == "web"
    listed = api.call("GET", "/v1/apps").json()["apps"]
    assert [a["id"] for a in listed] == [app["id"]]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"repoUrl": "http://github.com/ana/shop"}, "https://"),
        ({"repoUrl": "https://ana:secret@github.com/ana/shop"}, "credentials"),
        ({"repoUrl": "https://github.com/ana/shop;reboot"}, "characters"),
        ({"repoUrl": "https://github.com/ana/shop", "branch": "-x"}, "starts with '-'"),
        ({"repoUrl": "https://github.com/ana/shop", "branch": "a..b"}, "not a valid git branch"),
        ({"repoUrl": "https://github.com/ana/shop", "subdirectory": "../up"}, "subdirectory"),
        ({}, "repoUrl is required"),
    ],
)
def test_bad_app_input_is_a_400_that_says_what_is_accepted(api: Api, body: dict[str, str], says: str) -> None:
    response = api.call("POST", "/v1/apps", json=body)
    assert response.status_code == 400
    assert says in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400(api: Api, raw: bytes) -> None:
    response = api.call("POST", "/v1/apps", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 3000 + b"1" + b"]" * 3000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"repoUrl": "https://github.com/ana/shop", "name": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    ],
)
def test_a_body_nested_3000_levels_deep_is_a_400_not_a_500(api: Api, raw: bytes) -> None:
    response = api.call("POST", "/v1/apps", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("name", {}, "name must be a string, not an object"),
        ("name", [], "name must be a string, not an array"),
        ("name", False, "name must be a string, not false"),
        ("name", None, "name must be a string, not null"),
        ("branch", 0, "branch must be a string, not a number"),
        ("subdirectory", {}, "subdirectory must be a string, not an object"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_400_not_taken_as_absent(api: Api, field: str, value: object, says: str) -> None:
    response = api.call("POST", "/v1/apps", json={"repoUrl": "https://github.com/ana/shop", field: value})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(says)
    assert api.call("GET", "/v1/apps").json()["apps"] == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://metadata.google.internal/computeMetadata/v1/project", "is internal"),
        ("https://169.254.169.254/computeMetadata/v1/project", "the cloud metadata server"),
        ("https://2852039166/computeMetadata/v1", "the cloud metadata server"),
        ("https://[::ffff:169.254.169.254]/computeMetadata/v1", "the cloud metadata server"),
        ("https://10.1.2.3/ana/shop", "(private)"),
        ("https://gitlab.example.org/ana/shop", "is not allowed"),
    ],
)
def test_an_internal_or_unlisted_repo_host_is_a_400_naming_the_allowed_hosts(api: Api, url: str, says: str) -> None:
    """The local stack runs with DEVGEM_ALLOW_LOCAL_REPOS=1: that must not open https URLs to internal hosts."""
    response = api.call("POST", "/v1/apps", json={"repoUrl": url})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert says in message
    assert message.endswith(
        "Devgem builds from https:// repositories on github.com, gitlab.com, bitbucket.org (DEVGEM_GIT_HOSTS)"
    )


def test_an_oversized_body_is_a_400(api: Api) -> None:
    response = api.call("POST", "/v1/apps", json={"repoUrl": "https://github.com/a/b", "pad": "x" * 100_000})
    assert response.status_code == 400
    assert "larger than" in response.json()["error"]["message"]


def test_unknown_app_is_a_404(api: Api) -> None:
    assert api.call("GET", "/v1/apps/abcdef123456").status_code == 404
    assert api.call("POST", "/v1/apps/abcdef123456/deployments").status_code == 404


def test_another_tenants_app_is_a_404_everywhere(stack: Stack, api: Api) -> None:
    app = api.create_app("https://github.com/ana/shop")
    deployment_id = "abcdef123456"
    intruder = Api(stack, tenant="intruder")
    for method, path in [
        ("GET", f"/v1/apps/{app['id']}"),
        ("POST", f"/v1/apps/{app['id']}/deployments"),
        ("GET", f"/v1/apps/{app['id']}/deployments"),
        ("GET", f"/v1/apps/{app['id']}/deployments/{deployment_id}"),
    ]:
        response = intruder.call(method, path)
        assert response.status_code == 404, (method, path)
    assert intruder.call("GET", "/v1/apps").json()["apps"] == []


def test_ids_that_are_not_ours_are_a_400(api: Api) -> None:
    assert api.call("GET", "/v1/apps/..%2F..%2Fetc").status_code in (400, 404)
    assert api.call("GET", "/v1/apps/UPPER_case").status_code == 400


def test_no_token_or_a_forged_one_is_a_401(stack: Stack) -> None:
    assert requests.get(f"{stack.api_url}/v1/apps", timeout=10).status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    response = requests.get(f"{stack.api_url}/v1/apps", headers=forged, timeout=10)
    assert response.status_code == 401
    assert "rejected" in response.json()["error"]["message"]


def test_unknown_routes_and_methods(api: Api) -> None:
    assert api.call("GET", "/v1/nothing").status_code == 404
    assert api.call("DELETE", "/v1/apps").status_code == 405


def test_two_tenants_with_the_same_app_name_get_different_services(stack: Stack) -> None:
    a = Api(stack, "tenant-one").create_app("https://github.com/ana/shop")
    b = Api(stack, "tenant-two").create_app("https://github.com/bob/shop")
    assert a["serviceName"] != b["serviceName"]
