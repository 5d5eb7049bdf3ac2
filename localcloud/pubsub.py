"""Publishing to Pub/Sub (the emulator) without ever blocking the caller.

Build status goes to ``cloud-builds`` and log entries to ``log-entry``. A revision may print thousands
of lines a second; its output must keep flowing even if the emulator is slow or down, so callers only
put messages on a bounded queue and one thread hands them to the client library, whose batching does
the rest. When the queue is full, messages are dropped and counted (a log line says how many),
which is better than stalling the app or growing without bound.

Topics are created by someone else (devstack creates them after localcloud is up). A missing topic
is logged, and the message dropped; messages published with ``retry_missing_topic`` (build status,
which a deployment waits for) are retried every 2 s for that long first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_QUEUE_SIZE = 200_000
_WARN_EVERY = 60.0  # seconds between repeated warnings about one topic


@dataclass(frozen=True)
class _Item:
    topic: str
    data: bytes
    attributes: dict[str, str]
    retry_until: float  # time.monotonic() until which a missing topic is retried


class Publisher:
    def __init__(self, project: str, emulator_host: str) -> None:
        self._project = project
        self._enabled = bool(emulator_host)
        self._queue: queue.Queue[_Item | None] = queue.Queue(_QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="localcloud-publisher", daemon=True)
        self._lock = threading.Lock()
        self._warned: dict[str, float] = {}
        self._dropped = 0
        self._pending: set[Future[Any]] = set()
        if not self._enabled:
            log.warning("PUBSUB_EMULATOR_HOST is not set: nothing will be published to Pub/Sub")

    def start(self) -> None:
        if self._enabled:
            self._thread.start()

    def publish(
        self, topic: str, data: bytes, attributes: dict[str, str] | None = None, retry_missing_topic: float = 0
    ) -> None:
        """Queue one message for topic (a short name like "cloud-builds"); never blocks."""
        if not self._enabled:
            return
        self._put(_Item(topic, data, attributes or {}, time.monotonic() + retry_missing_topic))

    def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self._dropped += 1
                dropped = self._dropped
            self._warn("queue", f"publish queue full: {dropped} messages dropped so far")

    def close(self, timeout: float = 10.0) -> None:
        """Publish what is queued (up to timeout seconds), then stop the client."""
        if not self._enabled or not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        from google.cloud.pubsub_v1 import PublisherClient, types

        client = PublisherClient(
            batch_settings=types.BatchSettings(max_messages=500, max_latency=0.02),
            publisher_options=types.PublisherOptions(
                flow_control=types.PublishFlowControl(
                    message_limit=20_000,
                    byte_limit=64 * 1024 * 1024,
                    limit_exceeded_behavior=types.LimitExceededBehavior.BLOCK,
                )
            ),
        )
        paths: dict[str, str] = {}
        while True:
            item = self._queue.get()
            if item is None:
                break
            topic = item.topic
            path = paths.setdefault(topic, client.topic_path(self._project, topic))
            try:
                future = client.publish(path, item.data, **item.attributes)
            except Exception as e:  # never let one bad message stop the publisher
                self._warn(topic, f"publish to {topic} failed: {e}")
                continue
            with self._lock:
                self._pending.add(future)
            future.add_done_callback(lambda f, i=item: self._done(i, f))
        client.stop()  # sends the open batches now
        deadline = time.monotonic() + 5
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.02)

    def _done(self, item: _Item, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        err = future.exception()
        if err is None:
            return
        from google.api_core import exceptions

        topic = item.topic
        if isinstance(err, exceptions.NotFound):
            if time.monotonic() < item.retry_until and self._thread.is_alive():
                self._warn(topic, f"topic projects/{self._project}/topics/{topic} does not exist yet; retrying")
                timer = threading.Timer(2.0, self._put, (item,))
                timer.daemon = True
                timer.start()
                return
            self._warn(topic, f"topic projects/{self._project}/topics/{topic} does not exist; message dropped")
        else:
            self._warn(topic, f"publish to {topic} failed: {err}")

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._warned.get(key, -_WARN_EVERY) < _WARN_EVERY:
                return
            self._warned[key] = now
        log.warning("%s", message)
