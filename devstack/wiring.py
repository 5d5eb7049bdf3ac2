"""Create the topics and subscriptions that devgem.topology declares, on the Pub/Sub emulator.

Terraform declares the same in production (tests/infra checks it against the same topology).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
from google.protobuf import duration_pb2

from devgem import topology


def create_topology(project: str, endpoints: Mapping[str, str]) -> None:
    """`endpoints` maps an event function's name to the URL its push subscription delivers to."""
    publisher = PublisherClient()
    subscriber = SubscriberClient()
    for topic in (*topology.TOPICS, *topology.dead_letter_topics()):
        with contextlib.suppress(gexc.AlreadyExists):
            publisher.create_topic(name=publisher.topic_path(project, topic))
    for fn in topology.event_functions():
        assert fn.trigger_topic and fn.subscription and fn.dead_letter_topic
        _subscription(
            subscriber,
            name=subscriber.subscription_path(project, fn.subscription),
            topic=publisher.topic_path(project, fn.trigger_topic),
            push_endpoint=endpoints[fn.name],
            dead_letter_topic=publisher.topic_path(project, fn.dead_letter_topic),
        )
    for w in topology.WORKERS:
        _subscription(
            subscriber,
            name=subscriber.subscription_path(project, w.subscription),
            topic=publisher.topic_path(project, w.topic),
            dead_letter_topic=publisher.topic_path(project, w.dead_letter_topic),
            ack_deadline_seconds=w.ack_deadline_seconds,
        )
    for dead_letter_topic in topology.dead_letter_topics():
        _subscription(
            subscriber,
            name=subscriber.subscription_path(project, topology.dead_letter_subscription(dead_letter_topic)),
            topic=publisher.topic_path(project, dead_letter_topic),
        )
    subscriber.close()


def _subscription(
    subscriber: SubscriberClient,
    name: str,
    topic: str,
    push_endpoint: str | None = None,
    dead_letter_topic: str | None = None,
    ack_deadline_seconds: int = topology.ACK_DEADLINE_SECONDS,
) -> None:
    request: dict[str, object] = {
        "name": name,
        "topic": topic,
        "ack_deadline_seconds": ack_deadline_seconds,
    }
    if push_endpoint:
        request["push_config"] = {"push_endpoint": push_endpoint}
    if dead_letter_topic:  # a consumer's subscription (not a hold): failures back off, then dead-letter
        request["retry_policy"] = {
            "minimum_backoff": duration_pb2.Duration(seconds=1),
            "maximum_backoff": duration_pb2.Duration(seconds=60),
        }
        request["dead_letter_policy"] = {
            "dead_letter_topic": dead_letter_topic,
            "max_delivery_attempts": topology.MAX_DELIVERY_ATTEMPTS,
        }
    try:
        subscriber.create_subscription(request=request)
    except gexc.AlreadyExists:
        if push_endpoint:  # a restarted stack may listen on new ports
            subscriber.modify_push_config(
                request={"subscription": name, "push_config": {"push_endpoint": push_endpoint}}
            )
