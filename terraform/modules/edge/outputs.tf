output "ip_address" {
  description = "The load balancer's address; *.apps_domain points here."
  value       = google_compute_global_address.apps.address
}

output "url_template" {
  description = "Public URL of an app, as DEVGEM_PUBLIC_URL_TEMPLATE."
  value       = "https://{service}.${var.apps_domain}"
}
