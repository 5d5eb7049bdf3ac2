"""Telling people about an incident: the tenant's Slack channel, and always the platform's log.

Opened: one Slack message saying what crashed, with a "Roll back to <the release before>" button and
a "View logs" link; its thread is kept on the incident. Escalated (a single crash became a loop, or it
came back after the cool-down): a reply in that thread, so a crash loop is one conversation, not a
channel full of alerts. A tenant without Slack configured gets the log line only. The log line carries
the fingerprint and counts, never the crash's text: an app's output may hold its secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from devgem.adapters.collections import INCIDENTS
from devgem.adapters.deployments import FirestoreDeployments
from devgem.adapters.slack import IncidentNotice, SlackNotifier, SlackThread
from devgem.adapters.store import FirestoreApps
from devgem.domain import rollback
from devgem.domain.deployment import Deployment
from devgem.domain.errors import DevgemError, NotFound
from devgem.domain.incidents import Incident

log = logging.getLogger(__name__)


class LogNotifier:
    def incident_opened(self, incident: Incident) -> None:
        log.warning(
            "incident %s opened: app %s, %s, %d signals",
            incident.id,
            incident.app_id,
            incident.fingerprint,
            incident.count,
        )

    def incident_escalated(self, incident: Incident) -> None:
        kind = incident.pending.kind if incident.pending else "escalated"
        log.warning(
            "incident %s %s: app %s, %s, %d signals",
            incident.id,
            kind,
            incident.app_id,
            incident.fingerprint,
            incident.count,
        )


class SlackAlerts(LogNotifier):
    def __init__(self, slack: SlackNotifier, db: Callable[[], firestore.Client], logs_url_template: str) -> None:
        self._slack = slack
        self._db = db
        self._apps = FirestoreApps(db)
        self._deployments = FirestoreDeployments(db)
        self._logs_url_template = logs_url_template  # "{app}" is replaced

    def incident_opened(self, incident: Incident) -> None:
        super().incident_opened(incident)
        self._post(incident)

    def incident_escalated(self, incident: Incident) -> None:
        super().incident_escalated(incident)
        thread = self._thread(incident.id)
        if thread is None:  # opened before Slack was configured, or its post failed: start the thread now
            self._post(incident)
            return
        kind = incident.pending.kind if incident.pending else "escalated"
        text = f"{kind}: {incident.count} crashes ({incident.fingerprint}) since {incident.first_seen:%H:%M:%S} UTC"
        self._slack.reply(incident.tenant_id, thread, text)

    def _post(self, incident: Incident) -> None:
        try:
            app = self._apps.get(incident.tenant_id, incident.app_id)
        except NotFound:
            return  # the app is gone: nobody to tell
        target = self._rollback_target(app, incident)
        name = str(app.get("name") or incident.app_id)
        notice = IncidentNotice(
            tenant_id=incident.tenant_id,
            app_id=incident.app_id,
            app_name=name,
            title=f"{name} crashed ({incident.fingerprint})",
            what_crashed="\n".join([*incident.context[-5:], incident.first_text] if incident.first_text else ["?"]),
            logs_url=self._logs_url_template.format(app=incident.app_id),
            rollback_to=target.id if target else None,
            rollback_label=f"{target.id} ({target.revision})" if target else "",
        )
        try:
            thread = self._slack.post_incident(notice)
        except NotFound:  # this tenant has no Slack channel: the log line is all
            return
        ref = self._db().collection(INCIDENTS).document(incident.id)
        ref.update({"slackThread": {"channel": thread.channel, "ts": thread.ts}})

    def _rollback_target(self, app: dict[str, Any], incident: Incident) -> Deployment | None:
        try:
            return rollback.pick_target(app, self._deployments.of_app(incident.tenant_id, incident.app_id), None)
        except DevgemError:  # nothing earlier to go back to: no button
            return None

    def _thread(self, incident_id: str) -> SlackThread | None:
        snap = self._db().collection(INCIDENTS).document(incident_id).get()
        thread = (snap.to_dict() or {}).get("slackThread") if snap.exists else None
        return SlackThread(str(thread["channel"]), str(thread["ts"])) if thread else None
