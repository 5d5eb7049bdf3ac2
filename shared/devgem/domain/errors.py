"""The errors use cases raise; each entry point maps them to its own protocol (HTTP status, ack/nack)."""

from __future__ import annotations


class DevgemError(Exception):
    """Base class: the message is written for the user and says what to do."""


class InvalidInput(DevgemError):
    """The caller sent something we will never accept (HTTP 400)."""


class Unauthenticated(DevgemError):
    """No identity, or one we could not verify (HTTP 401)."""


class NotFound(DevgemError):
    """Absent, or owned by another tenant: the two are indistinguishable on purpose (HTTP 404)."""


class Conflict(DevgemError):
    """The request clashes with current state (HTTP 409)."""


class RetryLater(DevgemError):
    """A transient condition: the event handler raises it so Pub/Sub redelivers."""


class InvalidEvent(DevgemError):
    """A message that can never be processed: it is recorded and acknowledged, not retried."""
