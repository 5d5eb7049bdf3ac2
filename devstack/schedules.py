"""devstack's stand-in for Cloud Scheduler: calls each scheduled function on its local interval.

Production calls the same functions with Cloud Scheduler on the cron in devgem.topology (terraform's
google_cloud_scheduler_job); locally the interval is seconds, so a lost event is repaired while you
watch. A call that fails is logged and tried again at the next tick, as Cloud Scheduler would.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import requests

from devgem import topology

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, url_of: Callable[[str], str]) -> None:
        self._url_of = url_of
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(f,), name=f"schedule-{f.name}", daemon=True)
            for f in topology.scheduled_functions()
        ]

    def start(self) -> Scheduler:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, fn: topology.Function) -> None:
        while not self._stop.wait(fn.local_every_seconds):
            try:
                response = requests.post(self._url_of(fn.name), timeout=300)
                if response.status_code != 200:
                    log.warning("scheduled %s answered %s: %s", fn.name, response.status_code, response.text[:300])
            except requests.RequestException as exc:  # the function is down or restarting: next tick
                log.info("scheduled %s not reached: %s", fn.name, exc)
