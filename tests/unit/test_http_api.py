"""The api's error mapping (every DevgemError a caller may see answers with its own status, subclasses too),
and what hostile request bodies get: a 400 that says what was wrong, never a 500 or a silent default."""

from __future__ import annotations

import json

import flask
import pytest

from devgem import bootstrap
from devgem.domain.errors import (
    Conflict,
    DevgemError,
    InvalidEvent,
    InvalidInput,
    NotFound,
    RetryLater,
    Unauthenticated,
)
from devgem.domain.identity import Identity
from devgem.entrypoints import auth, http_api
from devgem.entrypoints.http_api import status_of
from devgem.usecases.connect_app import ConnectApp
from tests.unit.fakes import FakeApps


class TokenExpired(Unauthenticated):
    """A subclass, as a later feature may add: it must answer like its base, not 500."""


class QuotaExceeded(Conflict):
    pass


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (Unauthenticated("x"), 401),
        (TokenExpired("x"), 401),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (QuotaExceeded("x"), 409),
        (RetryLater("x"), 503),
    ],
)
def test_errors_answer_with_their_status(error: DevgemError, status: int) -> None:
    assert status_of(error) == status


@pytest.mark.parametrize("error", [DevgemError("x"), InvalidEvent("x")])
def test_errors_not_meant_for_callers_have_no_status(error: DevgemError) -> None:
    assert status_of(error) is None


# -- what hostile bodies get, through `handle` with a fake identity and in-memory apps ------------


@pytest.fixture()
def apps(monkeypatch: pytest.MonkeyPatch) -> FakeApps:
    """POST /v1/apps without servers: a fixed caller, and ConnectApp over in-memory apps."""
    fake = FakeApps()
    monkeypatch.setattr(auth, "verify", lambda header: Identity("tenant-a", "ana"))
    monkeypatch.setattr(bootstrap, "connect_app", lambda: ConnectApp(fake, "https://{service}.apps.example.com", False))
    return fake


def _post(raw: bytes, path: str = "/v1/apps") -> tuple[int, str]:
    app = flask.Flask(__name__)
    with app.test_request_context(path, method="POST", data=raw, content_type="application/json"):
        response = http_api.handle(flask.request)
    payload = json.loads(response.get_data())
    return response.status_code, payload.get("error", {}).get("message", "")


def _nested(levels: int, open_: str = "[", close: str = "]", inner: str = "1") -> bytes:
    return (open_ * levels + inner + close * levels).encode()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (_nested(3000), "nested deeper than 32"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "nested deeper than 32"),
        (b'{"repoUrl": ' + _nested(100_000 // 2 - 20) + b"}", "larger than"),
        (_nested(http_api.MAX_BODY_DEPTH + 1), "nested deeper than"),
        (b'{"x": ' + _nested(http_api.MAX_BODY_DEPTH) + b"}", "nested deeper than"),
        (b"[" * 3000, "nested deeper than"),  # not even JSON: still a 400, not a RecursionError
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),  # longer than Python converts to int
        (b'{"a": 1', "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_a_hostile_body_is_a_400_that_says_why(apps: FakeApps, raw: bytes, says: str) -> None:
    status, message = _post(raw)
    assert status == 400 and says in message
    assert apps.apps == {}


def test_the_deploy_route_parses_its_body_as_strictly(apps: FakeApps) -> None:
    status, message = _post(_nested(3000), "/v1/apps/app000000001/deployments")
    assert (status, "nested" in message) == (400, True)


def test_a_recursion_error_from_the_decoder_is_a_400(apps: FakeApps, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a body get past the depth measure, the decoder's own RecursionError still answers 400."""
    monkeypatch.setattr(http_api, "nesting_depth", lambda raw: 0)
    status, message = _post(_nested(3000))
    assert status == 400 and "nested too deeply" in message


def test_a_body_nested_within_the_limit_reaches_the_use_case(apps: FakeApps) -> None:
    """The limit must not refuse what the api takes: an object with a little nesting inside it."""
    raw = b'{"repoUrl": "https://github.com/ana/shop", "x": ' + _nested(http_api.MAX_BODY_DEPTH - 1) + b"}"
    assert _post(raw)[0] == 201


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[[[[[{{{{"}', 1),  # brackets inside strings do not count
        (b'{"a": "\\"[[[[", "b": "\\\\"}', 1),  # nor after escaped quotes and backslashes
        (b"1", 0),
        (_nested(3000), 3000),
    ],
)
def test_nesting_depth_counts_only_structure(raw: bytes, depth: int) -> None:
    assert http_api.nesting_depth(raw) == depth


@pytest.mark.parametrize("field", ["name", "branch", "subdirectory", "repoUrl"])
@pytest.mark.parametrize(
    ("value", "kind"),
    [({}, "an object"), ([], "an array"), (False, "false (a boolean)"), (0, "a number"), (["main"], "an array")],
)
def test_a_field_of_the_wrong_type_is_a_400_naming_field_and_type(
    apps: FakeApps, field: str, value: object, kind: str
) -> None:
    body = {"repoUrl": "https://github.com/ana/shop", field: value}
    status, message = _post(json.dumps(body).encode())
    assert status == 400
    assert message.startswith(f"{field} must be a string, not {kind}")
    assert apps.apps == {}


@pytest.mark.parametrize("field", ["name", "branch", "subdirectory"])
def test_an_optional_field_sent_as_null_is_refused_not_defaulted(apps: FakeApps, field: str) -> None:
    status, message = _post(json.dumps({"repoUrl": "https://github.com/ana/shop", field: None}).encode())
    assert status == 400
    assert message.startswith(f"{field} must be a string, not null; leave it out")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://169.254.169.254/computeMetadata/v1", "metadata server"),
        ("https://metadata.google.internal/computeMetadata/v1", "internal"),
        ("https://2852039166/a/b", "metadata server"),
        ("https://[::ffff:169.254.169.254]/a/b", "metadata server"),
        ("https://10.0.0.7/a/b", "private"),
        ("https://gitlab.example.org/a/b", "not allowed"),
    ],
)
def test_an_internal_or_unlisted_repo_host_is_a_400_naming_the_allowed_hosts(
    apps: FakeApps, url: str, says: str
) -> None:
    status, message = _post(json.dumps({"repoUrl": url}).encode())
    assert status == 400 and says in message
    assert "github.com, gitlab.com, bitbucket.org (DEVGEM_GIT_HOSTS)" in message


def test_a_well_formed_body_still_connects_the_app(apps: FakeApps) -> None:
    body = {"repoUrl": "https://github.com/ana/shop", "name": "shop", "branch": "dev", "subdirectory": "web"}
    assert _post(json.dumps(body).encode())[0] == 201
    (app,) = apps.apps.values()
    assert (app["name"], app["branch"], app["subdirectory"]) == ("shop", "dev", "web")
