"""Grouping signals into incidents, notifying once, cool-down, escalation and redelivery, with fakes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from devgem.domain import incidents as rules
from devgem.domain.errors import InvalidEvent
from devgem.domain.incidents import Incident, Signal, apply_signals, incident_id
from devgem.logs.chunks import Target
from devgem.logs.crash import signal_of
from devgem.logs.routing import LineRouter
from devgem.usecases.detect_crash import DetectCrash

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def signal(n: int, at: datetime = T0, fp: str = "exit:3", app: str = "app1") -> Signal:
    return Signal(f"id-{n}", at, "t1", app, fp, "shop-abc", "abc", "Container called exit(3).")


class FakeIncidents:
    def __init__(self) -> None:
        self.docs: dict[str, Incident] = {}
        self.signal_ids: list[tuple[datetime, set[str]]] = []
        self.writes = 0
        self.fail_next = False
        self.lock = threading.Lock()

    def get(self, incident_id: str) -> Incident | None:
        return self.docs.get(incident_id)

    def record(
        self, incident_id: str, decide: Callable[[Incident | None], Incident], insert_ids: Sequence[str]
    ) -> Incident:
        with self.lock:
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("Firestore unavailable")
            decided = decide(self.docs.get(incident_id))
            self.docs[incident_id] = decided
            self.signal_ids.append((T0, set(insert_ids)))
            self.writes += 1
            return decided

    def stored_ids(self, incident_id: str, since: datetime) -> set[str]:
        return set().union(*(ids for _, ids in self.signal_ids)) if self.signal_ids else set()

    def change(self, incident_id: str, decide: Callable[[Incident], Incident | None]) -> Incident | None:
        with self.lock:
            current = self.docs.get(incident_id)
            if current is None:
                return None
            decided = decide(current)
            if decided is not None:
                self.docs[incident_id] = decided
                self.writes += 1
            return decided or current


@dataclass
class FakeNotifier:
    sent: list[tuple[str, str, int]] = field(default_factory=list)
    fail: bool = False

    def incident_opened(self, incident: Incident) -> None:
        self._send("opened", incident)

    def incident_escalated(self, incident: Incident) -> None:
        assert incident.pending is not None
        self._send(incident.pending.kind, incident)

    def _send(self, kind: str, incident: Incident) -> None:
        if self.fail:
            raise RuntimeError("Slack is down")
        self.sent.append((kind, incident.fingerprint, incident.count))


class FakeContext:
    def lines_before(self, tenant_id: str, app_id: str, at: datetime, limit: int) -> list[str]:
        return [f"line {i}" for i in range(limit)]


@dataclass(frozen=True)
class Msg:
    data: bytes
    redelivered: bool = False
    published: datetime | None = None


def use_case(store: FakeIncidents, notifier: FakeNotifier, clock: list[float]) -> DetectCrash:
    signals = {f"id-{n}".encode(): signal(n) for n in range(5000)}

    def to_signal(data: bytes) -> Signal:
        if data == b"bad":
            raise InvalidEvent("not a crash signal")
        return signals[data]

    return DetectCrash(
        store, notifier, FakeContext(), to_signal, now=lambda: T0, monotonic=lambda: clock[0], background=False
    )


def drain(uc: DetectCrash) -> None:
    for key, items in uc.due():
        uc.flush(key, items)


def msgs(ns: range, redelivered: bool = False) -> list[Msg]:
    return [Msg(f"id-{n}".encode(), redelivered, T0) for n in ns]


def test_a_crash_loop_is_one_incident_written_once_per_flush_and_notified_once() -> None:
    store, notifier, clock = FakeIncidents(), FakeNotifier(), [0.0]
    uc = use_case(store, notifier, clock)
    futures = uc.accept_batch(msgs(range(1)))
    drain(uc)
    assert futures[0].result() == "counted"
    for second in range(1, 4):  # 1,000 signals a second, in batches of 100, for 3 s
        for batch in range(10):
            start = 1 + (second - 1) * 1000 + batch * 100
            uc.accept_batch(msgs(range(start, start + 100)))
            clock[0] = second - 1 + batch / 10 + 0.05
            drain(uc)
        clock[0] = second + 0.01
        drain(uc)
    clock[0] = 10
    drain(uc)
    (incident,) = store.docs.values()
    assert incident.count == 3001
    assert store.writes <= 4 + 2  # one record per second (plus the first) and two "sent" marks
    assert [kind for kind, _, _ in notifier.sent] == ["opened", "escalated"]  # single crash -> crash loop


def test_redelivered_signals_are_not_counted_twice() -> None:
    store, notifier, clock = FakeIncidents(), FakeNotifier(), [0.0]
    uc = use_case(store, notifier, clock)
    uc.accept_batch(msgs(range(10)))
    drain(uc)
    restarted = use_case(store, notifier, clock)  # a new instance remembers nothing
    futures = restarted.accept_batch(msgs(range(5, 15), redelivered=True))
    drain(restarted)
    assert [f.result() for f in futures] == ["duplicate"] * 5 + ["counted"] * 5
    assert next(iter(store.docs.values())).count == 15
    assert len(notifier.sent) == 1


def test_a_notice_lost_to_a_crash_is_sent_by_the_redelivery() -> None:
    store, notifier, clock = FakeIncidents(), FakeNotifier(fail=True), [0.0]
    uc = use_case(store, notifier, clock)
    futures = uc.accept_batch(msgs(range(3)))
    drain(uc)
    assert all(f.exception() for f in futures)  # nacked: the notice is still pending on the incident
    assert next(iter(store.docs.values())).pending is not None
    notifier.fail = False
    again = use_case(store, notifier, clock)
    futures = again.accept_batch(msgs(range(3), redelivered=True))
    drain(again)
    assert [f.result() for f in futures] == ["duplicate"] * 3
    assert len(notifier.sent) == 1
    assert next(iter(store.docs.values())).pending is None
    drain(again)
    assert len(notifier.sent) == 1


def test_a_failed_write_fails_the_signals_so_they_are_retried() -> None:
    store, notifier, clock = FakeIncidents(), FakeNotifier(), [0.0]
    uc = use_case(store, notifier, clock)
    store.fail_next = True
    futures = uc.accept_batch(msgs(range(2)))
    drain(uc)
    assert all(f.exception() for f in futures)
    assert store.docs == {}


def test_bad_messages_are_rejected_not_retried() -> None:
    uc = use_case(FakeIncidents(), FakeNotifier(), [0.0])
    (future,) = uc.accept_batch([Msg(b"bad")])
    assert future.result().startswith("rejected")


def test_two_fingerprints_of_one_app_are_two_incidents() -> None:
    a = apply_signals(None, [signal(1)], T0)
    b = apply_signals(None, [signal(2, fp="python:KeyError@app.py:index")], T0)
    assert a.id != b.id
    assert a.id == incident_id("app1", "exit:3")


def test_cool_down_then_a_reminder() -> None:
    opened = apply_signals(None, [signal(1)], T0)
    assert opened.pending is not None and opened.pending.kind == rules.OPENED
    sent = rules.notice_sent(opened, opened.pending)
    assert sent is not None
    later = apply_signals(sent, [signal(2, T0 + timedelta(minutes=10))], T0 + timedelta(minutes=10))
    assert later.pending is None  # one more crash ten minutes later: no loop, within the cool-down
    again = apply_signals(later, [signal(3, T0 + timedelta(minutes=31))], T0 + timedelta(minutes=31))
    assert again.pending is not None and again.pending.kind == rules.REMINDER


def test_escalation_is_notified_once_per_occurrence() -> None:
    opened = apply_signals(None, [signal(1)], T0)
    assert opened.pending is not None
    sent = rules.notice_sent(opened, opened.pending)
    assert sent is not None
    loop = apply_signals(sent, [signal(2, T0 + timedelta(seconds=1)), signal(3, T0 + timedelta(seconds=2))], T0)
    assert loop.level == rules.LOOP and loop.pending is not None and loop.pending.kind == rules.ESCALATED
    sent = rules.notice_sent(loop, loop.pending)
    assert sent is not None
    more = apply_signals(sent, [signal(4, T0 + timedelta(seconds=3))], T0 + timedelta(seconds=3))
    assert more.pending is None


def test_a_resolved_incident_that_crashes_again_is_a_new_occurrence() -> None:
    opened = apply_signals(None, [signal(1)], T0)
    resolved = Incident(**{**opened.__dict__, "status": rules.RESOLVED, "pending": None})
    again = apply_signals(resolved, [signal(2, T0 + timedelta(hours=1))], T0 + timedelta(hours=1))
    assert (again.occurrence, again.count, again.status) == (2, 1, rules.OPEN)
    assert again.pending is not None and again.pending.kind == rules.OPENED


@pytest.mark.parametrize("n", [1, 2])
def test_a_single_crash_is_not_a_loop(n: int) -> None:
    assert apply_signals(None, [signal(i, T0 + timedelta(seconds=i)) for i in range(n)], T0).level == rules.SINGLE


def _entry(text: str, labels: dict[str, str] | None = None) -> bytes:
    return json.dumps(
        {
            "insertId": "x1",
            "logName": "projects/p/logs/run.googleapis.com%2Fvarlog%2Fsystem",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {"service_name": "shop", "revision_name": "shop-0123456789ab"},
            },
            "timestamp": "2026-12-01T12:00:00.000000001Z",
            "severity": "ERROR",
            "labels": {"devgem-managed": "true"} if labels is None else labels,
            "textPayload": text,
        }
    ).encode()


def test_a_log_entry_becomes_a_signal_of_its_app_and_deployment() -> None:
    router = LineRouter(service_lookup=lambda service: Target("t1", "app-of-" + service, None))
    s = signal_of(_entry("Container called exit(3)."), router)
    assert (s.tenant_id, s.app_id, s.deployment_id, s.fingerprint) == ("t1", "app-of-shop", "0123456789ab", "exit:3")
    assert s.insert_id == "x1" and s.revision == "shop-0123456789ab"


@pytest.mark.parametrize(
    "data",
    [_entry("Container called exit(0)."), _entry("Container called exit(3).", labels={}), b"not json"],
)
def test_what_the_filter_would_not_select_is_rejected(data: bytes) -> None:
    router = LineRouter(service_lookup=lambda service: Target("t1", "a", None))
    with pytest.raises(InvalidEvent):
        signal_of(data, router)
