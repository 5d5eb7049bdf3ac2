variable "project" {
  description = "Project id."
  type        = string
}

variable "region" {
  description = "Region of the worker pools."
  type        = string
}

variable "workers" {
  description = "module.topology.workers: entry point => settings."
  type = map(object({
    entry_point          = string
    deployed_name        = string
    topic                = string
    subscription         = string
    dead_letter_topic    = string
    ack_deadline_seconds = number
    instances            = number
    cpu                  = string
    memory               = string
    roles                = list(string)
  }))

  validation {
    # Service account ids are "dg-wk-" + name and may not exceed 30 characters.
    condition     = alltrue([for w in values(var.workers) : length(w.deployed_name) <= 24])
    error_message = "A worker name longer than 24 characters cannot name its service account."
  }

  validation {
    condition     = alltrue([for w in values(var.workers) : w.instances >= 0 && floor(w.instances) == w.instances])
    error_message = "instances is a whole number of instances (0 stops the worker; its subscription keeps the messages for 7 days)."
  }
}

variable "image" {
  description = "The workers' image (every worker runs the same one, built from functions/ plus devgem/: see docs/deploy.md). Empty: no worker pool is created yet; the service accounts, grants and subscriptions are."
  type        = string
}

variable "subscription_names" {
  description = "Pull subscription name => name (module.pubsub.pull_subscription_names), for each worker's subscriber grant."
  type        = map(string)
}

variable "environment" {
  description = "Environment variables of every worker: the DEVGEM_* settings the functions get."
  type        = map(string)
}

variable "labels" {
  description = "Labels for the worker pools and their revisions."
  type        = map(string)
  default     = {}
}
