"""Cloud Functions entry points. Each is thin: parse, call one use case, return.

The names here are the entry points declared in devgem.topology (a test checks they match).
"""

from __future__ import annotations

import logging

import flask
import functions_framework
from cloudevents.http import CloudEvent

from devgem import bootstrap
from devgem.entrypoints import http_api, pubsub_push
from devgem.entrypoints import slack_actions as slack_actions_entry

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
bootstrap.warm_in_background()  # an instance's first event should not pay for creating clients


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    return http_api.handle(request)


@functions_framework.cloud_event
def deploy_requested(event: CloudEvent) -> None:
    # Idempotent: the deployment is claimed by a guarded write and the build is found by its tag.
    pubsub_push.run("deploy_requested", event, bootstrap.start_build().handle)


@functions_framework.cloud_event
def build_finished(event: CloudEvent) -> None:
    # Idempotent: states only move forward, the revision is named after the deployment, and going
    # live is recorded in the ledger in the same atomic write.
    pubsub_push.run("build_finished", event, bootstrap.follow_build().handle)


@functions_framework.http
def watchdog(request: flask.Request) -> flask.Response:
    # Idempotent: each re-drive is marked on the deployment by a guarded write before it runs.
    return flask.jsonify(bootstrap.watch_deployments().handle())


@functions_framework.http
def slack_actions(request: flask.Request) -> flask.Response:
    # Refuses unsigned and replayed requests before reading them; the rollback itself is idempotent.
    return slack_actions_entry.handle(request, bootstrap.slack_signing_secret, bootstrap.slack_action)
