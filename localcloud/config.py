"""Command-line settings, parsed once and passed to every component.

One frozen object instead of module globals, so tests can start several servers in one process and
every component states which settings it depends on.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    project: str
    region: str
    api_port: int
    router_port: int
    workdir: Path
    host: str = "127.0.0.1"
    # Builds running at once; the rest wait in QUEUED, as on a Cloud Build worker pool.
    max_builds: int = 4
    # How long a new revision may take to listen on PORT before the deploy fails.
    startup_timeout: float = 60.0
    # How long create/update_service answers synchronously before returning a not-done operation
    # (the Cloud Run client's default request timeout is 15 s; op.result() then polls).
    sync_wait: float = 10.0
    # Revisions without traffic are stopped after this many seconds (0: never stop them).
    idle_stop: float = 30.0
    # Emit run.googleapis.com/requests entries for every routed request, as Cloud Run does.
    request_logs: bool = False
    # Pub/Sub emulator address; empty: publishing is disabled (a warning says so).
    pubsub_emulator_host: str = ""

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def router_url(self) -> str:
        return f"http://{self.host}:{self.router_port}"

    def service_uri(self, service: str) -> str:
        """The public URL of a service, as the url_mask load balancer exposes it."""
        return f"http://{service}.localhost:{self.router_port}"

    @property
    def location(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def command(
    python: str, project: str, region: str, api_port: int, router_port: int, workdir: Path, *extra: str
) -> list[str]:
    """The command line that starts localcloud with these settings: the inverse of parse_args."""
    return [
        python,
        "-m",
        "localcloud",
        "--project",
        project,
        "--region",
        region,
        "--api-port",
        str(api_port),
        "--router-port",
        str(router_port),
        "--workdir",
        str(workdir),
        *extra,
    ]


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        prog="python -m localcloud",
        description="Local stand-in for Cloud Build, Cloud Run, the Log Router and the url_mask load balancer.",
    )
    p.add_argument("--project", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--api-port", type=int, default=8690)
    p.add_argument("--router-port", type=int, default=8080)
    p.add_argument("--workdir", type=Path, default=Path(".devgem/localcloud"))
    p.add_argument("--host", default="127.0.0.1", help="address both servers bind to")
    p.add_argument("--max-builds", type=int, default=4)
    p.add_argument("--startup-timeout", type=float, default=60.0)
    p.add_argument("--sync-wait", type=float, default=10.0)
    p.add_argument("--idle-stop", type=float, default=30.0)
    p.add_argument("--request-logs", action="store_true")
    a = p.parse_args(argv)
    return Config(
        project=a.project,
        region=a.region,
        api_port=a.api_port,
        router_port=a.router_port,
        workdir=a.workdir.resolve(),
        host=a.host,
        max_builds=max(1, a.max_builds),
        startup_timeout=a.startup_timeout,
        sync_wait=a.sync_wait,
        idle_stop=a.idle_stop,
        request_logs=a.request_logs,
        pubsub_emulator_host=os.environ.get("PUBSUB_EMULATOR_HOST", ""),
    )
