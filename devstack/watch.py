"""Waiting on a deployment through a Firestore listener, the way the web app follows it.

The Firestore emulator's listeners have two known glitches (firebase-tools#3867): a snapshot that
says a just-created document does not exist, and, rarely under load, a listener that goes quiet. A
snapshot of a missing document is ignored (the caller created it), and after `quiet` seconds without
news the document is read once directly, so a stalled listener costs seconds, not the whole timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from devgem.adapters.collections import DEPLOYMENTS
from devgem.adapters.firestore_client import client
from devgem.domain.deployment import TERMINAL


def follow_deployment(
    deployment_id: str,
    timeout: float = 600,
    until: Callable[[dict[str, Any]], bool] | None = None,
    on_change: Callable[[dict[str, Any]], None] | None = None,
    quiet: float = 10.0,
) -> dict[str, Any]:
    """Return the deployment once `until` holds (default: a terminal state), or its last state on timeout."""
    done = threading.Event()
    latest: dict[str, Any] = {}
    finished = until or (lambda d: d.get("status") in TERMINAL)
    lock = threading.Lock()
    ref = client().collection(DEPLOYMENTS).document(deployment_id)

    def seen(data: dict[str, Any]) -> None:
        with lock:
            changed = data.get("status") != latest.get("status")
            latest.clear()
            latest.update(data)
        if changed and on_change is not None:
            on_change(data)
        if finished(data):
            done.set()

    def on_snapshot(snapshots: list[Any], *_: Any) -> None:
        for snap in snapshots:
            if snap.exists:
                seen(snap.to_dict() or {})

    watch = ref.on_snapshot(on_snapshot)
    deadline = time.monotonic() + timeout
    try:
        while not done.wait(max(0.0, min(quiet, deadline - time.monotonic()))):
            snap = ref.get()  # the listener said nothing for `quiet` seconds: look for ourselves
            if snap.exists:
                seen(snap.to_dict() or {})
            if time.monotonic() >= deadline and not done.is_set():
                with lock:
                    latest["timedOut"] = True
                break
    finally:
        unsubscribe: Callable[[], None] = watch.unsubscribe  # google-cloud-firestore leaves it untyped
        unsubscribe()
    with lock:
        return dict(latest)
