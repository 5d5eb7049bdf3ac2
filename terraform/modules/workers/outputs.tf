output "service_account_emails" {
  description = "Entry point => the worker's own service account."
  value       = { for name, sa in google_service_account.worker : name => sa.email }
}

output "worker_pools" {
  description = "Entry point => worker pool name, subscription and instance count (empty until the image is set)."
  value = {
    for name, p in google_cloud_run_v2_worker_pool.worker : name => {
      worker_pool  = p.name
      subscription = var.workers[name].subscription
      instances    = var.workers[name].instances
    }
  }
}
