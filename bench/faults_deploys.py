"""Breaking a running stack on purpose, as an operator's chaos run would: concurrent deploys while
functions or localcloud are killed -9, frozen, or down until Pub/Sub gives up on their messages.

tests/faults and `make bench-faults` (bench.faults) run the same scenarios. Each returns a Storm: every deployment's
final document, how many builds Cloud Build has for each, and how long after the fault ended each
deployment took to end. What the platform promises is judged on it: none stuck, at most one build each.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1
from google.cloud.pubsub_v1 import SubscriberClient

from devgem import topology
from devgem.adapters import cloud_build
from devgem.adapters.collections import DEPLOYMENTS
from devgem.adapters.firestore_client import client
from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devgem.domain.deployment import TERMINAL
from devstack import example_repos
from devstack.api_client import Api
from devstack.processes import wait_for_value
from devstack.stack import Stack


@dataclass(frozen=True)
class Kill:
    at: float  # seconds after the deploys were requested
    target: str  # a function name, a worker name, or "localcloud"


@dataclass
class Storm:
    deployments: dict[str, dict[str, Any]]  # id -> the final document
    builds: dict[str, int]  # deployment id -> builds Cloud Build has for it
    recover_seconds: list[float]  # per deployment: the fault's end -> its final state
    request_errors: list[str] = field(default_factory=list)  # deploy calls that failed (the api was killed)

    @property
    def stuck(self) -> list[str]:
        return [i for i, d in self.deployments.items() if d.get("status") not in TERMINAL]

    @property
    def builds_per_deploy_max(self) -> int:
        return max(self.builds.values(), default=0)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.deployments.values():
            counts[str(d.get("status"))] = counts.get(str(d.get("status")), 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        errors = {i: d.get("error") for i, d in self.deployments.items() if d.get("status") != "live"}
        return {"by_status": self.by_status(), "builds": self.builds, "errors": errors, "api": self.request_errors}


# --- the scenarios ---------------------------------------------------------------------------------


def random_kills(
    stack: Stack, api: Api, repos: Path, kills: Sequence[Kill], deploys: int = 8, timeout: float = 600
) -> Storm:
    """Request deploys of `deploys` apps at once and kill -9 (then start again) as scheduled."""
    app_ids = _apps(api, repos, deploys)
    started = time.monotonic()
    killer = threading.Thread(target=_kill_on_schedule, args=(stack, kills, started), daemon=True)
    killer.start()
    errors = _deploy_all(api, app_ids)
    killer.join()
    return _await_end(api.tenant, app_ids, time.monotonic(), timeout, errors)


def claims_without_submits(
    stack: Stack, api: Api, repos: Path, localcloud: str, deploys: int = 6, timeout: float = 600
) -> Storm:
    """Cloud Build hangs (localcloud frozen) while deploy_requested has claimed every deployment and
    waits on its submit; deploy_requested is killed -9 there. Then localcloud is thawed ("thaw": the
    submits it had received go through, unrecorded) or killed and started again ("kill": they are lost)."""
    app_ids = _apps(api, repos, deploys)
    stack.children["localcloud"].freeze()
    try:
        ids = [d["id"] for d in (api.deploy(app_id) for app_id in app_ids)]
        # The emulator pushes two messages at a time, so two claims hang on their submits.
        claimed = lambda: sum(_status(i) == ("building", None) for i in ids) >= 2  # noqa: E731
        wait_for_value(claimed, 60, "two deployments claimed, their submits hanging")
        stack.kill("deploy_requested")
        stack.start_again("deploy_requested")
    finally:
        if localcloud == "thaw":
            stack.children["localcloud"].freeze(False)
        else:
            stack.kill("localcloud")
            stack.start_again("localcloud")
    return _await_end(api.tenant, app_ids, time.monotonic(), timeout)


def notifications_lost(stack: Stack, api: Api, repos: Path, deploys: int = 4, timeout: float = 600) -> Storm:
    """build_finished is down from before the deploys until every one has ended: no notification of
    Cloud Build's is ever heard, so only the watchdog, asking Cloud Build itself, can finish them.
    Timed from the moment the last build succeeded."""
    app_ids = _apps(api, repos, deploys)
    stack.kill("build_finished")
    try:
        ids = [d["id"] for d in (api.deploy(app_id) for app_id in app_ids)]
        build_ids = wait_for_value(lambda: _build_ids(ids), 60, "every build submitted")
        wait_for_value(lambda: all(_build_status(b) == "SUCCESS" for b in build_ids), 180, "every build to succeed")
        return _await_end(api.tenant, app_ids, time.monotonic(), timeout)
    finally:
        stack.start_again("build_finished")


def requests_lost(stack: Stack, api: Api, repos: Path, deploys: int = 4, timeout: float = 600) -> Storm:
    """Every deploy request is lost: deploy_requested's messages are swallowed until all have been."""
    app_ids = _apps(api, repos, deploys)
    with swallowing(stack, "deploy_requested") as swallowed:
        ids = {d["id"] for d in (api.deploy(app_id) for app_id in app_ids)}
        wait_for_value(lambda: ids <= {a.get("deploymentId") for a in swallowed}, 60, "every request swallowed")
    return _await_end(api.tenant, app_ids, time.monotonic(), timeout)


@contextmanager
def swallowing(stack: Stack, function: str) -> Iterator[list[dict[str, str]]]:
    """Lose a pushed function's messages for good until the block ends: its push subscription delivers
    to a server that acknowledges and does nothing; the block sees each message's attributes.

    That is where a message ends after Pub/Sub gives up on it (dead-lettered after its attempts), or
    after a consumer acked and died before acting. Waiting for the real dead-lettering is no test: the
    emulator's timing varies (5 attempts took 12 s on a fresh subscription, over 120 s on one that had
    failed before, and an endpoint refusing connections was never dead-lettered within 150 s)."""
    swallowed: list[dict[str, str]] = []

    class Swallow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            swallowed.append(dict(body.get("message", {}).get("attributes", {})))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Swallow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    subscription = topology.function(function).subscription
    assert subscription
    subscriber = SubscriberClient()
    path = subscriber.subscription_path(settings().project, subscription)

    def push_to(url: str) -> None:
        subscriber.modify_push_config(request={"subscription": path, "push_config": {"push_endpoint": url}})

    push_to(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        yield swallowed
    finally:
        push_to(stack.function_url(function))
        subscriber.close()
        server.shutdown()


# --- the parts ---------------------------------------------------------------------------------------


def _apps(api: Api, repos: Path, n: int) -> list[str]:
    repo = example_repos.example("hello-python", repos)
    return [api.create_app(str(repo))["id"] for _ in range(n)]


def _deploy_all(api: Api, app_ids: Sequence[str]) -> list[str]:
    errors: list[str] = []

    def deploy(app_id: str) -> None:
        try:
            api.deploy(app_id)
        except Exception as exc:  # the api was killed mid-request: what its user would see
            errors.append(f"{app_id}: {exc}")

    with ThreadPoolExecutor(max_workers=len(app_ids)) as pool:
        list(pool.map(deploy, app_ids))
    return errors


def _kill_on_schedule(stack: Stack, kills: Sequence[Kill], started: float) -> None:
    for kill in sorted(kills, key=lambda k: k.at):
        time.sleep(max(0.0, started + kill.at - time.monotonic()))
        stack.kill(kill.target)
        stack.start_again(kill.target)


def _await_end(
    tenant_id: str, app_ids: Sequence[str], fault_ended: float, timeout: float, errors: list[str] | None = None
) -> Storm:
    """Wait for every deployment of the apps to end (or `timeout`), timing each from the fault's end."""
    finished_at: dict[str, float] = {}
    deadline = fault_ended + timeout
    while True:
        found = _deployments_of(tenant_id, app_ids)
        now = time.monotonic()
        for deployment_id, d in found.items():
            if d.get("status") in TERMINAL:
                finished_at.setdefault(deployment_id, now)
        if (found and len(finished_at) == len(found)) or now > deadline:
            break
        time.sleep(0.5)
    builds = {deployment_id: len(_builds_of(deployment_id)) for deployment_id in found}
    recover = [finished_at.get(i, now) - fault_ended for i in found]
    return Storm(found, builds, recover, errors or [])


def _status(deployment_id: str) -> tuple[str, str | None]:
    d = client().collection(DEPLOYMENTS).document(deployment_id).get().to_dict() or {}
    return str(d.get("status")), d.get("buildId")


def _build_ids(deployment_ids: Sequence[str]) -> set[str] | None:
    ids = {_status(i)[1] for i in deployment_ids}
    return None if None in ids else {i for i in ids if i}


def _build_status(build_id: str) -> str:
    build = cloud_build.get(build_id)
    return cloudbuild_v1.Build.Status(build.status).name if build else "MISSING"


def _deployments_of(tenant_id: str, app_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for app_id in app_ids:
        query = (
            client()
            .collection(DEPLOYMENTS)
            .where(filter=firestore.FieldFilter("tenantId", "==", tenant_id))
            .where(filter=firestore.FieldFilter("appId", "==", app_id))
        )
        found.update({s.id: s.to_dict() or {} for s in query.stream()})
    return found


def _builds_of(deployment_id: str) -> list[cloudbuild_v1.Build]:
    s = settings()
    builds = cloudbuild_v1.CloudBuildClient(**client_kwargs(s.cloud_build_endpoint))
    request = {
        "parent": f"projects/{s.project}/locations/{s.region}",
        "project_id": s.project,
        "filter": f'tags="{cloud_build.deployment_tag(deployment_id)}"',
    }
    return list(builds.list_builds(request=request))
