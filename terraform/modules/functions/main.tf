# Every function of the topology as a Cloud Functions 2nd gen function with its
# own service account. None has an Eventarc trigger: event functions receive
# Pub/Sub pushes from the subscriptions declared in modules/pubsub (see there
# why), so each is an HTTP-triggered gen2 function whose entry point is
# decorated with @functions_framework.cloud_event.

locals {
  # Only text sources; byte-compiled caches and tests stay out of the archive.
  wanted = "\\.(py|txt)$"
  source_files = merge(
    {
      for f in fileset(var.functions_dir, "**") : f => "${var.functions_dir}/${f}"
      if can(regex(local.wanted, f)) && !strcontains(f, "__pycache__")
    },
    {
      for f in fileset(var.shared_package_dir, "**") : "devgem/${f}" => "${var.shared_package_dir}/${f}"
      if can(regex(local.wanted, f)) && !strcontains(f, "__pycache__")
    },
  )

  project_grants = merge([
    for name, f in var.functions : { for role in f.roles : "${name} ${role}" => { function = name, role = role } }
  ]...)
  publisher_grants = merge([
    for name, f in var.functions : { for t in f.publishes : "${name} ${t}" => { function = name, topic = t } }
  ]...)
  secret_grants = merge([
    for name, f in var.functions : { for s in f.secrets : "${name} ${s}" => { function = name, secret = s } }
  ]...)

  # Who may invoke each function: anyone (it checks identity itself), the
  # Pub/Sub push identity, or the scheduler identity.
  invokers = merge(
    { for name, f in var.functions : "${name} public" => { function = name, member = "allUsers" } if f.public },
    { for name, f in var.functions : "${name} push" => { function = name, member = google_service_account.push.member } if f.trigger_topic != null },
    { for name, f in var.functions : "${name} scheduler" => { function = name, member = google_service_account.scheduler.member } if f.scheduled != null },
  )
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.build/functions-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.key
      content  = file(source.value)
    }
  }
}

resource "google_storage_bucket" "sources" {
  project                     = var.project
  name                        = "${var.project}-devgem-function-sources"
  location                    = var.region
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only rebuildable archives live here

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  # Named by content, so a code change makes a new object and redeploys.
  name   = "functions-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.sources.name
  source = data.archive_file.source.output_path
}

# Builds the function images (the default build identity changed in 2024 and
# differs between projects; an explicit one makes apply repeatable).
resource "google_service_account" "build" {
  project      = var.project
  account_id   = "dg-functions-build"
  display_name = "Devgem: builds the function images"
}

# The narrow set instead of roles/cloudbuild.builds.builder: write build logs,
# push the image to the gcf-artifacts repository Cloud Functions creates, and
# read the source archive.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project
  role    = each.key
  member  = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

resource "google_service_account" "fn" {
  for_each = var.functions

  project      = var.project
  account_id   = "dg-fn-${each.value.deployed_name}"
  display_name = "Devgem function ${each.key}"
}

resource "google_project_iam_member" "fn" {
  for_each = local.project_grants

  project = var.project
  role    = each.value.role
  member  = google_service_account.fn[each.value.function].member
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publisher_grants

  project = var.project
  topic   = var.topic_ids[each.value.topic]
  role    = "roles/pubsub.publisher"
  member  = google_service_account.fn[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_grants

  project   = var.project
  secret_id = var.secret_ids[each.value.secret]
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn[each.value.function].member
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = var.functions

  project     = var.project
  name        = each.value.deployed_name
  location    = var.region
  description = each.value.trigger_topic == null ? "Devgem ${each.key} (HTTP)" : "Devgem ${each.key} (push from ${each.value.trigger_topic})"
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    timeout_seconds                  = each.value.timeout
    ingress_settings                 = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.fn[each.key].email
    # Secrets are passed by name and read at run time: apply works before any
    # secret has a value, rotation needs no redeploy, and no value reaches the
    # function configuration or the terraform state.
    environment_variables = merge(var.environment, {
      for s in each.value.secrets :
      "DEVGEM_SECRET_${upper(replace(s, "-", "_"))}" => "${var.secret_ids[s]}/versions/latest"
    })
  }

  depends_on = [google_project_iam_member.build, google_storage_bucket_iam_member.build_reads_sources]
}

# A gen2 function is served by the Cloud Run service of the same name.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.value.function].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

# The identity in the OIDC token of every Pub/Sub push request.
resource "google_service_account" "push" {
  project      = var.project
  account_id   = "dg-pubsub-push"
  display_name = "Devgem: Pub/Sub push to event functions"
}

# The identity in the OIDC token of every scheduler request.
resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = "dg-scheduler"
  display_name = "Devgem: Cloud Scheduler calls to functions"
}

# One job per function that declares `scheduled` (the health sweeper, once it
# exists in the topology); none before.
resource "google_cloud_scheduler_job" "fn" {
  for_each = { for name, f in var.functions : name => f if f.scheduled != null }

  project          = var.project
  region           = var.region
  name             = "devgem-${each.value.deployed_name}"
  description      = "Calls ${each.key} on a schedule."
  schedule         = each.value.scheduled
  time_zone        = var.schedule_time_zone
  attempt_deadline = "${min(each.value.timeout, 1800)}s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }
}
