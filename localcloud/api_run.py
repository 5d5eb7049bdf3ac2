"""The Cloud Run Admin API v2 REST surface for services and revisions.

create_service and update_service answer with an operation. The deploy runs in the background; the
request waits up to ``sync_wait`` seconds (below the client's 15 s default request timeout) so the
usual deploy returns an operation that is already done, and ``op.result()`` polls the operation for
the slow ones.
"""

from __future__ import annotations

from aiohttp import web
from google.cloud import run_v2

from localcloud.config import Config
from localcloud.operations import Operation
from localcloud.rest import ApiError, Router, json_body, parse, to_dict
from localcloud.services import CloudRun

_LOC = "/v2/projects/{project}/locations/{location}"


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


class CloudRunApi:
    def __init__(self, config: Config, run: CloudRun) -> None:
        self._config = config
        self._run = run

    def register(self, router: Router) -> None:
        router.add("POST", _LOC + "/services", self._create)
        router.add("GET", _LOC + "/services", self._list)
        router.add("GET", _LOC + "/services/{service}", self._get)
        router.add("PATCH", _LOC + "/services/{service}", self._update)
        router.add("DELETE", _LOC + "/services/{service}", self._delete)
        router.add("GET", _LOC + "/services/{service}/revisions", self._list_revisions)
        router.add("GET", _LOC + "/services/{service}/revisions/{revision}", self._get_revision)
        router.add("DELETE", _LOC + "/services/{service}/revisions/{revision}", self._delete_revision)
        router.add("GET", "/localcloud/instances", self._instances)

    @staticmethod
    def _parent(m: dict[str, str]) -> str:
        return f"projects/{m['project']}/locations/{m['location']}"

    def _name(self, m: dict[str, str]) -> str:
        return f"{self._parent(m)}/services/{m['service']}"

    async def _answer(self, op: Operation) -> web.Response:
        await op.wait(self._config.sync_wait)
        return web.json_response(op.to_dict())

    async def _create(self, request: web.Request, m: dict[str, str]) -> web.Response:
        service = parse(run_v2.Service, await json_body(request))
        service_id = request.query.get("serviceId", "")
        op = self._run.create_service(self._parent(m), service_id, service, _flag(request, "validateOnly"))
        return await self._answer(op)

    async def _update(self, request: web.Request, m: dict[str, str]) -> web.Response:
        service = parse(run_v2.Service, await json_body(request))
        name = self._name(m)
        if service.name and service.name != name:
            raise ApiError("INVALID_ARGUMENT", f"service.name {service.name} does not match the URL ({name})")
        service.name = name
        op = self._run.update_service(service, _flag(request, "allowMissing"), _flag(request, "validateOnly"))
        return await self._answer(op)

    async def _get(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response(to_dict(self._run.get_service(self._name(m))))

    async def _list(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response({"services": [to_dict(s) for s in self._run.list_services(self._parent(m))]})

    async def _delete(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response(self._run.delete_service(self._name(m)).to_dict())

    async def _get_revision(self, request: web.Request, m: dict[str, str]) -> web.Response:
        name = f"{self._name(m)}/revisions/{m['revision']}"
        return web.json_response(to_dict(self._run.get_revision(name)))

    async def _list_revisions(self, request: web.Request, m: dict[str, str]) -> web.Response:
        revisions = self._run.list_revisions(self._name(m))
        return web.json_response({"revisions": [to_dict(r) for r in revisions]})

    async def _delete_revision(self, request: web.Request, m: dict[str, str]) -> web.Response:
        name = f"{self._name(m)}/revisions/{m['revision']}"
        return web.json_response(self._run.delete_revision(name).to_dict())

    async def _instances(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response({"instances": self._run.instances()})
