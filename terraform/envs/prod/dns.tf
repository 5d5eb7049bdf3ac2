# The zone is the operator's (it usually outlives the platform); read only.
data "google_dns_managed_zone" "apps" {
  project = var.project
  name    = var.dns_zone_name
}
