"""Cloud Run services: immutable revisions, traffic splits, and deploys as long-running operations.

The rules a deployer relies on are Cloud Run's:
- A revision is immutable. Sending a template whose revision name exists with the same containers
  creates nothing (only traffic moves); the same name with different containers is ALREADY_EXISTS.
  Without a name, a new revision ``S-00001-abc`` is created when the containers changed.
- A deploy starts the new revision (and any revision the new traffic needs) and only moves traffic
  once they listen. If the new revision fails, traffic stays where it was, the service's Ready
  condition fails, and the operation's error quotes the app's last lines of output.
- LATEST means the latest *ready* revision, so a failed deploy never takes traffic.

Revisions that stop receiving traffic keep running for ``idle_stop`` seconds (in-flight requests and
quick rollbacks), then are stopped; a later rollback starts them again before moving traffic. This
mirrors Cloud Run scaling an unused revision to zero. The router also starts a serving revision on
demand if its instance is not running (e.g. right after localcloud restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.cloud import run_v2

from localcloud.config import Config
from localcloud.images import Artifact, Images
from localcloud.logs import LogSink
from localcloud.operations import Operation, Operations
from localcloud.rest import ApiError, to_dict, with_type
from localcloud.revisions import Instance, StartFailure
from localcloud.store import Store

log = logging.getLogger(__name__)

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
REVISION_TYPE = "type.googleapis.com/google.cloud.run.v2.Revision"
TT = run_v2.TrafficTargetAllocationType
State = run_v2.Condition.State
_SERVICE_ID = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
_REVISION_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
# Service fields a create or update sets as sent (besides template and traffic, which are validated).
_SPEC_FIELDS = (
    "labels",
    "annotations",
    "description",
    "client",
    "client_version",
    "binary_authorization",
    "scaling",
    "invoker_iam_disabled",
    "default_uri_disabled",
    "custom_audiences",
)


def now() -> datetime:
    return datetime.now(UTC)


def containers_key(containers: Any) -> str:
    """What makes two revisions the same: image, env, command, args and working dir of each container."""
    return json.dumps(
        [
            {
                "image": c.image,
                "env": sorted((e.name, e.value) for e in c.env),
                "command": list(c.command),
                "args": list(c.args),
                "dir": c.working_dir,
            }
            for c in containers
        ]
    )


@dataclass
class _Revision:
    revision: run_v2.Revision
    artifact: Artifact | None = None
    instance: Instance | None = None
    idle_timer: asyncio.TimerHandle | None = None

    @property
    def short(self) -> str:
        return str(self.revision.name.rsplit("/", 1)[-1])

    @property
    def ready(self) -> bool:
        return any(c.type_ == "Ready" and c.state == State.CONDITION_SUCCEEDED for c in self.revision.conditions)


@dataclass
class _Service:
    service: run_v2.Service
    revisions: dict[str, _Revision] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    counter: int = 0

    @property
    def short(self) -> str:
        return str(self.service.name.rsplit("/", 1)[-1])


def _condition(type_: str, state: int, message: str = "") -> run_v2.Condition:
    return run_v2.Condition(type_=type_, state=state, message=message, last_transition_time=now())


class CloudRun:
    def __init__(self, config: Config, store: Store, images: Images, sink: LogSink, operations: Operations) -> None:
        self._config = config
        self._store = store
        self._images = images
        self._sink = sink
        self._operations = operations
        self._services: dict[str, _Service] = {}  # by full name
        self._tasks: set[asyncio.Task[Any]] = set()

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

    def find(self, short_name: str) -> _Service | None:
        """The service the router serves for host <short_name>.localhost."""
        for svc in self._services.values():
            if svc.short == short_name:
                return svc
        return None

    def serving(self, svc: _Service) -> list[tuple[_Revision, int]]:
        """(revision, percent) pairs that currently receive traffic."""
        out = []
        for status in svc.service.traffic_statuses:
            rev = svc.revisions.get(status.revision)
            if rev is not None and status.percent > 0:
                out.append((rev, status.percent))
        return out

    async def ensure_running(self, svc: _Service, rev: _Revision) -> Instance | None:
        """The instance of a serving revision, started on demand when it is not running."""
        if rev.instance is None or not rev.instance.running:
            try:
                await self._start(svc, rev)
            except (StartFailure, ApiError) as e:
                log.warning("could not start %s: %s", rev.short, e)
                return None
        return rev.instance

    def instances(self) -> list[dict[str, Any]]:
        """Every revision's instance, for debugging (GET /localcloud/instances)."""
        out = []
        for svc in self._services.values():
            serving = {r.short: p for r, p in self.serving(svc)}
            for rev in svc.revisions.values():
                i = rev.instance
                out.append(
                    {
                        "service": svc.short,
                        "revision": rev.short,
                        "percent": serving.get(rev.short, 0),
                        "state": i.state if i else "stopped",
                        "port": i.port if i else 0,
                        "pid": i.pid if i else 0,
                        "restarts": i.restarts if i else 0,
                    }
                )
        return out

    def _service(self, name: str) -> _Service:
        svc = self._services.get(name)
        if svc is None:
            raise ApiError(
                "NOT_FOUND",
                f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'SERVICE' in region "
                f"'{name.split('/')[3] if name.count('/') >= 3 else ''}' in project "
                f"'{name.split('/')[1] if name.count('/') >= 1 else ''}' does not exist.",
            )
        return svc

    # ---- writing -----------------------------------------------------------------------------

    def create_service(self, parent: str, service_id: str, service: run_v2.Service, validate_only: bool) -> Operation:
        if not _SERVICE_ID.match(service_id or ""):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"service_id {service_id!r} must be 1-49 lowercase letters, digits or hyphens, "
                "start with a letter and not end with a hyphen",
            )
        name = f"{parent}/services/{service_id}"
        if name in self._services:
            raise ApiError("ALREADY_EXISTS", f"Resource '{service_id}' already exists.")
        t = now()
        base = run_v2.Service(
            name=name,
            uid=str(uuid.uuid4()),
            generation=0,
            create_time=t,
            creator="localcloud",
            uri=self._config.service_uri(service_id),
            urls=[self._config.service_uri(service_id)],
        )
        svc = _Service(base)
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
        self._store.delete("services", name)
        for rev in svc.revisions.values():
            self._stop_now(rev)
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
        if any(r is rev for r, _ in self.serving(svc)):
            raise ApiError("FAILED_PRECONDITION", f"Revision {short} is receiving traffic and cannot be deleted")
        del svc.revisions[short]
        self._stop_now(rev)
        self._save(svc)
        op = Operation(
            f"{self._location(name)}/operations/{uuid.uuid4()}",
            lambda: with_type(REVISION_TYPE, to_dict(rev.revision)),
        )
        op.succeed(with_type(REVISION_TYPE, to_dict(rev.revision)))
        return self._operations.add(op)

    def _apply(self, svc: _Service, request: run_v2.Service, validate_only: bool, creating: bool) -> Operation:
        """Validate a create/update synchronously (errors are HTTP errors), then deploy in the background."""
        template = run_v2.RevisionTemplate(request.template)
        if len(template.containers) != 1:
            raise ApiError("INVALID_ARGUMENT", "localcloud runs exactly one container per revision")
        container = template.containers[0]
        if not container.image:
            raise ApiError("INVALID_ARGUMENT", "template.containers[0].image is required")
        reserved = [e.name for e in container.env if e.name in _RESERVED_ENV]
        if reserved:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"The following reserved env names were provided: {', '.join(reserved)}. "
                "These values are automatically set by the system.",
            )
        rev_name, new_rev = self._pick_revision(svc, template)
        traffic = list(request.traffic) or [
            run_v2.TrafficTarget(type_=TT.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=100)
        ]
        self._check_traffic(svc, traffic, rev_name)
        if validate_only:
            op = self._new_op(svc)
            op.succeed(with_type(SERVICE_TYPE, to_dict(svc.service)))
            return op

        # Commit the spec now, so a second request sees this revision name as taken.
        if creating:
            self._services[svc.service.name] = svc
        s = svc.service
        previous_traffic = list(s.traffic)
        s.generation += 1
        s.update_time = now()
        s.last_modifier = "localcloud"
        for name in _SPEC_FIELDS:  # an update replaces the whole spec, as Cloud Run's does
            if name in request:
                setattr(s, name, getattr(request, name))
            else:
                delattr(s, name)
        s.ingress = run_v2.IngressTraffic(request.ingress or run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
        s.launch_stage = request.launch_stage or "GA"
        s.template = template
        s.traffic = traffic
        s.reconciling = True
        s.terminal_condition = _condition("Ready", State.CONDITION_RECONCILING, "Deploying revision.")
        if new_rev is not None:
            svc.revisions[rev_name] = new_rev
            s.latest_created_revision = new_rev.revision.name
        self._save(svc)
        op = self._new_op(svc)
        self._spawn(self._deploy(svc, svc.revisions[rev_name], previous_traffic, op))
        return op

    def _pick_revision(self, svc: _Service, template: run_v2.RevisionTemplate) -> tuple[str, _Revision | None]:
        """(short revision name, new revision or None when an existing one is reused)."""
        key = containers_key(template.containers)
        short = template.revision
        if short:
            if not short.startswith(svc.short + "-") or not _REVISION_ID.match(short):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"revision name {short!r} must be prefixed by the service name followed by '-' "
                    "(lowercase letters, digits and hyphens, at most 63 characters)",
                )
            existing = svc.revisions.get(short)
            if existing is not None:
                if containers_key(existing.revision.containers) != key:
                    raise ApiError(
                        "ALREADY_EXISTS",
                        f"Revision named '{short}' with different configuration already exists.",
                    )
                return short, None
        else:
            latest = svc.service.latest_created_revision.rsplit("/", 1)[-1]
            if latest in svc.revisions and containers_key(svc.revisions[latest].revision.containers) == key:
                return latest, None
            while True:
                svc.counter = max(svc.counter, len(svc.revisions)) + 1
                suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=3))
                short = f"{svc.short}-{svc.counter:05d}-{suffix}"
                if short not in svc.revisions:
                    break
        return short, self._new_revision(svc, short, template)

    def _new_revision(self, svc: _Service, short: str, template: run_v2.RevisionTemplate) -> _Revision:
        t = now()
        name = f"{svc.service.name}/revisions/{short}"
        revision = run_v2.Revision(
            name=name,
            uid=str(uuid.uuid4()),
            generation=1,
            labels=dict(template.labels),
            annotations=dict(template.annotations),
            create_time=t,
            update_time=t,
            launch_stage="GA",
            service=svc.service.name,
            scaling=template.scaling,
            max_instance_request_concurrency=template.max_instance_request_concurrency or 80,
            timeout=template.timeout or {"seconds": 300},
            service_account=template.service_account,
            containers=list(template.containers),
            execution_environment=template.execution_environment,
            conditions=[_condition("Ready", State.CONDITION_RECONCILING, "Deploying revision.")],
            observed_generation=1,
            reconciling=True,
            etag=str(uuid.uuid4()),
            creator="localcloud",
        )
        return _Revision(revision)

    def _check_traffic(self, svc: _Service, traffic: list[run_v2.TrafficTarget], new_rev: str) -> None:
        total = 0
        for t in traffic:
            if t.percent < 0:
                raise ApiError("INVALID_ARGUMENT", "traffic percent must not be negative")
            total += t.percent
            if t.type_ == TT.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION:
                if t.revision != new_rev and t.revision not in svc.revisions:
                    raise ApiError("INVALID_ARGUMENT", f"Revision named '{t.revision}' with traffic is not found.")
            elif t.type_ != TT.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
                raise ApiError("INVALID_ARGUMENT", "traffic target type must be LATEST or REVISION")
        if total != 100:
            raise ApiError("INVALID_ARGUMENT", f"traffic percents must add up to 100, not {total}")

    # ---- deploying ---------------------------------------------------------------------------

    async def _deploy(self, svc: _Service, rev: _Revision, previous_traffic: list[Any], op: Operation) -> None:
        async with svc.lock:
            s = svc.service
            try:
                # The new (or reused) revision must start, and so must every revision the new
                # traffic sends requests to; LATEST resolves to this deploy's revision.
                needed = {rev.short: rev}
                for t in s.traffic:
                    if t.type_ == TT.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION and t.percent > 0:
                        needed[t.revision] = svc.revisions[t.revision]
                results = await asyncio.gather(*(self._start(svc, r) for r in needed.values()), return_exceptions=True)
                errors = [e for e in results if isinstance(e, BaseException)]
                if errors:
                    raise errors[0]
            except (StartFailure, ApiError) as e:
                message = e.message if isinstance(e, ApiError) else str(e)
                status = e.status if isinstance(e, ApiError) else "FAILED_PRECONDITION"
                s.traffic = previous_traffic
                s.reconciling = False
                s.observed_generation = s.generation
                s.terminal_condition = _condition("Ready", State.CONDITION_FAILED, message)
                s.conditions = [
                    _condition(
                        "RoutesReady", State.CONDITION_SUCCEEDED if s.traffic_statuses else State.CONDITION_FAILED
                    ),
                    _condition("ConfigurationsReady", State.CONDITION_FAILED, message),
                ]
                if not rev.ready:
                    self._stop_now(rev)
                self._save(svc)
                op.fail(status, message)
                return
            except Exception as e:
                log.exception("deploy of %s failed", s.name)
                s.reconciling = False
                s.terminal_condition = _condition("Ready", State.CONDITION_FAILED, f"internal error: {e}")
                self._save(svc)
                op.fail("INTERNAL", f"internal error in localcloud: {e}")
                return
            s.latest_ready_revision = max(
                (r for r in svc.revisions.values() if r.ready), key=lambda r: r.revision.create_time
            ).revision.name
            self._route(svc)
            s.reconciling = False
            s.observed_generation = s.generation
            s.terminal_condition = _condition("Ready", State.CONDITION_SUCCEEDED)
            s.conditions = [
                _condition("RoutesReady", State.CONDITION_SUCCEEDED),
                _condition("ConfigurationsReady", State.CONDITION_SUCCEEDED),
            ]
            self._save(svc)
            op.succeed(with_type(SERVICE_TYPE, to_dict(s)))

    async def _start(self, svc: _Service, rev: _Revision) -> None:
        """Start rev's instance and wait until it listens; mark the revision Ready or failed."""
        if rev.idle_timer is not None:
            rev.idle_timer.cancel()
            rev.idle_timer = None
        r = rev.revision
        container = r.containers[0]
        if rev.artifact is None:
            rev.artifact = self._images.get(container.image)
        if rev.artifact is None:
            message = f"Image '{container.image}' not found."
            self._mark(rev, State.CONDITION_FAILED, message)
            raise ApiError("NOT_FOUND", f"image {container.image} not found")
        if rev.instance is None:
            env = {e.name: e.value for e in container.env if e.name}
            command = [*container.command, *container.args] if container.command else None
            if command is None and container.args:
                command = [*rev.artifact.command, *container.args]
            rev.instance = Instance(self._config, self._sink, svc.short, rev.short, rev.artifact, env, command)
        try:
            await rev.instance.start()
        except StartFailure as e:
            self._mark(rev, State.CONDITION_FAILED, str(e))
            raise
        if not rev.ready:
            self._mark(rev, State.CONDITION_SUCCEEDED, "")

    def _mark(self, rev: _Revision, state: int, message: str) -> None:
        r = rev.revision
        r.conditions = [_condition("Ready", state, message)]
        r.reconciling = False
        r.update_time = now()

    def _route(self, svc: _Service) -> None:
        """Turn the traffic spec into traffic_statuses (what the router uses) and schedule idle stops."""
        s = svc.service
        latest = s.latest_ready_revision.rsplit("/", 1)[-1]
        statuses = []
        for t in s.traffic:
            statuses.append(
                run_v2.TrafficTargetStatus(
                    type_=t.type_,
                    revision=latest if t.type_ == TT.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST else t.revision,
                    percent=t.percent,
                    tag=t.tag,
                )
            )
        s.traffic_statuses = statuses
        serving = {st.revision for st in statuses if st.percent > 0}
        for rev in svc.revisions.values():
            if rev.short not in serving:
                self._stop_idle(rev)

    def _stop_now(self, rev: _Revision) -> None:
        if rev.idle_timer is not None:
            rev.idle_timer.cancel()
            rev.idle_timer = None
        if rev.instance is not None and rev.instance.running:
            self._spawn(rev.instance.stop())

    def _stop_idle(self, rev: _Revision) -> None:
        """Stop rev's instance after idle_stop seconds without traffic (idle_stop <= 0: keep it)."""
        if self._config.idle_stop <= 0 or rev.idle_timer is not None:
            return
        if rev.instance is None or not rev.instance.running:
            return

        def stop() -> None:
            rev.idle_timer = None
            if rev.instance is not None:
                self._spawn(rev.instance.stop())

        rev.idle_timer = asyncio.get_running_loop().call_later(self._config.idle_stop, stop)

    # ---- bookkeeping -------------------------------------------------------------------------

    def _new_op(self, svc: _Service) -> Operation:
        s = svc.service
        return self._operations.add(
            Operation(
                f"{self._location(s.name)}/operations/{uuid.uuid4()}",
                lambda: with_type(SERVICE_TYPE, to_dict(s)),
            )
        )

    @staticmethod
    def _location(name: str) -> str:
        return "/".join(name.split("/")[:4])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _save(self, svc: _Service) -> None:
        if svc.service.name not in self._services:
            return
        self._store.put(
            "services",
            svc.service.name,
            {
                "service": to_dict(svc.service),
                "counter": svc.counter,
                "revisions": {
                    short: {
                        "revision": to_dict(r.revision),
                        "artifact": r.artifact.to_json() if r.artifact else None,
                    }
                    for short, r in svc.revisions.items()
                },
            },
        )

    def restore(self) -> None:
        """Load persisted services; their serving revisions start in the background."""
        for name, data in self._store.section("services").items():
            try:
                service = run_v2.Service.from_json(json.dumps(data["service"]), ignore_unknown_fields=True)
                svc = _Service(service, counter=int(data.get("counter", 0)))
                for short, r in data.get("revisions", {}).items():
                    revision = run_v2.Revision.from_json(json.dumps(r["revision"]), ignore_unknown_fields=True)
                    artifact = Artifact.from_json(r["artifact"]) if r.get("artifact") else None
                    svc.revisions[short] = _Revision(revision, artifact)
            except (KeyError, ValueError, TypeError) as e:
                log.warning("ignoring unreadable service %s: %s", name, e)
                continue
            service.reconciling = False
            self._services[name] = svc
            for rev, _ in self.serving(svc):
                self._spawn(self.ensure_running(svc, rev))

    async def shutdown(self) -> None:
        """Stop every instance (each a process group)."""
        for task in list(self._tasks):
            task.cancel()
        instances = [r.instance for s in self._services.values() for r in s.revisions.values() if r.instance]
        for svc in self._services.values():
            for rev in svc.revisions.values():
                if rev.idle_timer is not None:
                    rev.idle_timer.cancel()
        await asyncio.gather(*(i.stop() for i in instances), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
