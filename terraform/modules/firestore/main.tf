# The Firestore database, the indexes the queries need, what must not be
# indexed, the TTL policies, and the client security rules.

resource "google_firestore_database" "db" {
  project                           = var.project
  name                              = "(default)"
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "DELETE" # honoured only once delete_protection is off
}

locals {
  # collection => ordered fields. Every query is scoped to one tenant first,
  # which is also what the security rules demand of a client query.
  composite_indexes = {
    # An app's deployment history, newest first.
    deployments_by_app = {
      collection = "deployments"
      fields     = [["tenantId", "ASCENDING"], ["appId", "ASCENDING"], ["createdAt", "DESCENDING"]]
    }
    # A tenant's apps, newest first.
    apps_by_tenant = {
      collection = "apps"
      fields     = [["tenantId", "ASCENDING"], ["createdAt", "DESCENDING"]]
    }
    # apps/{app}/logs/{chunk}: one deployment's chunks in chunk-id order ...
    logs_by_deployment = {
      collection = "logs"
      fields     = [["tenantId", "ASCENDING"], ["deploymentId", "ASCENDING"], ["__name__", "ASCENDING"]]
    }
    # ... and the newest chunks first, for a tail.
    logs_tail = {
      collection = "logs"
      fields     = [["tenantId", "ASCENDING"], ["__name__", "DESCENDING"]]
    }
  }

  # collection group => field with a TTL policy. TTL fields are also kept out
  # of the indexes: an indexed, increasing timestamp caps a collection at
  # about 500 writes/s.
  ttl_fields = {
    logs           = "expireAt" # log chunks
    ledger         = "expireAt" # the idempotency ledger
    rejectedEvents = "expireAt" # permanently bad messages, kept for a human for a while
    signals        = "expireAt" # incidents/{i}/signals: the insertIds an incident counted
  }

  # collection group => field never queried and too large to index usefully.
  unindexed_fields = {
    logs           = "lines" # the lines of a log chunk
    rejectedEvents = "raw"   # the raw message, up to 10,000 characters
    signals        = "ids"   # an incident's counted insertIds, up to thousands a document
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  project     = var.project
  database    = google_firestore_database.db.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# Indexing these would cost an index entry per value (per line, for a log
# chunk) and buys nothing: they are read with their document, never queried.
resource "google_firestore_field" "unindexed" {
  for_each = local.unindexed_fields

  project    = var.project
  database   = google_firestore_database.db.name
  collection = each.key
  field      = each.value

  index_config {}
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_fields

  project    = var.project
  database   = google_firestore_database.db.name
  collection = each.key
  field      = each.value

  index_config {}
  ttl_config {}
}

resource "google_firebaserules_ruleset" "firestore" {
  project = var.project

  source {
    files {
      name    = "firestore.rules"
      content = file(var.rules_file)
    }
  }

  depends_on = [google_firestore_database.db]

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project
  name         = "cloud.firestore"
  ruleset_name = "projects/${var.project}/rulesets/${google_firebaserules_ruleset.firestore.name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}
