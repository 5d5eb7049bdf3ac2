"""Breaking a running stack on purpose: concurrent deploys while functions, the worker or localcloud
are killed -9 and restarted, as an operator's chaos run would. `make bench-faults` and tests/faults
both run these storms; what they report is what the issue's promise is judged by: every deployment
ends (none stuck), with at most one build each, and how long after the last kill the last one ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.cloud import firestore
from google.cloud.devtools import cloudbuild_v1

from devgem.adapters import cloud_build
from devgem.adapters.collections import DEPLOYMENTS
from devgem.adapters.firestore_client import client
from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devgem.domain.deployment import TERMINAL
from devstack import example_repos
from devstack.api_client import Api
from devstack.stack import Stack


@dataclass(frozen=True)
class Kill:
    at: float  # seconds after the deploys were requested
    target: str  # a function name, a worker name, or "localcloud"
    down_for: float = 0.0  # an outage: how long it stays dead before it is started again


@dataclass
class StormResult:
    deployments: dict[str, dict[str, Any]]  # id -> the final document
    builds: dict[str, int]  # deployment id -> builds Cloud Build has for it
    recover_seconds: list[float]  # per deployment: last kill -> its final state
    request_errors: list[str] = field(default_factory=list)  # deploy calls that failed (api killed)

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


def storm(
    stack: Stack, api: Api, repos: Path, kills: Sequence[Kill], deploys: int = 8, timeout: float = 240
) -> StormResult:
    """Request `deploys` deploys of as many apps at once, kill as told, and wait for every one to end."""
    repo = example_repos.example("hello-python", repos)
    app_ids = [api.create_app(str(repo))["id"] for _ in range(deploys)]
    errors: list[str] = []
    started = time.monotonic()
    killer = threading.Thread(target=_kill_on_schedule, args=(stack, kills, started), daemon=True)
    killer.start()

    def deploy(app_id: str) -> None:
        try:
            api.deploy(app_id)
        except Exception as exc:  # the api was killed mid-request: what its user would see
            errors.append(f"{app_id}: {exc}")

    with ThreadPoolExecutor(max_workers=deploys) as pool:
        list(pool.map(deploy, app_ids))
    killer.join()
    last_kill = time.monotonic()
    finished_at: dict[str, float] = {}
    deadline = last_kill + timeout
    while True:
        found = _deployments_of(api.tenant, app_ids)
        now = time.monotonic()
        for deployment_id, d in found.items():
            if d.get("status") in TERMINAL:
                finished_at.setdefault(deployment_id, now)
        if (found and len(finished_at) == len(found)) or now > deadline:
            break
        time.sleep(0.5)
    builds = {deployment_id: len(_builds_of(deployment_id)) for deployment_id in found}
    recover = [max(0.0, finished_at.get(i, now) - last_kill) for i in found]
    return StormResult(found, builds, recover, errors)


def _kill_on_schedule(stack: Stack, kills: Sequence[Kill], started: float) -> None:
    for kill in sorted(kills, key=lambda k: k.at):
        time.sleep(max(0.0, started + kill.at - time.monotonic()))
        stack.kill(kill.target)
        time.sleep(kill.down_for)
        stack.start_again(kill.target)


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
