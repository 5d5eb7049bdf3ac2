"""Stopping revisions that no longer receive traffic, as Cloud Run scales an unused revision to zero.

A revision keeps running ``idle_stop`` seconds after it lost its traffic (in-flight requests, quick
rollbacks); starting it again cancels the pending stop.
"""

from __future__ import annotations

import asyncio

from localcloud.background import BackgroundTasks
from localcloud.run_state import RevisionState


class IdleTimers:
    def __init__(self, idle_stop: float, tasks: BackgroundTasks) -> None:
        self._idle_stop = idle_stop
        self._tasks = tasks

    @staticmethod
    def cancel(rev: RevisionState) -> None:
        """Forget a pending idle stop (the revision serves again, or is being stopped anyway)."""
        if rev.idle_timer is not None:
            rev.idle_timer.cancel()
            rev.idle_timer = None

    def stop_now(self, rev: RevisionState) -> None:
        self.cancel(rev)
        if rev.instance is not None and rev.instance.running:
            self._tasks.spawn(rev.instance.stop())

    def stop_when_idle(self, rev: RevisionState) -> None:
        """Stop rev's instance after idle_stop seconds without traffic (idle_stop <= 0: keep it)."""
        if self._idle_stop <= 0 or rev.idle_timer is not None:
            return
        if rev.instance is None or not rev.instance.running:
            return

        def stop() -> None:
            rev.idle_timer = None
            if rev.instance is not None:
                self._tasks.spawn(rev.instance.stop())

        rev.idle_timer = asyncio.get_running_loop().call_later(self._idle_stop, stop)
