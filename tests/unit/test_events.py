"""The Pub/Sub message inside a CloudEvent: what a malformed one gets (InvalidEvent, never a crash)."""

import base64
import json

import pytest

from devgem.adapters.pubsub import message_from_cloudevent
from devgem.domain.errors import InvalidEvent


def _push(data: bytes, **attributes: str) -> dict[str, object]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": "42",
            "publishTime": "2026-11-26T10:00:00.123Z",
        }
    }


def test_reads_data_attributes_and_time() -> None:
    message = message_from_cloudevent(_push(b'{"a": 1}', buildId="b1", status="SUCCESS"))
    assert message.json() == {"a": 1}
    assert message.attributes == {"buildId": "b1", "status": "SUCCESS"}
    assert message.message_id == "42"
    assert message.publish_time is not None and message.publish_time.year == 2026


@pytest.mark.parametrize(
    "data",
    [None, "text", [], {}, {"message": "x"}, {"message": {"data": "!!!not base64"}}, {"message": {"data": 5}}],
)
def test_malformed_envelopes_are_invalid_events(data: object) -> None:
    with pytest.raises(InvalidEvent):
        message_from_cloudevent(data)


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1, 2]", b'"string"'])
def test_non_object_data_is_an_invalid_event(payload: bytes) -> None:
    with pytest.raises(InvalidEvent):
        message_from_cloudevent(_push(payload)).json()


def test_attributes_must_be_strings() -> None:
    envelope = _push(json.dumps({}).encode())
    envelope["message"]["attributes"] = {"n": 1}  # type: ignore[index]
    with pytest.raises(InvalidEvent, match="attributes"):
        message_from_cloudevent(envelope)
