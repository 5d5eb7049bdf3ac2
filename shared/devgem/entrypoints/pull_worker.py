"""A Pub/Sub pull consumer: pull in batches, ack each message once its handler's future says so.

Push delivers one message per HTTP request; for log-entry (thousands of lines a second) that is a
request per line. A worker instead pulls up to `max_messages` in one request, hands the batch to its
use case, which returns one Future per message, and acknowledges in batches as the futures settle.
A future that fails is nacked (ack deadline 0), so Pub/Sub redelivers it after the subscription's
retry back-off (1 s at first) rather than the ack deadline; after MAX_DELIVERY_ATTEMPTS it goes to
the subscription's dead-letter topic.

Pulling never waits for the handler's commits: `pullers` threads keep pulling while earlier batches
are being written, up to `max_outstanding` unsettled messages and `max_outstanding_bytes` (flow
control). The unary Pull is used rather than the client library's StreamingPull because it was
measured cheaper here: at 3,000 messages/s the streaming client fell 2 s behind on this machine's
2 cores, unary pull kept p99 at 70 ms with 15 % less CPU (docs/logs.md).

What it holds is kept leased (ModifyAckDeadline every third of the deadline), so the subscription's
ack deadline can be short and a worker killed outright delays its messages by that much only. On
SIGTERM (Cloud Run gives 10 s) it stops pulling, waits for what it holds to settle, acks, and nacks
whatever is still unsettled, so nothing stays invisible until its ack deadline.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import SubscriberClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One pulled message as a handler sees it.

    `attempt` is Pub/Sub's delivery count (1 the first time; 0 when the subscription has no
    dead-letter policy, as Pub/Sub counts only then). A handler uses it to tell a redelivery, which
    may repeat work a dead instance already committed, from a first delivery, which cannot."""

    data: bytes
    attempt: int = 1
    published: datetime | None = None

    @property
    def redelivered(self) -> bool:
        return self.attempt > 1


HandleBatch = Callable[[Sequence[Delivery]], Sequence["Future[Any]"]]

STARTED = "pulling"  # the first word this worker logs once it runs (devstack waits for it)
MAX_ACK_IDS = 2_500  # per Acknowledge / ModifyAckDeadline request
LARGEST_MESSAGE = 256 * 1024  # what a Pull is assumed to bring per message: the Log Router's largest entry
PULL_WAIT = 2.0  # a Pull waits for messages this long at most; it bounds how long stopping takes
IDLE_SLEEP = 0.01  # after an empty answer, in case a server does not wait for messages


class PullWorker:
    def __init__(
        self,
        subscription: str,
        handle: HandleBatch,
        *,
        subscriber: SubscriberClient | None = None,
        pullers: int = 2,
        max_messages: int = 1_000,
        max_outstanding: int = 20_000,
        max_outstanding_bytes: int = 256 * 1024 * 1024,
        ack_every: float = 0.05,
        ack_deadline: int = 10,
        drain_timeout: float = 8.0,
    ) -> None:
        self.subscription = subscription
        self._handle = handle
        self._subscriber = subscriber
        self.pullers = pullers
        self.max_messages = max_messages
        self.max_outstanding = max_outstanding
        self.max_outstanding_bytes = max_outstanding_bytes
        self.ack_every = ack_every
        self.ack_deadline = ack_deadline
        self.drain_timeout = drain_timeout
        self.stop = threading.Event()
        self._cond = threading.Condition()
        self._outstanding: dict[str, int] = {}  # pulled, not yet settled: ack id -> bytes
        self._held_bytes = 0
        self._leased_at = 0.0
        self._reserved = 0  # room promised to Pulls in flight
        self._acks: list[str] = []
        self._nacks: list[str] = []
        self.acked = self.nacked = 0

    @property
    def subscriber(self) -> SubscriberClient:
        if self._subscriber is None:
            self._subscriber = SubscriberClient()
        return self._subscriber

    def run(self) -> None:
        """Pull until `stop` is set, then drain. Blocks."""
        threads = [threading.Thread(target=self._pull_loop, name=f"pull-{i}", daemon=True) for i in range(self.pullers)]
        acker = threading.Thread(target=self._ack_loop, name="acker", daemon=True)
        for t in (*threads, acker):
            t.start()
        log.info("%s %s with %d pullers", STARTED, self.subscription, self.pullers)
        self.stop.wait()
        for t in threads:
            t.join(PULL_WAIT + 1)
        self._drain()
        acker.join(5)

    # -- pulling ---------------------------------------------------------------------------------

    def _pull_loop(self) -> None:
        while not self.stop.is_set():
            room = self._reserve()
            if room == 0:
                continue
            try:
                response = self.subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": room}, timeout=PULL_WAIT, retry=None
                )
            except gexc.DeadlineExceeded:  # nothing arrived while the Pull waited
                self._received(room, [])
                continue
            except gexc.NotFound:
                self._received(room, [])
                log.warning("subscription %s does not exist (yet); retrying in 1 s", self.subscription)
                self.stop.wait(1.0)
                continue
            except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
                self._received(room, [])
                if not self.stop.is_set():
                    log.warning("pull failed (%s); retrying", type(exc).__name__)
                self.stop.wait(0.5)
                continue
            received = [
                (m.ack_id, Delivery(m.message.data, m.delivery_attempt, _published(m)))
                for m in response.received_messages
            ]
            self._received(room, received)
            if self.stop.is_set():  # pulled while stopping: give them straight back
                self._settle_all(received, ok=False)
            elif received:
                self._dispatch(received)
            else:
                self.stop.wait(IDLE_SLEEP)

    def _reserve(self) -> int:
        """Room for how many more messages this Pull may bring (0 after a short wait if there is none).

        Counted in messages and in bytes. A Pull cannot ask for bytes, so each message it may bring
        is reserved at the largest size the Log Router sends: a tenant printing 256 KiB lines fills the
        budget with fewer lines instead of running the worker out of memory."""
        with self._cond:
            room = self.max_outstanding - len(self._outstanding) - self._reserved
            bytes_room = self.max_outstanding_bytes - self._held_bytes - self._reserved * LARGEST_MESSAGE
            idle = not self._outstanding and not self._reserved  # then one message may always come
            if room <= 0 or (bytes_room < LARGEST_MESSAGE and not idle):
                self._cond.wait(0.1)
                return 0
            room = max(1, min(self.max_messages, room, bytes_room // LARGEST_MESSAGE))
            self._reserved += room
            return room

    def _received(self, reserved: int, messages: list[tuple[str, Delivery]]) -> None:
        with self._cond:
            self._reserved -= reserved
            for ack_id, delivery in messages:
                if ack_id not in self._outstanding:
                    self._outstanding[ack_id] = len(delivery.data)
                    self._held_bytes += len(delivery.data)

    def _dispatch(self, messages: list[tuple[str, Delivery]]) -> None:
        try:
            futures = self._handle([delivery for _, delivery in messages])
        except Exception:  # a handler bug: retry the batch rather than lose or hold it
            log.exception("the batch handler failed; its %d messages are nacked", len(messages))
            self._settle_all(messages, ok=False)
            return
        for (ack_id, _), future in zip(messages, futures, strict=True):
            future.add_done_callback(self._on_done(ack_id))

    def _on_done(self, ack_id: str) -> Callable[[Future[Any]], None]:
        return lambda future: self._settled(ack_id, ok=future.exception() is None)

    def _settle_all(self, messages: list[tuple[str, Delivery]], ok: bool) -> None:
        for ack_id, _ in messages:
            self._settled(ack_id, ok)

    def _settled(self, ack_id: str, ok: bool) -> None:
        with self._cond:
            size = self._outstanding.pop(ack_id, None)
            if size is None:
                return
            self._held_bytes -= size
            (self._acks if ok else self._nacks).append(ack_id)
            self._cond.notify_all()  # room for the pullers; the acker sends at its own pace

    # -- acknowledging ---------------------------------------------------------------------------

    def _ack_loop(self) -> None:
        while not self.stop.is_set():
            self.stop.wait(self.ack_every)
            try:
                self._send()
                self._extend_leases()
            except Exception:  # never let the acker die: unacked lines would all be redelivered
                log.exception("acknowledging failed; retrying")

    def _extend_leases(self) -> None:
        """Keep what is still being written leased, so the subscription's ack deadline can be short:
        a worker killed outright gives its messages back within that deadline (10 s), not minutes."""
        now = time.monotonic()
        if now - self._leased_at < self.ack_deadline / 3:
            return
        self._leased_at = now
        with self._cond:
            held = list(self._outstanding)
        for i in range(0, len(held), MAX_ACK_IDS):
            part = held[i : i + MAX_ACK_IDS]
            request = {"subscription": self.subscription, "ack_ids": part, "ack_deadline_seconds": self.ack_deadline}
            self._call("modify_ack_deadline", request)

    def _send(self) -> None:
        with self._cond:
            acks, self._acks = self._acks, []
            nacks, self._nacks = self._nacks, []
        for i in range(0, len(acks), MAX_ACK_IDS):
            part = acks[i : i + MAX_ACK_IDS]
            self._call("acknowledge", {"subscription": self.subscription, "ack_ids": part})
            self.acked += len(part)
        for i in range(0, len(nacks), MAX_ACK_IDS):
            part = nacks[i : i + MAX_ACK_IDS]
            request = {"subscription": self.subscription, "ack_ids": part, "ack_deadline_seconds": 0}
            self._call("modify_ack_deadline", request)
            self.nacked += len(part)

    def _call(self, method: str, request: dict[str, Any]) -> None:
        """Best effort: a lost ack means a redelivery, which the handler drops as a duplicate."""
        for attempt in range(3):
            try:
                getattr(self.subscriber, method)(request=request, timeout=30)
                return
            except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
                log.warning("%s of %d messages failed (%s)", method, len(request["ack_ids"]), type(exc).__name__)
                time.sleep(0.2 * (attempt + 1))

    def _drain(self) -> None:
        deadline = time.monotonic() + self.drain_timeout
        with self._cond:
            while self._outstanding and time.monotonic() < deadline:
                self._cond.wait(0.05)
            left = list(self._outstanding)
            self._outstanding.clear()
            self._held_bytes = 0
            self._nacks.extend(left)
        if left:
            log.warning("stopping: %d messages were still being written and are nacked", len(left))
        self._send()


def _published(message: Any) -> datetime | None:
    """The message's publish time (the same on every redelivery), if the server sent one."""
    if not message.message._pb.HasField("publish_time"):
        return None
    published: datetime = message.message.publish_time
    return published


def serve(subscription: str, handle: HandleBatch, ack_deadline: int) -> None:
    """Run a worker until SIGTERM or SIGINT, as Cloud Run and devstack stop it."""
    worker = PullWorker(subscription, handle, ack_deadline=ack_deadline)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop.set())
    worker.run()
    log.info("stopped: %d acked, %d nacked", worker.acked, worker.nacked)
