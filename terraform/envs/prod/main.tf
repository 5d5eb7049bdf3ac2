# Devgem on Google Cloud: one `terraform apply` in this directory stands up the
# whole platform. The topology (topics, subscriptions, functions, workers)
# comes from ../../modules/topology, which the contract test keeps equal to
# shared/devgem/topology.py.

data "google_project" "this" {
  project_id = var.project
}

locals {
  repo_root          = "${path.module}/../../.."
  firestore_location = var.firestore_location == "" ? var.region : var.firestore_location

  # The function that signs tenants up and so creates their service accounts.
  tenant_provisioner = "api"

  # Settings every function and worker reads (shared/devgem/config.py). The
  # Cloud Build and Cloud Run endpoints stay unset: production talks to Google.
  function_environment = {
    DEVGEM_PROJECT             = var.project
    DEVGEM_REGION              = var.region
    DEVGEM_AUTH_MODE           = "firebase"
    DEVGEM_PUBLIC_URL_TEMPLATE = module.edge.url_template
    DEVGEM_IMAGE_TEMPLATE      = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.apps.repository_id}/{service}:{deployment}"
    DEVGEM_BUILDER_IMAGE       = var.builder_image
    DEVGEM_GIT_HOSTS           = join(",", var.git_hosts)
  }
}

module "topology" {
  source = "../../modules/topology"
}

module "pubsub" {
  source = "../../modules/pubsub"

  project            = var.project
  project_number     = data.google_project.this.number
  topics             = module.topology.topics
  dead_letter_topics = module.topology.dead_letter_topics
  hold_subscriptions = module.topology.hold_subscriptions
  pull_subscriptions = module.topology.pull_subscriptions
  push_subscriptions = {
    for name, s in module.topology.push_subscriptions :
    name => merge(s, { push_endpoint = module.functions.urls[s.function] })
  }
  push_service_account_email = module.functions.push_service_account_email
  max_delivery_attempts      = module.topology.max_delivery_attempts
  ack_deadline_seconds       = module.topology.ack_deadline_seconds
  labels                     = var.labels

  depends_on = [google_project_service.api]
}

module "functions" {
  source = "../../modules/functions"

  project            = var.project
  region             = var.region
  runtime            = var.functions_runtime
  functions          = module.topology.functions
  functions_dir      = "${local.repo_root}/functions"
  shared_package_dir = "${local.repo_root}/shared/devgem"
  environment        = local.function_environment
  topic_ids          = module.pubsub.topic_ids
  secret_ids         = { for name, s in google_secret_manager_secret.platform : name => s.id }
  labels             = var.labels

  depends_on = [google_project_service.api]
}

module "workers" {
  source = "../../modules/workers"

  project            = var.project
  region             = var.region
  workers            = module.topology.workers
  image              = var.workers_image
  subscription_names = module.pubsub.pull_subscription_names
  environment        = local.function_environment
  labels             = var.labels

  depends_on = [google_project_service.api]
}

# Until the workers' image is built and named (docs/deploy.md), apply works but
# creates no worker pool: log lines wait in their pull subscription (7 days).
check "workers_image" {
  assert {
    condition     = var.workers_image != ""
    error_message = "workers_image is empty, so no worker pool runs and nothing consumes log-entry-pull: build the image (docs/deploy.md, \"The workers' image\") and set workers_image."
  }
}

module "firestore" {
  source = "../../modules/firestore"

  project           = var.project
  location          = local.firestore_location
  rules_file        = "${path.module}/../../firestore.rules"
  delete_protection = var.firestore_delete_protection

  depends_on = [google_project_service.api]
}

module "edge" {
  source = "../../modules/edge"

  project       = var.project
  region        = var.region
  apps_domain   = var.apps_domain
  dns_zone_name = var.dns_zone_name
  labels        = var.labels

  depends_on = [google_project_service.api]
}
