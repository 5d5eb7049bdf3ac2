output "api_url" {
  description = "The api function (the web app and the CLI talk to it)."
  value       = module.functions.urls["api"]
}

output "function_urls" {
  description = "Every function's URL."
  value       = module.functions.urls
}

output "workers" {
  description = "Every worker pool: entry point => worker pool name, subscription, instances (empty until workers_image is set)."
  value       = module.workers.worker_pools
}

output "workers_image_repository" {
  description = "Where to push the workers' image (docs/deploy.md); workers_image names an image in it."
  value       = "${google_artifact_registry_repository.platform.location}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.platform.repository_id}"
}

output "apps_ip_address" {
  description = "The load balancer's address; *.apps_domain resolves to it."
  value       = module.edge.ip_address
}

output "public_url_template" {
  description = "An app's URL, with {service} replaced by its Cloud Run service name."
  value       = module.edge.url_template
}

output "dns_zone_name_servers" {
  description = "Delegate apps_domain (or its parent) to these name servers at your registrar."
  value       = data.google_dns_managed_zone.apps.name_servers
}

output "secrets_to_fill" {
  description = "Secrets that need a value before the features that read them work."
  value       = [for s in google_secret_manager_secret.platform : s.secret_id]
}
