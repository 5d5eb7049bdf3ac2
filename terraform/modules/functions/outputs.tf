output "urls" {
  description = "Entry point => HTTPS URL of the function."
  value       = { for name, f in google_cloudfunctions2_function.fn : name => f.service_config[0].uri }
}

output "service_account_emails" {
  description = "Entry point => the function's own service account."
  value       = { for name, sa in google_service_account.fn : name => sa.email }
}

output "push_service_account_email" {
  description = "Identity of Pub/Sub push requests."
  value       = google_service_account.push.email
}

output "source_object" {
  description = "The uploaded source archive (functions/ plus devgem/)."
  value       = "gs://${google_storage_bucket.sources.name}/${google_storage_bucket_object.source.name}"
}
