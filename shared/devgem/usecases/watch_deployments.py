"""The watchdog: no deployment stays unfinished past its deadline, whatever events were lost.

Scheduled every minute (Cloud Scheduler in production, devstack's timer locally; both from
devgem.topology). Each pass reads the unfinished deployments and, for each one the domain's deadlines
say went quiet (devgem.domain.deadlines), re-drives its step through the path that normally runs it:
deploy-requested is announced again (the claim and the build's tag make that safe), Cloud Build is
asked how the build is doing and its answer followed as if the notification had come, the rollout is
run again (the revision is named after the deployment). One that overstayed is failed, saying why.

Safe to run twice at once: every re-drive is first marked on the deployment by a guarded write, so an
overlapping pass finds it re-driven and leaves it alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc

from devgem import clock
from devgem.domain import deadlines
from devgem.domain import deployment as states
from devgem.domain.deadlines import Step
from devgem.domain.deployment import BUILD_IN_PROGRESS, Deployment
from devgem.usecases.follow_build import FollowBuild
from devgem.usecases.ports import Builds, Deployments, Publisher
from devgem.usecases.request_deploy import announce

log = logging.getLogger(__name__)

PARALLEL = 8  # re-drives at once: a rollout waits for its URL, and one slow app must not hold the rest


@dataclass(frozen=True)
class WatchDeployments:
    deployments: Deployments
    builds: Builds
    publisher: Publisher
    follow_build: FollowBuild
    now: Callable[[], datetime] = clock.now

    def handle(self) -> dict[str, int]:
        """One pass; how many deployments took each step (for the log and the caller)."""
        unfinished = self.deployments.unfinished()
        with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="watchdog") as pool:
            steps = list(pool.map(self._watch, unfinished))
        counts = Counter(str(step) for step in steps)
        counts["unfinished"] = len(unfinished)
        return dict(counts)

    def _watch(self, found: Deployment) -> Step:
        try:
            step = self.deployments.change(found.id, lambda d: deadlines.decide_watch(states.existing(d), self.now()))
            if step != Step.ON_TIME:
                self._redrive(step, found)
            return step
        except Exception:  # one deployment's trouble must not stop the pass; the next pass tries again
            log.exception("watchdog: deployment %s could not be re-driven", found.id)
            return Step.ON_TIME

    def _redrive(self, step: Step, d: Deployment) -> None:
        log.warning("watchdog: deployment %s (%s since %s): %s", d.id, d.status, d.updated_at, step)
        if step == Step.REQUEST_AGAIN:
            announce(self.publisher, d)
        elif step == Step.GAVE_UP:
            if d.build_id:
                try:
                    self.builds.cancel(d.build_id)
                except gexc.GoogleAPICallError as exc:  # already finished: nothing left to stop
                    log.info("build %s of deployment %s not cancelled: %s", d.build_id, d.id, exc)
        else:  # CHECK_BUILD, ROLL_OUT_AGAIN: what Cloud Build says of the build, followed
            assert d.build_id
            build = self.builds.get(d.build_id)
            if build is None:
                error = f"Cloud Build has no record of build {d.build_id}; deploy again"
                self.deployments.change(
                    d.id,
                    lambda now_d: states.decide_failed(
                        states.existing(now_d), d.build_id or "", "STATUS_UNKNOWN", error, self.now()
                    ),
                    on_already_done="duplicate",
                )
                return
            if step == Step.CHECK_BUILD and build.status.name in BUILD_IN_PROGRESS:
                return  # still building, and within its deadline
            self.follow_build.apply(d, build)
