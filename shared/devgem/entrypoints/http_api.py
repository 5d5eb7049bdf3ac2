"""The api function's HTTP surface: JSON in, JSON out, one use case per route.

Errors carry a message that says what to do, with the status that fits: 400 bad input, 401 no
identity, 404 absent or another tenant's, 409 conflict, 503 try again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from devgem import bootstrap
from devgem.domain import validation
from devgem.domain.deployment import Deployment, Status, Trigger
from devgem.domain.errors import Conflict, DevgemError, InvalidInput, NotFound, RetryLater, Unauthenticated
from devgem.domain.identity import Identity
from devgem.entrypoints import auth
from devgem.usecases import connect_app, read_logs, request_deploy

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024
# Every body the api takes is one flat object; a little room is left for nested fields to come.
MAX_BODY_DEPTH = 32

Handler = Callable[..., tuple[Any, int]]


def _create_app(who: Identity, body: dict[str, Any]) -> tuple[Any, int]:
    return bootstrap.connect_app().connect(who, body), 201


def _list_apps(who: Identity, body: dict[str, Any]) -> tuple[Any, int]:
    return {"apps": connect_app.list_apps(who)}, 200


def _get_app(who: Identity, body: dict[str, Any], app_id: str) -> tuple[Any, int]:
    return connect_app.get_app(who, app_id), 200


def _deploy(who: Identity, body: dict[str, Any], app_id: str) -> tuple[Any, int]:
    deployment = bootstrap.request_deploy().request(who, app_id, trigger=Trigger.API)
    return _deployment(deployment), 202


def _roll_back(who: Identity, body: dict[str, Any], app_id: str) -> tuple[Any, int]:
    """200 once the earlier release serves; 502 when traffic moved but the URL did not answer."""
    to = validation.text_field(body, "to", default="", absent_means="to go back to the release before the live one")
    deployment = bootstrap.roll_back().roll_back(who, app_id, to=to or None)
    if deployment.status == Status.LIVE:
        return _deployment(deployment), 200
    return {"error": {"code": 502, "message": deployment.error}, "deployment": _deployment(deployment)}, 502


def _deployment(deployment: Deployment) -> dict[str, Any]:
    return {**deployment.to_doc(), "id": deployment.id}


def _list_deployments(who: Identity, body: dict[str, Any], app_id: str) -> tuple[Any, int]:
    return {"deployments": request_deploy.list_deployments(who, app_id)}, 200


def _get_deployment(who: Identity, body: dict[str, Any], app_id: str, deployment_id: str) -> tuple[Any, int]:
    return request_deploy.get_deployment(who, app_id, deployment_id), 200


def _read_logs(who: Identity, body: dict[str, Any], app_id: str) -> tuple[Any, int]:
    return read_logs.read_logs(who, app_id, flask.request.args.to_dict()), 200


ROUTES: dict[str, Handler] = {
    "create_app": _create_app,
    "list_apps": _list_apps,
    "get_app": _get_app,
    "deploy": _deploy,
    "roll_back": _roll_back,
    "list_deployments": _list_deployments,
    "get_deployment": _get_deployment,
    "read_logs": _read_logs,
}

URLS = Map(
    [
        Rule("/v1/apps", methods=["POST"], endpoint="create_app"),
        Rule("/v1/apps", methods=["GET"], endpoint="list_apps"),
        Rule("/v1/apps/<app_id>", methods=["GET"], endpoint="get_app"),
        Rule("/v1/apps/<app_id>/deployments", methods=["POST"], endpoint="deploy"),
        Rule("/v1/apps/<app_id>/deployments", methods=["GET"], endpoint="list_deployments"),
        Rule("/v1/apps/<app_id>/rollback", methods=["POST"], endpoint="roll_back"),
        Rule("/v1/apps/<app_id>/deployments/<deployment_id>", methods=["GET"], endpoint="get_deployment"),
        Rule("/v1/apps/<app_id>/logs", methods=["GET"], endpoint="read_logs"),
    ]
)

_STATUS: dict[type[DevgemError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    NotFound: 404,
    Conflict: 409,
    RetryLater: 503,
}


def status_of(exc: DevgemError) -> int | None:
    """The HTTP status of an error, found along its class hierarchy, so a subclass answers like its base."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return None


def handle(request: flask.Request) -> flask.Response:
    if request.path == "/healthz":
        return _json({"ok": True}, 200)
    try:
        endpoint, args = URLS.bind("").match(request.path, method=request.method)
        who = auth.verify(request.headers.get("Authorization"))
        body = _body(request)
        payload, status = ROUTES[str(endpoint)](who, body, **args)
        return _json(payload, status)
    except HTTPException as exc:
        return _json({"error": {"code": exc.code, "message": exc.description}}, exc.code or 500)
    except DevgemError as exc:
        code = status_of(exc)
        if code is None:
            raise  # not meant for a caller: functions-framework answers 500 and logs it
        return _json({"error": {"code": code, "message": str(exc)}}, code)


def _body(request: flask.Request) -> dict[str, Any]:
    """The request's JSON object, or InvalidInput: no body a caller can send may answer 500.

    Nesting is measured before parsing because the decoder recurses: 3,000 levels of `[` fit in
    the size limit and would end in a RecursionError deep in the json module. RecursionError is
    still caught in case a body slips past the measure, and ValueError covers the rest of what
    the decoder raises (bad syntax, bad UTF-8, integers longer than Python converts).
    """
    if request.method not in ("POST", "PUT", "PATCH"):
        return {}
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise InvalidInput(f"request body is larger than {MAX_BODY_BYTES} bytes")
    raw = request.get_data(cache=False)[: MAX_BODY_BYTES + 1]
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        return {}
    if nesting_depth(raw) > MAX_BODY_DEPTH:
        raise InvalidInput(f"request body is nested deeper than {MAX_BODY_DEPTH} levels; send one flat JSON object")
    try:
        body = flask.json.loads(raw)
    except RecursionError as exc:
        raise InvalidInput("request body is nested too deeply; send one flat JSON object") from exc
    except ValueError as exc:
        raise InvalidInput(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    return body


_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, without parsing it (so without recursing).

    Escapes go first, so what is left of a string has no quote inside it; then strings, then all
    but brackets. Each step is one linear regex pass. For text that is not JSON the count may be
    off, but the decoder refuses such text anyway.
    """
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", _ESCAPE.sub(b"", raw)))
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _json(payload: Any, status: int) -> flask.Response:
    response = flask.make_response(flask.json.dumps(_plain(payload)), status)
    response.headers["Content-Type"] = "application/json"
    return response


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
