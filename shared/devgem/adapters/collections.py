"""Every Firestore collection name, in one place. Every document carries `tenantId`.

The README's "How events flow" table names these as the documents each consumer writes, and
terraform/modules/firestore declares their indexes and TTL fields.
"""

APPS = "apps"  # apps/{app}: repo, branch, service name, URL, live release
DEPLOYMENTS = "deployments"  # deployments/{d}: one deploy, its status and stage times
LOGS = "logs"  # apps/{app}/logs/{chunk}: write-once batches of log lines
SERVICE_NAMES = "serviceNames"  # serviceNames/{service}: a Cloud Run service name's owner, unique across tenants
LEDGER = "ledger"  # ledger/{sha256(key)}: what a handler already did, keyed on what a message is about
REJECTED_EVENTS = "rejectedEvents"  # rejectedEvents/{auto}: a permanently bad message, kept for a human
LOG_REJECTIONS = "logRejections"  # logRejections/{minute}-{writer}: counts of bad log entries
TENANTS = "tenants"  # tenants/{t}: a tenant's own settings, in subcollections below
INTEGRATIONS = "integrations"  # tenants/{t}/integrations/slack: channel and the bot token's secret reference
SLACK_USERS = "slackUsers"  # tenants/{t}/slackUsers/{slackUserId}: which Devgem user a Slack user is
INCIDENTS = (
    "incidents"  # incidents/{sha(app, fingerprint)}: one crash of one app, grouped; /signals/{flush}: its insertIds
)
