variable "project" {
  description = "Google Cloud project id; a project of its own for Devgem (see docs/deploy.md)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the worker pools, the apps' Cloud Run services, Artifact Registry and the scheduler."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "Firestore location; empty means the region."
  type        = string
  default     = ""
}

variable "apps_domain" {
  description = "Apps are served at https://<service>.<apps_domain>, e.g. apps.example.com."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", var.apps_domain))
    error_message = "apps_domain must be a lower-case DNS name without a trailing dot."
  }
}

variable "dns_zone_name" {
  description = "Name (not DNS name) of an existing Cloud DNS managed zone in this project that serves apps_domain."
  type        = string
}

variable "builder_image" {
  description = "Buildpacks builder the app builds run (DEVGEM_BUILDER_IMAGE)."
  type        = string
  default     = "gcr.io/buildpacks/builder:google-22"
}

variable "git_hosts" {
  description = "The only hosts app repositories are fetched from (DEVGEM_GIT_HOSTS): exact names, e.g. a self-hosted GitLab. Internal names and IP addresses are refused even if listed."
  type        = list(string)
  default     = ["github.com", "gitlab.com", "bitbucket.org"]

  validation {
    condition     = length(var.git_hosts) > 0 && alltrue([for h in var.git_hosts : can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", h))])
    error_message = "git_hosts must be lower-case DNS names with at least one dot, such as github.com."
  }
}

variable "workers_image" {
  description = "Image every worker pool runs, built from functions/ plus devgem/ (docs/deploy.md), e.g. us-central1-docker.pkg.dev/PROJECT/platform/workers:TAG. Empty: no worker pool yet."
  type        = string
  default     = ""
}

variable "functions_runtime" {
  description = "Cloud Functions runtime of every function."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python312", "python313"], var.functions_runtime)
    error_message = "functions_runtime must be python312 or python313."
  }
}

variable "firestore_delete_protection" {
  description = "Keep true; set false and apply once before `terraform destroy`."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = { devgem = "platform" }
}
