"""The composition root: each use case wired to the production adapters, once per process.

Entry points ask here for a use case; tests build the same use cases with in-memory fakes instead.
`warm()` creates the clients when an instance starts, so its first event does not pay for them.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from functools import lru_cache

from devgem import clock
from devgem.adapters import cloud_build, cloud_run, probe, pubsub, secrets
from devgem.adapters.deployments import FirestoreDeployments
from devgem.adapters.firestore_client import client
from devgem.adapters.incidents import FirestoreIncidents
from devgem.adapters.notify import SlackAlerts
from devgem.adapters.slack import FirestoreSlackConfigs, FirestoreSlackUsers, SlackNotifier
from devgem.adapters.store import FirestoreApps
from devgem.config import settings
from devgem.logs.crash import ChunkContext, signal_of
from devgem.logs.routing import LineRouter
from devgem.logs.tail import FirestoreFailingTail
from devgem.usecases.connect_app import ConnectApp
from devgem.usecases.detect_crash import DetectCrash
from devgem.usecases.follow_build import FollowBuild
from devgem.usecases.request_deploy import RequestDeploy
from devgem.usecases.roll_back import RollBack
from devgem.usecases.slack_action import HandleSlackAction
from devgem.usecases.start_build import StartBuild
from devgem.usecases.watch_deployments import WatchDeployments

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def connect_app() -> ConnectApp:
    s = settings()
    return ConnectApp(FirestoreApps(client), s.public_url_template, s.allow_local_repos, s.git_hosts)


@lru_cache(maxsize=1)
def request_deploy() -> RequestDeploy:
    return RequestDeploy(apps=FirestoreApps(client), deployments=FirestoreDeployments(client), publisher=pubsub)


@lru_cache(maxsize=1)
def start_build() -> StartBuild:
    s = settings()
    return StartBuild(
        deployments=FirestoreDeployments(client),
        builds=cloud_build,
        image_template=s.image_template,
        max_event_age=timedelta(seconds=s.max_event_age_seconds),
    )


@lru_cache(maxsize=1)
def follow_build() -> FollowBuild:
    s = settings()
    return FollowBuild(
        deployments=FirestoreDeployments(client),
        builds=cloud_build,
        services=cloud_run,
        probe=probe,
        failing_tail=FirestoreFailingTail(client),
        public_url_template=s.public_url_template,
        probe_timeout_seconds=s.probe_timeout_seconds,
        project=s.project,
    )


@lru_cache(maxsize=1)
def roll_back() -> RollBack:
    s = settings()
    return RollBack(
        deployments=FirestoreDeployments(client),
        apps=FirestoreApps(client),
        services=cloud_run,
        probe=probe,
        public_url_template=s.public_url_template,
        probe_timeout_seconds=s.probe_timeout_seconds,
    )


@lru_cache(maxsize=1)
def watch_deployments() -> WatchDeployments:
    return WatchDeployments(
        deployments=FirestoreDeployments(client), builds=cloud_build, publisher=pubsub, follow_build=follow_build()
    )


@lru_cache(maxsize=1)
def slack_notifier() -> SlackNotifier:
    return SlackNotifier(FirestoreSlackConfigs(client()))


@lru_cache(maxsize=1)
def slack_action() -> HandleSlackAction:
    return HandleSlackAction(users=FirestoreSlackUsers(client()), roll_back=roll_back())


@lru_cache(maxsize=1)
def slack_signing_secret() -> str:
    """Locally the secret itself (devstack); in production the Secret Manager version terraform names."""
    s = settings()
    if s.slack_signing_secret:
        return s.slack_signing_secret
    if s.slack_signing_secret_ref:
        return secrets.version(s.slack_signing_secret_ref)
    raise RuntimeError("no Slack signing secret: set DEVGEM_SLACK_SIGNING_SECRET or DEVGEM_SECRET_SLACK_SIGNING_SECRET")


@lru_cache(maxsize=1)
def detect_crash() -> DetectCrash:
    router = LineRouter()
    return DetectCrash(
        incidents=FirestoreIncidents(client),
        notifier=SlackAlerts(slack_notifier(), client, settings().logs_url_template),
        context=ChunkContext(client),
        to_signal=lambda data: signal_of(data, router),
        now=clock.now,
    )


def warm() -> None:
    """Create every client this process will use (they are cached), so no event pays for it."""
    client()
    pubsub.connect()
    cloud_build.connect()
    cloud_run.connect()


def warm_in_background() -> None:
    """Warm the clients on a side thread when an instance starts: the import stays fast and cannot fail,
    and a client that cannot be made yet is made again, lazily, by the first event that needs it."""

    def run() -> None:
        try:
            warm()
        except Exception:
            log.warning("could not create the clients at start; the first event will", exc_info=True)

    threading.Thread(target=run, name="devgem-warm", daemon=True).start()
