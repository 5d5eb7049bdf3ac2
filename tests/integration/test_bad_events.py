"""Permanently bad messages are recorded in rejectedEvents and acknowledged: never retried forever,
never crashing a function, never changing state."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable

import pytest
import requests

from devgem import clock, topology
from devgem.adapters import collections, pubsub, store
from devgem.adapters.firestore_client import client
from devstack.stack import PROJECT, Stack
from tests.waiting import wait_for


def _rejections(marker: str) -> list[dict[str, object]]:
    docs = client().collection(collections.REJECTED_EVENTS).stream()
    return [d.to_dict() or {} for d in docs if marker in str((d.to_dict() or {}).get("raw", ""))]


def _wait_rejected(marker: str) -> dict[str, object]:
    return wait_for(lambda: _rejections(marker), f"a rejectedEvents record for {marker}")[0]


def _push(stack: Stack, topic: str, data: bytes, attributes: dict[str, str]) -> int:
    """Deliver a message to the topic's function as the emulator's push does; the status is what
    Pub/Sub sees: 2xx acks the message, anything else has it redelivered."""
    (fn,) = [f for f in topology.event_functions() if f.trigger_topic == topic]
    body = {
        "message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": _marker()},
        "subscription": f"projects/{PROJECT}/subscriptions/{fn.subscription}",
    }
    return requests.post(stack.function_url(fn.name), json=body, timeout=30).status_code


def _marker() -> str:
    return uuid.uuid4().hex


CASES = [
    (topology.DEPLOY_REQUESTED, lambda m: f"not json {m}".encode(), {}, "not JSON"),
    (topology.DEPLOY_REQUESTED, lambda m: json.dumps([m]).encode(), {}, "not an object"),
    (topology.DEPLOY_REQUESTED, lambda m: json.dumps({"note": m}).encode(), {}, "no deploymentId"),
    (
        topology.DEPLOY_REQUESTED,
        lambda m: json.dumps({"deploymentId": "../../etc", "tenantId": "t", "note": m}).encode(),
        {},
        "not a valid id",
    ),
    (
        topology.DEPLOY_REQUESTED,
        lambda m: json.dumps({"deploymentId": "ffffffffffff", "tenantId": "t", "note": m}).encode(),
        {},
        "does not exist",
    ),
    (topology.CLOUD_BUILDS, lambda m: json.dumps({"id": m}).encode(), {}, "no valid buildId/status"),
    (topology.CLOUD_BUILDS, lambda m: json.dumps({"id": m}).encode(), {"buildId": "b", "status": "EXPLODED"}, "status"),
    (topology.CLOUD_BUILDS, lambda m: f"garbage {m}".encode(), {"buildId": "b", "status": "SUCCESS"}, "not a Build"),
    (
        topology.CLOUD_BUILDS,
        lambda m: json.dumps({"id": m, "tags": ["devgem", "dep-ffffffffffff"]}).encode(),
        {"buildId": "b", "status": "SUCCESS"},
        "does not exist",
    ),
]


@pytest.mark.parametrize(("topic", "make", "attributes", "reason"), CASES)
def test_a_bad_message_is_recorded_once_and_acknowledged(
    stack: Stack,
    topic: str,
    make: Callable[[str], bytes],
    attributes: dict[str, str],
    reason: str,
) -> None:
    marker = _marker()
    pubsub.publish_raw(topic, make(marker), **attributes)
    record = _wait_rejected(marker)
    assert reason in str(record["reason"])
    # The evidence that it was acknowledged: the same message pushed directly is answered 2xx, so
    # Pub/Sub has nothing to redeliver and the one record stays one.
    again = _marker()
    assert 200 <= _push(stack, topic, make(again), attributes) < 300
    assert len(_rejections(again)) == 1
    assert len(_rejections(marker)) == 1


def test_an_oversized_message_is_recorded_truncated(stack: Stack) -> None:
    marker = _marker()
    pubsub.publish_raw(topology.DEPLOY_REQUESTED, (marker + "x" * 300_000).encode())
    record = _wait_rejected(marker)
    assert record["rawBytes"] and len(str(record["raw"])) <= 10_000


def test_a_forged_tenant_cannot_start_another_tenants_deployment(stack: Stack) -> None:
    deployment_id = clock.new_id()
    ref = store.deployment_ref(client(), deployment_id)
    ref.set({"tenantId": "victim", "appId": "a", "status": "queued", "createdAt": clock.now()})
    marker = _marker()
    forged = {"deploymentId": deployment_id, "tenantId": "attacker", "note": marker}
    pubsub.publish(topology.DEPLOY_REQUESTED, forged)
    record = _wait_rejected(marker)
    assert "does not belong" in str(record["reason"])
    assert (ref.get().to_dict() or {})["status"] == "queued"


def test_a_build_that_is_not_devgems_is_acknowledged_and_ignored(stack: Stack) -> None:
    log = stack.children["build_finished"].log_path
    ignored = "ignored: not a Devgem build"
    before = log.read_text(errors="replace").count(ignored)  # earlier tests may have sent foreign builds
    marker = _marker()
    pubsub.publish_raw(
        topology.CLOUD_BUILDS, json.dumps({"id": marker, "tags": ["other"]}).encode(), buildId=marker, status="SUCCESS"
    )
    wait_for(lambda: log.read_text(errors="replace").count(ignored) > before, "build_finished to handle it")
    assert _rejections(marker) == []
