"""Waiting on a deployment through a Firestore listener, the way the web app follows it: no polling."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devgem.firestore_client import client
from devgem.states import TERMINAL


def follow_deployment(
    deployment_id: str,
    timeout: float = 600,
    until: Callable[[dict[str, Any]], bool] | None = None,
    on_change: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Return the deployment once `until` holds (default: a terminal state), or its last state on timeout."""
    done = threading.Event()
    latest: dict[str, Any] = {}
    finished = until or (lambda d: d.get("status") in TERMINAL)
    lock = threading.Lock()

    def on_snapshot(snapshots: list[Any], *_: Any) -> None:
        for snap in snapshots:
            data = snap.to_dict() or {}
            with lock:
                changed = data.get("status") != latest.get("status")
                latest.clear()
                latest.update(data)
            if changed and on_change is not None:
                on_change(data)
            if finished(data):
                done.set()

    watch = client().collection("deployments").document(deployment_id).on_snapshot(on_snapshot)
    try:
        if not done.wait(timeout):
            with lock:
                latest["timedOut"] = True
    finally:
        watch.unsubscribe()
    with lock:
        return dict(latest)
