"""The REST plumbing shared by the Cloud Build and Cloud Run APIs: routing, JSON and Google errors.

Google paths carry verbs after a colon (``builds/ID:cancel``) and nested resource names, which read
more clearly as a regular-expression table than as aiohttp's route syntax. Errors use the shape of
Google's JSON errors so google-api-core raises the matching exception (NotFound, AlreadyExists...).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import proto
from aiohttp import web

log = logging.getLogger(__name__)

# HTTP status and canonical gRPC code of each Google error status.
_STATUSES: dict[str, tuple[int, int]] = {
    "CANCELLED": (499, 1),
    "UNKNOWN": (500, 2),
    "INVALID_ARGUMENT": (400, 3),
    "DEADLINE_EXCEEDED": (504, 4),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "PERMISSION_DENIED": (403, 7),
    "FAILED_PRECONDITION": (400, 9),
    "ABORTED": (409, 10),
    "UNIMPLEMENTED": (501, 12),
    "INTERNAL": (500, 13),
    "UNAVAILABLE": (503, 14),
}


def grpc_code(status: str) -> int:
    """The numeric google.rpc.Code of a status name, as used in an Operation's ``error``."""
    return _STATUSES[status][1]


class ApiError(Exception):
    """An error the API answers with, e.g. ApiError("NOT_FOUND", "Service s not found")."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        http_status = _STATUSES[self.status][0]
        body = {"error": {"code": http_status, "message": self.message, "status": self.status}}
        return web.json_response(body, status=http_status)


def to_dict(message: Any) -> dict[str, Any]:
    """A proto-plus message as the JSON object Google's REST APIs return (camelCase, enum names)."""
    text = type(message).to_json(
        message,
        use_integers_for_enums=False,
        always_print_fields_with_no_presence=False,
        indent=None,
    )
    result: dict[str, Any] = json.loads(text)
    return result


def parse(cls: type[proto.Message], data: Any) -> Any:
    """Parse JSON (already decoded) into a proto-plus message of type cls, or raise INVALID_ARGUMENT."""
    try:
        return cls.from_json(json.dumps(data), ignore_unknown_fields=True)
    except Exception as e:  # the protobuf parser raises several unrelated types
        raise ApiError("INVALID_ARGUMENT", f"invalid {cls.__name__}: {e}") from e


def with_type(type_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """A JSON object packed as a google.protobuf.Any."""
    return {"@type": type_url, **body}


async def json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except json.JSONDecodeError as e:
        raise ApiError("INVALID_ARGUMENT", f"request body is not JSON: {e}") from e


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Dispatch (method, path) to handlers by full-match regular expressions with named groups.

    Path segments match ``[^/:]+``, so ``/builds/{id}`` and ``/builds/{id}:cancel`` never collide.
    """

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        """template: a path with ``{name}`` segments, e.g. ``/v1/projects/{project}/builds/{id}:cancel``."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", template.replace(".", r"\."))
        self._routes.append(Route(method.upper(), re.compile(regex), handler))

    def add_regex(self, method: str, regex: str, handler: Handler) -> None:
        self._routes.append(Route(method.upper(), re.compile(regex), handler))

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("tail", request.path)
        path = "/" + path.lstrip("/")
        allowed = False
        for route in self._routes:
            m = route.pattern.fullmatch(path)
            if not m:
                continue
            if route.method != request.method:
                allowed = True
                continue
            try:
                return await route.handler(request, m.groupdict())
            except ApiError as e:
                return e.response()
            except Exception:
                log.exception("%s %s failed", request.method, path)
                return ApiError("INTERNAL", "internal error in localcloud; see its log").response()
        if allowed:
            return ApiError("UNIMPLEMENTED", f"method {request.method} not allowed on {path}").response()
        return ApiError("NOT_FOUND", f"localcloud does not serve {request.method} {path}").response()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app
