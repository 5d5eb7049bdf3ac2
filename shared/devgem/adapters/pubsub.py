"""Publishing to Pub/Sub and reading the Pub/Sub message inside a CloudEvent.

PUBSUB_EMULATOR_HOST, when set, points the same publisher at the emulator.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from google.cloud.pubsub_v1 import PublisherClient

from devgem.config import settings
from devgem.domain.errors import InvalidEvent

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # Pub/Sub's own limit; anything larger is not a real message


@lru_cache(maxsize=1)
def _publisher() -> PublisherClient:
    return PublisherClient()


def publish(topic: str, data: dict[str, Any], **attributes: str) -> str:
    return publish_raw(topic, json.dumps(data).encode(), **attributes)


def publish_raw(topic: str, data: bytes, **attributes: str) -> str:
    """Publish and wait for the server's ack, so a caller that returns has really enqueued."""
    path = _publisher().topic_path(settings().project, topic)
    future = _publisher().publish(path, data, **attributes)
    return str(future.result(timeout=30))


@dataclass(frozen=True)
class PubSubMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: datetime | None

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent(f"message data is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InvalidEvent("message data is JSON but not an object")
        return value


def message_from_cloudevent(data: object) -> PubSubMessage:
    """The CloudEvent data of a Pub/Sub push is {"message": {...}, "subscription": ...}."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise InvalidEvent("event data has no Pub/Sub message")
    message = data["message"]
    raw = message.get("data", "")
    if not isinstance(raw, str) or len(raw) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise InvalidEvent("message data is missing or too large")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidEvent(f"message data is not base64: {exc}") from exc
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise InvalidEvent("message attributes are not a map of strings")
    publish_time = _parse_time(message.get("publishTime") or message.get("publish_time"))
    return PubSubMessage(decoded, dict(attributes), str(message.get("messageId", "")), publish_time)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def connect() -> None:
    """Create the publisher now (an instance's start), not on the first publish."""
    _publisher()
