"""The publisher never raises or blocks, even when a topic is missing."""

from __future__ import annotations

import logging
import time

import pytest

from localcloud.pubsub import Publisher
from tests.localcloud.conftest import PROJECT, PubSub


def test_missing_topic_is_a_warning(needs_pubsub: PubSub, caplog: pytest.LogCaptureFixture) -> None:
    publisher = Publisher(PROJECT, needs_pubsub.host)
    publisher.start()
    with caplog.at_level(logging.WARNING, logger="localcloud.pubsub"):
        started = time.monotonic()
        for i in range(1000):
            publisher.publish("no-such-topic", b"x%d" % i, {"k": "v"})
        assert time.monotonic() - started < 1
        publisher.close()
    warnings = [r.getMessage() for r in caplog.records if "no-such-topic does not exist" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, not one per message


def test_disabled_without_emulator() -> None:
    publisher = Publisher(PROJECT, "")
    publisher.start()
    publisher.publish("cloud-builds", b"{}")
    publisher.close()
