"""The event topology, declared once.

The local stack creates its topics and subscriptions from this module, and a test checks that
terraform/ declares exactly the same topics, subscriptions, function entry points and workers.

Two kinds of consumer. A Function gets its events pushed, one message a request: right for a few
deploy and build events. A Worker pulls its subscription in batches and acks a batch at once: right
for log-entry, where one app may write 3,000 lines a second (see docs/logs.md for the measurements
behind that choice).
"""

from __future__ import annotations

from dataclasses import dataclass

DEPLOY_REQUESTED = "deploy-requested"
CLOUD_BUILDS = "cloud-builds"  # Cloud Build's own notification topic; its name is fixed by Google.
LOG_ENTRY = "log-entry"
CRASH_DETECTED = "crash-detected"

MAX_DELIVERY_ATTEMPTS = 5
ACK_DEADLINE_SECONDS = 600  # above the 540 s event-function timeout, so a slow handler is not redelivered early


@dataclass(frozen=True)
class Function:
    """A Cloud Functions entry point in functions/main.py."""

    name: str  # deployed function name and the Python entry point
    trigger_topic: str | None  # None: an HTTP function
    # An HTTP function called on a schedule: Cloud Scheduler's cron in production; devstack calls it
    # every `local_every_seconds` instead, so a local stack recovers in seconds rather than a minute.
    schedule: str | None = None
    local_every_seconds: float = 0

    @property
    def subscription(self) -> str | None:
        return f"{self.name.replace('_', '-')}-push" if self.trigger_topic else None

    @property
    def dead_letter_topic(self) -> str | None:
        return f"{self.subscription}-dead-letter" if self.trigger_topic else None


@dataclass(frozen=True)
class Worker:
    """A pull consumer in functions/workers.py: a Cloud Run worker pool in production, a process locally."""

    name: str  # deployed name (with dashes) and the Python entry point
    topic: str
    # Short, as the worker extends the leases of what it holds: a worker that dies holding messages
    # delays them by this much.
    ack_deadline_seconds: int

    @property
    def subscription(self) -> str:
        return f"{self.name.replace('_', '-')}-pull"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.subscription}-dead-letter"


FUNCTIONS: tuple[Function, ...] = (
    Function("api", None),
    Function("deploy_requested", DEPLOY_REQUESTED),
    Function("build_finished", CLOUD_BUILDS),
    # Re-drives deployments whose events were lost, and fails those past their deadline.
    Function("watchdog", None, schedule="* * * * *", local_every_seconds=5),
    # Slack's interactivity requests (the incident message's "Roll back" button); public, signed by Slack.
    Function("slack_actions", None),
)

WORKERS: tuple[Worker, ...] = (
    Worker("log_entry", LOG_ENTRY, ack_deadline_seconds=10),
    # Pulled, not pushed: a crash loop sends ~1,000 signals a second to one incident document, which
    # takes about one write a second; a worker gathers them and writes each incident once a second.
    Worker("crash_detected", CRASH_DETECTED, ack_deadline_seconds=10),
)

TOPICS: tuple[str, ...] = (DEPLOY_REQUESTED, CLOUD_BUILDS, LOG_ENTRY, CRASH_DETECTED)


def event_functions() -> tuple[Function, ...]:
    return tuple(f for f in FUNCTIONS if f.trigger_topic)


def dead_letter_topics() -> tuple[str, ...]:
    pushed = tuple(f.dead_letter_topic for f in event_functions() if f.dead_letter_topic)
    return pushed + tuple(w.dead_letter_topic for w in WORKERS)


def dead_letter_subscription(dead_letter_topic: str) -> str:
    """A pull subscription on every dead-letter topic, so a dead-lettered message is kept, not dropped."""
    return f"{dead_letter_topic}-hold"


def scheduled_functions() -> tuple[Function, ...]:
    return tuple(f for f in FUNCTIONS if f.schedule)


def function(name: str) -> Function:
    for f in FUNCTIONS:
        if f.name == name:
            return f
    raise KeyError(name)


def worker(name: str) -> Worker:
    for w in WORKERS:
        if w.name == name:
            return w
    raise KeyError(name)
