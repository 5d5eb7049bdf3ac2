# Every worker of the topology as a Cloud Run worker pool with its own service
# account. A worker is a pull consumer: `python workers.py <entry point>` from
# the same source tree as the functions (functions/ with shared/devgem as
# devgem/), which pulls its subscription in batches and acks a batch once it is
# committed. A worker pool has no URL and no request-driven autoscaling: it
# runs a fixed number of instances (`instances` in the topology), each one
# pulling.

locals {
  project_grants = merge([
    for name, w in var.workers : { for role in w.roles : "${name} ${role}" => { worker = name, role = role } }
  ]...)

  # The image is built outside terraform (docs/deploy.md); until it exists no
  # pool is created, and the pull subscriptions keep what arrives meanwhile.
  deployed = var.image == "" ? {} : var.workers
}

resource "google_service_account" "worker" {
  for_each = var.workers

  project      = var.project
  account_id   = "dg-wk-${each.value.deployed_name}"
  display_name = "Devgem worker ${each.key}"
}

resource "google_project_iam_member" "worker" {
  for_each = local.project_grants

  project = var.project
  role    = each.value.role
  member  = google_service_account.worker[each.value.worker].member
}

# Each worker may pull (and ack) its own subscription and no other.
resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each = var.workers

  project      = var.project
  subscription = var.subscription_names[each.value.subscription]
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.worker[each.key].member
}

resource "google_cloud_run_v2_worker_pool" "worker" {
  for_each = local.deployed

  project     = var.project
  name        = each.value.deployed_name
  location    = var.region
  description = "Devgem worker ${each.key}: pulls ${each.value.subscription}"
  labels      = var.labels
  # Worker pools were a preview when this was written; BETA lets the API accept
  # them. The API reports GA once they are, hence ignore_changes below.
  launch_stage = "BETA"
  # Stateless (the subscription holds the messages): destroy and replace freely.
  deletion_protection = false

  # Manual scaling: exactly `instances` instances, each pulling. Changing the
  # count does not make a new revision.
  scaling {
    manual_instance_count = each.value.instances
  }

  template {
    service_account = google_service_account.worker[each.key].email
    labels          = var.labels

    containers {
      image = var.image
      # The image is built by Google Cloud's buildpacks, whose Python is set up
      # by the CNB launcher (PATH, installed dependencies): run the worker
      # through it, from the app directory where workers.py and devgem/ are.
      command = ["/cnb/lifecycle/launcher"]
      args    = ["python", "workers.py", each.value.entry_point]

      resources {
        limits = {
          cpu    = each.value.cpu
          memory = each.value.memory
        }
      }

      dynamic "env" {
        for_each = var.environment
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [launch_stage]
  }

  # The first instances must be able to pull and write as soon as they start.
  depends_on = [google_project_iam_member.worker, google_pubsub_subscription_iam_member.subscriber]
}
