"""A deploy: start the revisions the new traffic needs, and move traffic only once they listen.

If a revision fails to start, traffic stays where it was, the service's Ready condition fails and
the operation's error quotes the app's last lines of output. LATEST means the latest *ready*
revision, so a failed deploy never takes traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from google.cloud import run_v2

from localcloud.config import Config
from localcloud.idle_timers import IdleTimers
from localcloud.images import Images
from localcloud.logs import LogSink
from localcloud.operations import Operation
from localcloud.rest import ApiError, to_dict, with_type
from localcloud.revisions import Instance, StartFailure
from localcloud.run_resources import SERVICE_TYPE
from localcloud.run_state import RevisionState, ServiceState, State, condition, now

log = logging.getLogger(__name__)

TT = run_v2.TrafficTargetAllocationType


class RevisionDeployer:
    def __init__(
        self,
        config: Config,
        images: Images,
        sink: LogSink,
        timers: IdleTimers,
        save: Callable[[ServiceState], None],
    ) -> None:
        self._config = config
        self._images = images
        self._sink = sink
        self._timers = timers
        self._save = save

    async def deploy(
        self, svc: ServiceState, rev: RevisionState, previous_traffic: list[run_v2.TrafficTarget], op: Operation
    ) -> None:
        """Finish the deploy the API accepted: op succeeds with the service, or fails with why."""
        async with svc.lock:
            s = svc.service
            try:
                # The new (or reused) revision must start, and so must every revision the new
                # traffic sends requests to; LATEST resolves to this deploy's revision.
                needed = {rev.short: rev}
                for t in s.traffic:
                    if t.type_ == TT.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION and t.percent > 0:
                        needed[t.revision] = svc.revisions[t.revision]
                results = await asyncio.gather(*(self.start(svc, r) for r in needed.values()), return_exceptions=True)
                errors = [e for e in results if isinstance(e, BaseException)]
                if errors:
                    raise errors[0]
            except (StartFailure, ApiError) as e:
                message = e.message if isinstance(e, ApiError) else str(e)
                status = e.status if isinstance(e, ApiError) else "FAILED_PRECONDITION"
                s.traffic = previous_traffic
                s.reconciling = False
                s.observed_generation = s.generation
                s.terminal_condition = condition("Ready", State.CONDITION_FAILED, message)
                s.conditions = [
                    condition(
                        "RoutesReady", State.CONDITION_SUCCEEDED if s.traffic_statuses else State.CONDITION_FAILED
                    ),
                    condition("ConfigurationsReady", State.CONDITION_FAILED, message),
                ]
                if not rev.ready:
                    self._timers.stop_now(rev)
                self._save(svc)
                op.fail(status, message)
                return
            except Exception as e:
                log.exception("deploy of %s failed", s.name)
                s.reconciling = False
                s.terminal_condition = condition("Ready", State.CONDITION_FAILED, f"internal error: {e}")
                self._save(svc)
                op.fail("INTERNAL", f"internal error in localcloud: {e}")
                return
            s.latest_ready_revision = max(
                (r for r in svc.revisions.values() if r.ready), key=lambda r: r.revision.create_time
            ).revision.name
            self._route(svc)
            s.reconciling = False
            s.observed_generation = s.generation
            s.terminal_condition = condition("Ready", State.CONDITION_SUCCEEDED)
            s.conditions = [
                condition("RoutesReady", State.CONDITION_SUCCEEDED),
                condition("ConfigurationsReady", State.CONDITION_SUCCEEDED),
            ]
            self._save(svc)
            op.succeed(with_type(SERVICE_TYPE, to_dict(s)))

    async def start(self, svc: ServiceState, rev: RevisionState) -> None:
        """Start rev's instance and wait until it listens; mark the revision Ready or failed."""
        self._timers.cancel(rev)
        container = rev.revision.containers[0]
        if rev.artifact is None:
            rev.artifact = self._images.get(container.image)
        if rev.artifact is None:
            _mark(rev, State.CONDITION_FAILED, f"Image '{container.image}' not found.")
            raise ApiError("NOT_FOUND", f"image {container.image} not found")
        if rev.instance is None:
            env = {e.name: e.value for e in container.env if e.name}
            command = [*container.command, *container.args] if container.command else None
            if command is None and container.args:
                command = [*rev.artifact.command, *container.args]
            rev.instance = Instance(
                self._config, self._sink, svc.short, rev.short, rev.artifact, env, command, dict(rev.revision.labels)
            )
        try:
            await rev.instance.start()
        except StartFailure as e:
            _mark(rev, State.CONDITION_FAILED, str(e))
            raise
        if not rev.ready:
            _mark(rev, State.CONDITION_SUCCEEDED, "")

    def _route(self, svc: ServiceState) -> None:
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
        receiving = {st.revision for st in statuses if st.percent > 0}
        for rev in svc.revisions.values():
            if rev.short not in receiving:
                self._timers.stop_when_idle(rev)


def _mark(rev: RevisionState, state: int, message: str) -> None:
    r = rev.revision
    r.conditions = [condition("Ready", state, message)]
    r.reconciling = False
    r.update_time = now()
