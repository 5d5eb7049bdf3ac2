"""What every event function does around its use case: unwrap the Pub/Sub message, and turn a
permanently bad message into a record plus an ack, so Pub/Sub never retries it forever.

Any other exception propagates: functions-framework answers 500, Pub/Sub redelivers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from cloudevents.http import CloudEvent

from devgem.adapters import pubsub, store
from devgem.adapters.firestore_client import client
from devgem.domain.errors import InvalidEvent, InvalidInput

log = logging.getLogger(__name__)


def run(source: str, event: CloudEvent, use_case: Callable[[pubsub.PubSubMessage], str]) -> str:
    message: pubsub.PubSubMessage | None = None
    try:
        message = pubsub.message_from_cloudevent(event.data)
        outcome = use_case(message)
    except (InvalidEvent, InvalidInput) as exc:  # bad input in a message is a bad message
        log.warning("%s: rejected message: %s", source, exc)
        store.record_rejected_event(client(), source, str(exc), _raw(event, message))
        return f"rejected: {exc}"
    log.info("%s: %s", source, outcome)
    return outcome


def _raw(event: CloudEvent, message: pubsub.PubSubMessage | None) -> bytes | str:
    """What a person needs to see: the decoded message and its attributes, else the whole event."""
    if message is not None:
        return json.dumps(message.attributes).encode() + b" " + message.data
    try:
        return json.dumps(event.data)[:10_000]
    except (TypeError, ValueError):
        return repr(event.data)[:10_000]
