"""The url_mask load balancer: ``http://<service>.localhost:PORT`` proxied to a serving revision.

Production routes ``<service>.<wildcard domain>`` to the Cloud Run service of that name (a
serverless NEG with a url_mask). Here the Host header names the service; a revision is chosen by
the traffic percentages, and the request (method, path, query, headers, streamed body) is proxied
to the revision's port, the response streamed back unchanged (no decompression, so SSE and large
downloads pass through as they are). WebSockets are proxied too. ``TAG---service.localhost``
reaches a tagged traffic target, like Cloud Run's tagged URLs.

Unknown service: 404 with a short text naming it. No ready revision: 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from localcloud.config import Config
from localcloud.logs import LogSink, log_name, rfc3339
from localcloud.revisions import Instance
from localcloud.services import CloudRun

log = logging.getLogger(__name__)

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_WAIT_READY = 15.0  # seconds a request waits for a restarting or on-demand-started revision


def service_of_host(host: str) -> tuple[str, str] | None:
    """(service, tag) named by a Host header such as "shop.localhost:8080", or None."""
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    if not name.endswith(".localhost"):
        return None
    label = name[: -len(".localhost")]
    if not label or "." in label:
        return None
    tag, _, service = label.rpartition("---")
    return service, tag


def pick(candidates: list[tuple[Any, int]], rng: random.Random | None = None) -> Any:
    """One item, chosen with probability proportional to its percent."""
    items = [c for c, p in candidates if p > 0]
    weights = [p for _, p in candidates if p > 0]
    return (rng or random).choices(items, weights)[0]


class LoadBalancer:
    def __init__(self, config: Config, run: CloudRun, sink: LogSink) -> None:
        self._config = config
        self._run = run
        self._sink = sink
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=10),
        )

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        named = service_of_host(host)
        if named is None:
            return _text(
                404,
                f"localcloud: no service for host {host!r}; use http://<service>.localhost:{self._config.router_port}",
            )
        service, tag = named
        svc = self._run.find(service)
        if svc is None:
            return _text(404, f"localcloud: service {service!r} not found")
        candidates = self._run.serving(svc)
        if tag:
            tagged = {st.revision for st in svc.service.traffic_statuses if st.tag == tag}
            candidates = [(r, 100) for r in svc.revisions.values() if r.short in tagged]
            if not candidates:
                return _text(404, f"localcloud: service {service!r} has no traffic tag {tag!r}")
        instance = await self._choose(svc, candidates)
        if instance is None:
            return _text(503, f"localcloud: service {service!r} has no ready revision")
        started = time.monotonic()
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, instance)
        response = await self._forward(request, instance)
        if self._config.request_logs:
            self._log_request(request, instance, response, time.monotonic() - started)
        return response

    async def _choose(self, svc: Any, candidates: list[tuple[Any, int]]) -> Instance | None:
        """A ready instance: the weighted pick if it can serve, else any other serving revision."""
        if not candidates:
            return None
        first = pick(candidates)
        order = [first] + [r for r, _ in candidates if r is not first]
        for rev in order:
            instance = await self._run.ensure_running(svc, rev)
            if instance is not None and instance.state == "ready":
                return instance
        for rev in order:  # all restarting: wait a little for one
            instance = await self._run.ensure_running(svc, rev)
            if instance is not None and await instance.wait_ready(_WAIT_READY):
                return instance
        return None

    def _upstream_headers(self, request: web.Request, for_websocket: bool = False) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        for k, v in request.headers.items():
            lk = k.lower()
            if lk in _HOP_BY_HOP or (for_websocket and lk.startswith("sec-websocket-")):
                continue
            headers.add(k, v)
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        headers.setdefault("X-Forwarded-Proto", "http")
        headers.setdefault("X-Forwarded-Host", request.headers.get("Host", ""))
        if "X-Cloud-Trace-Context" not in headers:
            headers["X-Cloud-Trace-Context"] = f"{secrets.token_hex(16)}/{secrets.randbits(63)};o=1"
        return headers

    async def _forward(self, request: web.Request, instance: Instance) -> web.StreamResponse:
        assert self._session is not None
        url = URL(f"http://127.0.0.1:{instance.port}{request.raw_path}", encoded=True)
        data = request.content.iter_any() if request.body_exists else None
        try:
            async with self._session.request(
                request.method,
                url,
                headers=self._upstream_headers(request),
                data=data,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=300, connect=10),
            ) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for k, v in upstream.headers.items():
                    if k.lower() not in _HOP_BY_HOP:
                        response.headers.add(k, v)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            log.info("upstream %s failed: %s", instance.revision, e)
            return _text(503, f"localcloud: revision {instance.revision} is not answering ({type(e).__name__})")

    async def _websocket(self, request: web.Request, instance: Instance) -> web.StreamResponse:
        assert self._session is not None
        url = URL(f"ws://127.0.0.1:{instance.port}{request.raw_path}", encoded=True)
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            upstream = await self._session.ws_connect(
                url, headers=self._upstream_headers(request, for_websocket=True), protocols=protocols
            )
        except (aiohttp.ClientError, TimeoutError) as e:
            return _text(503, f"localcloud: revision {instance.revision} refused the WebSocket ({e})")
        client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
        await client.prepare(request)

        async def pipe(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                else:
                    break
            await dst.close()

        tasks = [asyncio.create_task(pipe(client, upstream)), asyncio.create_task(pipe(upstream, client))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await upstream.close()
        await client.close()
        return client

    def _log_request(
        self, request: web.Request, instance: Instance, response: web.StreamResponse, latency: float
    ) -> None:
        """A run.googleapis.com/requests entry, as Cloud Run writes one per request."""
        status = response.status
        severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        ts = rfc3339(time.time_ns())
        trace = request.headers.get("X-Cloud-Trace-Context", "").split("/")[0]
        entry: dict[str, Any] = {
            "insertId": secrets.token_hex(12),
            "logName": log_name(self._config.project, "run.googleapis.com/requests"),
            "resource": {
                "type": "cloud_run_revision",
                "labels": {
                    "service_name": instance.service,
                    "revision_name": instance.revision,
                    "configuration_name": instance.service,
                    "location": self._config.region,
                    "project_id": self._config.project,
                },
            },
            "timestamp": ts,
            "receiveTimestamp": ts,
            "severity": severity,
            "labels": dict(instance.labels),
            "httpRequest": {
                "requestMethod": request.method,
                "requestUrl": f"http://{request.headers.get('Host', '')}{request.raw_path}",
                "requestSize": str(request.content_length or 0),
                "status": status,
                "responseSize": str(response.body_length),
                "userAgent": request.headers.get("User-Agent", ""),
                "remoteIp": request.remote or "",
                "latency": f"{latency:.6f}s",
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
            },
        }
        if trace:
            entry["trace"] = f"projects/{self._config.project}/traces/{trace}"
        self._sink.emit(entry)


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body + "\n", content_type="text/plain")
