"""Wiring: build the components, serve the API and the router, and shut everything down cleanly.

Shutdown order matters: builds and revisions are stopped first (their process groups killed, the
interrupted builds published as INTERNAL_ERROR), then the HTTP servers, then the publisher is
flushed, so the last status messages still reach Pub/Sub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from localcloud import procs
from localcloud.api_build import CloudBuildApi
from localcloud.api_run import CloudRunApi
from localcloud.builder import Builder
from localcloud.config import Config
from localcloud.images import Images
from localcloud.logs import LogSink
from localcloud.operations import Operations
from localcloud.pubsub import Publisher
from localcloud.rest import Router
from localcloud.router import LoadBalancer
from localcloud.services import CloudRun
from localcloud.store import Store

log = logging.getLogger(__name__)


async def _health(request: web.Request, m: dict[str, str]) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve(config: Config, stop: asyncio.Event, on_ready: Callable[[str], None]) -> None:
    """Run until stop is set; call on_ready with the ready line once both servers listen."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    leftovers = procs.kill_leftovers(config.workdir)
    if leftovers:
        log.warning("killed %d processes left running by a previous localcloud on %s", leftovers, config.workdir)
    procs.set_owner(config.workdir)
    store = Store(config.workdir / "state.json")
    publisher = Publisher(config.project, config.pubsub_emulator_host)
    publisher.start()
    sink = LogSink(publisher)
    operations = Operations()
    images = Images(store)
    builder = Builder(config, store, images, publisher, sink, operations)
    run = CloudRun(config, store, images, sink, operations)

    api = Router()
    operations.register_routes(api)
    CloudBuildApi(builder).register(api)
    CloudRunApi(config, run).register(api)
    api.add("GET", "/localcloud/health", _health)

    runners = [
        web.AppRunner(api.app(), access_log=None, shutdown_timeout=2.0),
        web.AppRunner(LoadBalancer(config, run, sink).app(), access_log=None, shutdown_timeout=2.0),
    ]
    try:
        for runner, port in zip(runners, (config.api_port, config.router_port), strict=True):
            await runner.setup()
            await web.TCPSite(runner, config.host, port).start()
        builder.restore()
        run.restore()
        on_ready(f"localcloud ready api={config.api_url} router={config.router_url}")
        await stop.wait()
        log.info("shutting down")
    finally:
        await builder.shutdown()
        await run.shutdown()
        for runner in runners:
            await runner.cleanup()
        await asyncio.to_thread(publisher.close)
