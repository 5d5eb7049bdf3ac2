"""Cloud Run services: the Admin API's operations on services and revisions, deploys as long-running operations.

Validation lives in run_validation, building the Service/Revision resources in run_resources, the
deploy itself (start, then move traffic) in revision_deploy, stopping unused revisions in
idle_timers, state.json in run_persistence and the router's questions in run_lookup. This module
ties them together and owns the table of services.

Revisions that stop receiving traffic keep running for ``idle_stop`` seconds, then are stopped; a
later rollback starts them again before moving traffic. The router also starts a serving revision
on demand if its instance is not running (e.g. right after localcloud restarted).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from google.cloud import run_v2

from localcloud.background import BackgroundTasks
from localcloud.config import Config
from localcloud.idle_timers import IdleTimers
from localcloud.images import Images
from localcloud.logs import LogSink
from localcloud.operations import Operation, Operations
from localcloud.rest import ApiError, to_dict, with_type
from localcloud.revision_deploy import RevisionDeployer
from localcloud.revisions import Instance, StartFailure
from localcloud.run_lookup import find_by_short_name, instances_report
from localcloud.run_lookup import serving as serving_revisions
from localcloud.run_persistence import SECTION, service_from_json, service_to_json
from localcloud.run_resources import (
    REVISION_TYPE,
    SERVICE_TYPE,
    apply_spec,
    new_service,
    pick_revision,
    requested_traffic,
)
from localcloud.run_state import RevisionState, ServiceState, now
from localcloud.run_validation import check_container, check_service_id, check_traffic
from localcloud.store import Store

log = logging.getLogger(__name__)


class CloudRun:
    def __init__(self, config: Config, store: Store, images: Images, sink: LogSink, operations: Operations) -> None:
        self._config = config
        self._store = store
        self._operations = operations
        self._services: dict[str, ServiceState] = {}  # by full name
        self._tasks = BackgroundTasks()
        self._timers = IdleTimers(config.idle_stop, self._tasks)
        self._deployer = RevisionDeployer(config, images, sink, self._timers, self._save)

    # ---- reading -----------------------------------------------------------------------------

    def get_service(self, name: str) -> run_v2.Service:
        return self._service(name).service

    def list_services(self, parent: str) -> list[run_v2.Service]:
        return [s.service for n, s in sorted(self._services.items()) if n.startswith(parent + "/services/")]

    def get_revision(self, name: str) -> run_v2.Revision:
        service_name, _, short = name.partition("/revisions/")
        rev = self._service(service_name).revisions.get(short)
        if rev is None:
            raise ApiError("NOT_FOUND", f"Revision {name} not found")
        return rev.revision

    def list_revisions(self, parent: str) -> list[run_v2.Revision]:
        svc = self._service(parent)
        revs = sorted(svc.revisions.values(), key=lambda r: r.revision.create_time, reverse=True)
        return [r.revision for r in revs]

    # ---- what the router asks ----------------------------------------------------------------

    def find(self, short_name: str) -> ServiceState | None:
        """The service the router serves for host <short_name>.localhost."""
        return find_by_short_name(self._services.values(), short_name)

    def serving(self, svc: ServiceState) -> list[tuple[RevisionState, int]]:
        """(revision, percent) pairs that currently receive traffic."""
        return serving_revisions(svc)

    async def ensure_running(self, svc: ServiceState, rev: RevisionState) -> Instance | None:
        """The instance of a serving revision, started on demand when it is not running."""
        if rev.instance is None or not rev.instance.running:
            try:
                await self._deployer.start(svc, rev)
            except (StartFailure, ApiError) as e:
                log.warning("could not start %s: %s", rev.short, e)
                return None
        return rev.instance

    def instances(self) -> list[dict[str, Any]]:
        """Every revision's instance, for debugging (GET /localcloud/instances)."""
        return instances_report(self._services.values())

    # ---- writing -----------------------------------------------------------------------------

    def create_service(self, parent: str, service_id: str, service: run_v2.Service, validate_only: bool) -> Operation:
        check_service_id(service_id)
        name = f"{parent}/services/{service_id}"
        if name in self._services:
            raise ApiError("ALREADY_EXISTS", f"Resource '{service_id}' already exists.")
        svc = new_service(name, self._config.service_uri(service_id))
        return self._apply(svc, service, validate_only, creating=True)

    def update_service(self, service: run_v2.Service, allow_missing: bool, validate_only: bool) -> Operation:
        name = service.name
        if name not in self._services and allow_missing:
            parent, _, service_id = name.rpartition("/services/")
            return self.create_service(parent, service_id, service, validate_only)
        return self._apply(self._service(name), service, validate_only, creating=False)

    def delete_service(self, name: str) -> Operation:
        svc = self._service(name)
        del self._services[name]
        self._store.delete(SECTION, name)
        for rev in svc.revisions.values():
            self._timers.stop_now(rev)
        svc.service.delete_time = now()
        op = self._new_op(svc)
        op.succeed(with_type(SERVICE_TYPE, to_dict(svc.service)))
        return op

    def delete_revision(self, name: str) -> Operation:
        service_name, _, short = name.partition("/revisions/")
        svc = self._service(service_name)
        rev = svc.revisions.get(short)
        if rev is None:
            raise ApiError("NOT_FOUND", f"Revision {name} not found")
        if any(r is rev for r, _ in serving_revisions(svc)):
            raise ApiError("FAILED_PRECONDITION", f"Revision {short} is receiving traffic and cannot be deleted")
        del svc.revisions[short]
        self._timers.stop_now(rev)
        self._save(svc)
        op = Operation(
            f"{_location(name)}/operations/{uuid.uuid4()}",
            lambda: with_type(REVISION_TYPE, to_dict(rev.revision)),
        )
        op.succeed(with_type(REVISION_TYPE, to_dict(rev.revision)))
        return self._operations.add(op)

    def _apply(self, svc: ServiceState, request: run_v2.Service, validate_only: bool, creating: bool) -> Operation:
        """Validate a create/update synchronously (errors are HTTP errors), then deploy in the background."""
        template = run_v2.RevisionTemplate(request.template)
        check_container(template)
        rev_name, new_rev = pick_revision(svc, template)
        traffic = requested_traffic(request)
        check_traffic(svc, traffic, rev_name)
        if validate_only:
            op = self._new_op(svc)
            op.succeed(with_type(SERVICE_TYPE, to_dict(svc.service)))
            return op

        # Commit the spec now, so a second request sees this revision name as taken.
        if creating:
            self._services[svc.service.name] = svc
        previous_traffic = list(svc.service.traffic)
        apply_spec(svc.service, request, template, traffic)
        if new_rev is not None:
            svc.revisions[rev_name] = new_rev
            svc.service.latest_created_revision = new_rev.revision.name
        self._save(svc)
        op = self._new_op(svc)
        self._tasks.spawn(self._deployer.deploy(svc, svc.revisions[rev_name], previous_traffic, op))
        return op

    def _service(self, name: str) -> ServiceState:
        svc = self._services.get(name)
        if svc is None:
            raise ApiError(
                "NOT_FOUND",
                f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' in region "
                f"'{name.split('/')[3] if name.count('/') >= 3 else ''}' in project "
                f"'{name.split('/')[1] if name.count('/') >= 1 else ''}' does not exist.",
            )
        return svc

    def _new_op(self, svc: ServiceState) -> Operation:
        s = svc.service
        return self._operations.add(
            Operation(
                f"{_location(s.name)}/operations/{uuid.uuid4()}",
                lambda: with_type(SERVICE_TYPE, to_dict(s)),
            )
        )

    # ---- persistence and lifecycle -----------------------------------------------------------

    def _save(self, svc: ServiceState) -> None:
        if svc.service.name in self._services:
            self._store.put(SECTION, svc.service.name, service_to_json(svc))

    def restore(self) -> None:
        """Load persisted services; their serving revisions start in the background."""
        for name, data in self._store.section(SECTION).items():
            try:
                svc = service_from_json(data)
            except (KeyError, ValueError, TypeError) as e:
                log.warning("ignoring unreadable service %s: %s", name, e)
                continue
            self._services[name] = svc
            for rev, _ in serving_revisions(svc):
                self._tasks.spawn(self.ensure_running(svc, rev))

    async def shutdown(self) -> None:
        """Stop every instance (each a process group)."""
        self._tasks.cancel_all()
        instances = [r.instance for s in self._services.values() for r in s.revisions.values() if r.instance]
        for svc in self._services.values():
            for rev in svc.revisions.values():
                IdleTimers.cancel(rev)
        await asyncio.gather(*(i.stop() for i in instances), return_exceptions=True)
        await self._tasks.wait_all()


def _location(name: str) -> str:
    """projects/P/locations/L of a resource name, where its operations live."""
    return "/".join(name.split("/")[:4])
