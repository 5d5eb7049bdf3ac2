"""Long-running operations (google.longrunning.Operation) for both APIs.

Cloud Build's create_build and Cloud Run's create/update_service return operations; the clients
then poll ``GET <operation name>`` until ``done``. Operations live in memory only: they are short
lived, and a restarted localcloud answers NOT_FOUND for old ones, as Google does once they expire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from localcloud.rest import ApiError, Router, grpc_code, json_body

_KEEP = 5000  # finished operations kept for polling; the oldest are forgotten first


class Operation:
    """One operation; its metadata is rendered on every read so polling sees live progress."""

    def __init__(
        self,
        name: str,
        metadata: Callable[[], dict[str, Any]],
        on_cancel: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self._metadata = metadata
        self._on_cancel = on_cancel
        self._response: dict[str, Any] | None = None
        self._error: dict[str, Any] | None = None
        self._done = asyncio.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def succeed(self, response: dict[str, Any]) -> None:
        if not self.done:
            self._response = response
            self._done.set()

    def fail(self, status: str, message: str) -> None:
        if not self.done:
            self._error = {"code": grpc_code(status), "message": message}
            self._done.set()

    def cancel(self) -> None:
        if self._on_cancel is not None:
            self._on_cancel()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "metadata": self._metadata(), "done": self.done}
        if self._error is not None:
            body["error"] = self._error
        elif self._response is not None:
            body["response"] = self._response
        return body


class Operations:
    """The operation store and the REST endpoints the clients' operations_client calls."""

    def __init__(self) -> None:
        self._ops: OrderedDict[str, Operation] = OrderedDict()

    def add(self, op: Operation) -> Operation:
        self._ops[op.name] = op
        while len(self._ops) > _KEEP:
            oldest = next(iter(self._ops.values()))
            if not oldest.done:
                break
            self._ops.popitem(last=False)
        return op

    def get(self, name: str) -> Operation:
        op = self._ops.get(name)
        if op is None:
            raise ApiError("NOT_FOUND", f"Operation {name} not found")
        return op

    def register_routes(self, router: Router) -> None:
        for version in ("v1", "v2"):
            loc = rf"/{version}/(?P<name>projects/[^/:]+/locations/[^/:]+/operations/[^/:]+)"
            router.add_regex("GET", loc, self._get)
            router.add_regex("POST", loc + ":cancel", self._cancel)
            router.add_regex("POST", loc + ":wait", self._wait)
            router.add_regex("DELETE", loc, self._delete)
            router.add_regex(
                "GET", rf"/{version}/projects/(?P<project>[^/:]+)/locations/(?P<loc>[^/:]+)/operations", self._list
            )
        # Cloud Build's global operations are named operations/build/PROJECT/ID.
        router.add_regex("GET", r"/v1/(?P<name>operations/[^:]+)", self._get)
        router.add_regex("POST", r"/v1/(?P<name>operations/[^:]+):cancel", self._cancel)

    async def _get(self, request: web.Request, m: dict[str, str]) -> web.Response:
        return web.json_response(self.get(m["name"]).to_dict())

    async def _cancel(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.get(m["name"]).cancel()
        return web.json_response({})

    async def _wait(self, request: web.Request, m: dict[str, str]) -> web.Response:
        op = self.get(m["name"])
        body = await json_body(request)
        timeout = 60.0
        raw = body.get("timeout") if isinstance(body, dict) else None
        if isinstance(raw, str) and raw.endswith("s"):
            with contextlib.suppress(ValueError):
                timeout = min(float(raw[:-1]), 600.0)
        await op.wait(timeout)
        return web.json_response(op.to_dict())

    async def _delete(self, request: web.Request, m: dict[str, str]) -> web.Response:
        self.get(m["name"])
        del self._ops[m["name"]]
        return web.json_response({})

    async def _list(self, request: web.Request, m: dict[str, str]) -> web.Response:
        prefix = f"projects/{m['project']}/locations/{m['loc']}/operations/"
        ops = [op.to_dict() for name, op in self._ops.items() if name.startswith(prefix)]
        return web.json_response({"operations": ops})
