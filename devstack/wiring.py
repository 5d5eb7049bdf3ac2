"""Create the topics and subscriptions that devgem.topology declares, on the Pub/Sub emulator.

Terraform declares the same in production (tests/infra checks it against the same topology).

One local difference, on purpose: the workers' pull subscriptions get no retry policy here (see
PULL_RETRY_POLICY_ON_EMULATOR).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
from google.protobuf import duration_pb2

from devgem import topology

# The Pub/Sub emulator (cloud-pubsub-emulator 0.8.20) drops messages from a pull subscription that has
# a retry policy when the consumer holding them dies: with a stub consumer that records what it is
# handed, 4,000 messages at 200/s and the consumer killed -9 at +8 s and +18 s, 9 and 18 consecutive
# messages (those it held at the first kill) never came back with the retry policy (and the dead-letter
# policy), 0 of 4,000 in each run with the dead-letter policy alone (docs/logs.md, "What the local
# emulators do"). So locally a worker's pull subscription keeps its dead-letter policy (which is also
# what makes Pub/Sub count delivery attempts) but has no retry policy: a nack comes back at once
# instead of after 1 to 60 s. Production keeps the retry policy (terraform; tests/infra checks it).
PULL_RETRY_POLICY_ON_EMULATOR = False


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
            retry_policy=PULL_RETRY_POLICY_ON_EMULATOR,
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
    retry_policy: bool = True,
) -> None:
    request: dict[str, object] = {
        "name": name,
        "topic": topic,
        "ack_deadline_seconds": ack_deadline_seconds,
    }
    if push_endpoint:
        request["push_config"] = {"push_endpoint": push_endpoint}
    if dead_letter_topic:  # a consumer's subscription (not a hold): failures back off, then dead-letter
        if retry_policy:
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
