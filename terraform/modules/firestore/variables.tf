variable "project" {
  description = "Project id."
  type        = string
}

variable "location" {
  description = "Firestore location (a region such as us-central1, or a multi-region such as nam5)."
  type        = string
}

variable "rules_file" {
  description = "Path of the security rules file (terraform/firestore.rules)."
  type        = string
}

variable "delete_protection" {
  description = "Refuse to delete the database; turn off only to tear the platform down."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep 7 days of versions for point-in-time recovery (billed as storage)."
  type        = bool
  default     = true
}
