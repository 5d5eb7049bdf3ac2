# Topics, push subscriptions (event functions) and pull subscriptions (workers)
# with dead-letter policies, and a pull "hold" subscription on each
# dead-letter topic.
#
# Event functions are deployed as gen2 functions without an Eventarc trigger:
# an Eventarc trigger would create its own push subscription, which we could
# not give a dead-letter topic. Instead each subscription below pushes the raw
# Pub/Sub body to the function's URL with an OIDC token, and functions-framework
# turns that body into a CloudEvent for the @cloud_event entry point.

locals {
  pubsub_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  retention    = "604800s" # 7 days, the longest a subscription keeps unacked messages
}

resource "google_pubsub_topic" "topic" {
  for_each = toset(var.topics)

  project                    = var.project
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = local.retention
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = toset(var.dead_letter_topics)

  project                    = var.project
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = local.retention
}

resource "google_pubsub_subscription" "push" {
  for_each = var.push_subscriptions

  project                    = var.project
  name                       = each.key
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = local.retention

  push_config {
    push_endpoint = each.value.push_endpoint
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = each.value.push_endpoint
    }
    # No no_wrapper block: functions-framework needs the wrapped push body
    # ({"message": ..., "subscription": ...}) to build the CloudEvent.
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Retry on failure: a 5xx/429 or a timeout nacks; redelivery backs off.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never expire for inactivity
  }
}

# A worker (a Cloud Run worker pool, modules/workers) pulls these in batches
# and acknowledges a batch once its lines are committed to Firestore: one Pull
# request carries up to ~1,000 messages, where a push subscription would make
# one HTTP request per message. The ack deadline is the worker's own and short
# (it acks within ~100 ms of a commit; the deadline only matters when an
# instance dies holding messages), and redelivery backs off briefly: a nacked
# line should come back within seconds, not minutes.
resource "google_pubsub_subscription" "pull" {
  for_each = var.pull_subscriptions

  project                      = var.project
  name                         = each.key
  topic                        = google_pubsub_topic.topic[each.value.topic].id
  labels                       = var.labels
  ack_deadline_seconds         = each.value.ack_deadline_seconds
  message_retention_duration   = local.retention
  enable_exactly_once_delivery = false # duplicates are settled by insertId; exactly-once's slower, confirmed acks buy nothing here

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # A nack or an expired deadline redelivers after 1 s, backing off to at most 60 s.
  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  expiration_policy {
    ttl = "" # never expire for inactivity (a pool scaled to 0 must not lose its subscription)
  }
}

resource "google_pubsub_subscription" "hold" {
  for_each = var.hold_subscriptions

  project                    = var.project
  name                       = each.key
  topic                      = google_pubsub_topic.dead_letter[each.value.topic].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = local.retention

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it must publish to the
# dead-letter topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = google_pubsub_topic.dead_letter

  project = var.project
  topic   = each.value.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = merge(google_pubsub_subscription.push, google_pubsub_subscription.pull)

  project      = var.project
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The service agent mints the OIDC tokens of push requests as this account.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = "projects/${var.project}/serviceAccounts/${var.push_service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
