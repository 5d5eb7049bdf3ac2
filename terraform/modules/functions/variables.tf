variable "project" {
  description = "Project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, their source bucket and the scheduler jobs."
  type        = string
}

variable "functions" {
  description = "module.topology.functions: entry point => settings."
  type = map(object({
    entry_point   = string
    deployed_name = string
    trigger_topic = string
    public        = bool
    min_instances = number
    max_instances = number
    concurrency   = number
    timeout       = number
    roles         = list(string)
    publishes     = list(string)
    secrets       = list(string)
    scheduled     = string
  }))

  validation {
    # Service account ids are "dg-fn-" + name and may not exceed 30 characters.
    condition     = alltrue([for f in values(var.functions) : length(f.deployed_name) <= 24])
    error_message = "A function name longer than 24 characters cannot name its service account."
  }
}

variable "runtime" {
  description = "Cloud Functions Python runtime."
  type        = string
  default     = "python312"
}

variable "functions_dir" {
  description = "Directory with main.py and requirements.txt (the repo's functions/)."
  type        = string
}

variable "shared_package_dir" {
  description = "The devgem package (the repo's shared/devgem), shipped as devgem/ next to main.py."
  type        = string
}

variable "environment" {
  description = "Environment variables common to every function (DEVGEM_* settings)."
  type        = map(string)
}

variable "topic_ids" {
  description = "Topic name => id, for the publisher grants in `publishes`."
  type        = map(string)
}

variable "secret_ids" {
  description = "Secret name => id, for the accessor grants in `secrets`."
  type        = map(string)
}

variable "schedule_time_zone" {
  description = "Time zone of scheduled functions."
  type        = string
  default     = "Etc/UTC"
}

variable "labels" {
  description = "Labels for functions and the source bucket."
  type        = map(string)
  default     = {}
}
