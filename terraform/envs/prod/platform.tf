# What the functions and workers work with besides Pub/Sub and Firestore: the
# image repositories, secrets, the log sink, and the rights to provision tenants.

resource "google_artifact_registry_repository" "apps" {
  project       = var.project
  location      = var.region
  repository_id = "apps"
  format        = "DOCKER"
  description   = "Images of the apps Devgem builds; a rollback redeploys one of these."
  labels        = var.labels

  # Keep each app's 10 newest images whatever their age (rollback targets);
  # delete the rest after 90 days.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "7776000s"
    }
  }

  depends_on = [google_project_service.api]
}

# Devgem's own images (today the workers' image, docs/deploy.md), apart from
# the apps': tenants' build accounts get write access to `apps`, and must not
# be able to replace an image that runs with the platform's rights.
resource "google_artifact_registry_repository" "platform" {
  project       = var.project
  location      = var.region
  repository_id = "platform"
  format        = "DOCKER"
  description   = "Devgem's own images (the workers'); only operators push here."
  labels        = var.labels

  # Keep the 10 newest images (rollback targets); delete the rest after 90 days.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "7776000s"
    }
  }

  depends_on = [google_project_service.api]
}

# Values are added out of band (docs/deploy.md), never through terraform, so
# they never land in the state.
resource "google_secret_manager_secret" "platform" {
  for_each = toset(["github-webhook", "slack-webhook-url", "slack-signing-secret", "gemini-api-key"])

  project   = var.project
  secret_id = each.key
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

# Build logs and the runtime logs of the apps' Cloud Run services go to
# log-entry, one message per LogEntry, which the log_entry worker pulls. The
# functions are Cloud Run services too: theirs are left out by name (from the
# topology), so the platform's own output is not stored as app lines. The
# worker pools (log_entry among them) log under resource.type
# "cloud_run_worker_pool", which this filter does not select, so log_entry is
# never fed its own output. Request logs stay out as well; the app's
# stdout/stderr and the platform's crash lines are what users read. In a
# project of its own every other Cloud Run service is an app. Every build in
# the project matches: the few that build the functions' and the workers'
# images are acked and counted by log_entry as unmanaged.
locals {
  platform_services = sort([for f in values(module.topology.functions) : f.deployed_name])
  runtime_log_filter = join(" AND ", concat(
    ["resource.type=\"cloud_run_revision\"", "NOT logName:\"run.googleapis.com%2Frequests\""],
    [for name in local.platform_services : "resource.labels.service_name!=\"${name}\""],
  ))
}

resource "google_logging_project_sink" "log_entry" {
  project                = var.project
  name                   = "devgem-log-entry"
  destination            = "pubsub.googleapis.com/${module.pubsub.topic_ids["log-entry"]}"
  unique_writer_identity = true
  filter                 = "resource.type=\"build\" OR (${local.runtime_log_filter})"
}

resource "google_pubsub_topic_iam_member" "log_sink_publisher" {
  project = var.project
  topic   = module.pubsub.topic_ids["log-entry"]
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.log_entry.writer_identity
}

# Crash signals of the apps' revisions go to crash-detected, which the
# crash_detected worker groups into incidents. The filter is kept in one place,
# shared/devgem/domain/crash_signals.py (SINK_FILTER), which localcloud's Log
# Router applies as a predicate; crash_filter.txt is that constant written out
# (tests/unit/test_crash_signals.py fails if they differ). It selects only
# revisions labelled devgem-managed=true, so the platform's own services never
# feed it.
resource "google_logging_project_sink" "crash_detected" {
  project                = var.project
  name                   = "devgem-crash-detected"
  destination            = "pubsub.googleapis.com/${module.pubsub.topic_ids["crash-detected"]}"
  unique_writer_identity = true
  filter                 = trimspace(file("${path.module}/crash_filter.txt"))
}

resource "google_pubsub_topic_iam_member" "crash_sink_publisher" {
  project = var.project
  topic   = module.pubsub.topic_ids["crash-detected"]
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.crash_detected.writer_identity
}

# Tenancy. Each tenant gets a build service account (runs its builds) and a
# runtime service account (runs its apps), created by the provisioner at sign
# up, so they cannot be named here. The provisioner may:
#   - create service accounts;
#   - grant exactly roles/logging.logWriter on the project (a build running as
#     a tenant account must write its logs) and nothing else: the condition
#     limits which roles its project IAM changes may touch;
#   - grant write access on the apps repository (to push the tenant's images).
# deploy_requested and build_finished act as the tenant accounts through a
# project-level roles/iam.serviceAccountUser (modules/topology): IAM Conditions
# cannot select service accounts by name, so it cannot be narrower. That is one
# reason to give Devgem a project of its own.
locals {
  provisioner = "serviceAccount:${module.functions.service_account_emails[local.tenant_provisioner]}"
}

resource "google_project_iam_member" "provisioner_creates_accounts" {
  project = var.project
  role    = "roles/iam.serviceAccountCreator"
  member  = local.provisioner
}

resource "google_project_iam_member" "provisioner_grants_log_writer" {
  project = var.project
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = local.provisioner

  condition {
    title       = "only-grant-log-writer"
    description = "May add or remove roles/logging.logWriter grants and no other role."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/logging.logWriter'])"
  }
}

resource "google_artifact_registry_repository_iam_member" "provisioner_grants_writer" {
  project    = var.project
  location   = google_artifact_registry_repository.apps.location
  repository = google_artifact_registry_repository.apps.name
  role       = "roles/artifactregistry.admin"
  member     = local.provisioner
}
