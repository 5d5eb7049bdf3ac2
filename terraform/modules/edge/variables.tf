variable "project" {
  description = "Project id."
  type        = string
}

variable "region" {
  description = "Region of the per-app Cloud Run services the serverless NEG routes to."
  type        = string
}

variable "apps_domain" {
  description = "Apps are served at https://<service>.<apps_domain>."
  type        = string
}

variable "dns_zone_name" {
  description = "Name of the Cloud DNS managed zone that serves apps_domain (it must exist)."
  type        = string
}

variable "labels" {
  description = "Labels for the resources that take them."
  type        = map(string)
  default     = {}
}
