"""The Cloud Build v1 REST API (the subset Devgem uses), in both its global and regional forms.

The google-cloud-build client picks the first URL pattern whose fields are set: a request carrying
both ``project_id`` and ``parent`` goes to ``/v1/projects/P/builds`` with ``parent`` as a query
parameter, so ``parent`` is honoured wherever it appears, and the global forms find builds of any
location (build ids are unique).
"""

from __future__ import annotations

from aiohttp import web
from google.cloud.devtools import cloudbuild_v1

from localcloud.builder import Builder
from localcloud.rest import ApiError, Router, json_body, parse, to_dict

_PROJECT = "/v1/projects/{project}"
_LOCATION = "/v1/projects/{project}/locations/{location}"


class CloudBuildApi:
    def __init__(self, builder: Builder) -> None:
        self._builder = builder

    def register(self, router: Router) -> None:
        for prefix in (_PROJECT, _LOCATION):
            router.add("POST", prefix + "/builds", self._create)
            router.add("GET", prefix + "/builds", self._list)
            router.add("GET", prefix + "/builds/{id}", self._get)
            router.add("POST", prefix + "/builds/{id}:cancel", self._cancel)
        router.add("GET", "/localcloud/builds/{id}/log", self._log)

    @staticmethod
    def _location(request: web.Request, m: dict[str, str]) -> str | None:
        """The location of a request: from ``parent`` (query or path), else None (the global form)."""
        parent = request.query.get("parent", "")
        if parent:
            parts = parent.split("/")
            if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
                raise ApiError("INVALID_ARGUMENT", f"invalid parent {parent!r}")
            if parts[1] != m["project"]:
                raise ApiError("INVALID_ARGUMENT", f"parent {parent} is not in project {m['project']}")
            return parts[3]
        return m.get("location")

    async def _create(self, request: web.Request, m: dict[str, str]) -> web.Response:
        build = parse(cloudbuild_v1.Build, await json_body(request))
        op = self._builder.create(m["project"], self._location(request, m) or "global", build)
        return web.json_response(op.to_dict())

    async def _get(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response(to_dict(self._builder.get(m["project"], m["id"])))

    async def _list(self, request: web.Request, m: dict[str, str]) -> web.Response:
        builds = self._builder.list(m["project"], self._location(request, m), request.query.get("filter", ""))
        try:
            size = int(request.query.get("pageSize", "0") or 0)
            start = int(request.query.get("pageToken", "0") or 0)
        except ValueError as e:
            raise ApiError("INVALID_ARGUMENT", "invalid pageSize or pageToken") from e
        size = size if size > 0 else 1000
        page = builds[start : start + size]
        body: dict[str, object] = {"builds": [to_dict(b) for b in page]}
        if start + size < len(builds):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)

    async def _cancel(self, request: web.Request, m: dict[str, str]) -> web.Response:
        build = await self._builder.cancel(m["project"], m["id"])
        return web.json_response(to_dict(build))

    async def _log(self, request: web.Request, m: dict[str, str]) -> web.StreamResponse:
        path = self._builder.log_text(m["id"])
        if path is None:
            raise ApiError("NOT_FOUND", f"no log for build {m['id']}")
        return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8"})
