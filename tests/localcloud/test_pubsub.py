"""The publisher never raises or blocks, even when a topic is missing."""

from __future__ import annotations

import logging

import pytest

from localcloud.pubsub import Publisher
from tests.localcloud.conftest import PROJECT, PubSub


def test_missing_topic_is_a_warning(needs_pubsub: PubSub, caplog: pytest.LogCaptureFixture) -> None:
    publisher = Publisher(PROJECT, needs_pubsub.host)
    publisher.start()
    with caplog.at_level(logging.WARNING, logger="localcloud.pubsub"):
        for i in range(1000):
            publisher.publish("no-such-topic", b"x%d" % i, {"k": "v"})
        publisher.close()
    warnings = [r.getMessage() for r in caplog.records if "no-such-topic does not exist" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, not one per message


def test_disabled_without_emulator(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="localcloud.pubsub"):
        publisher = Publisher(PROJECT, "")
        publisher.start()
        publisher.publish("cloud-builds", b"{}")
        publisher.close()
    # One warning says nothing is published; publishing itself neither raised nor complained.
    assert [r.getMessage() for r in caplog.records] == [
        "PUBSUB_EMULATOR_HOST is not set: nothing will be published to Pub/Sub"
    ]
