output "topic_ids" {
  description = "Topic name => topic id, for publisher grants and the log sink."
  value       = { for name, t in google_pubsub_topic.topic : name => t.id }
}

output "subscription_names" {
  description = "Every subscription this module created (push and hold)."
  value       = concat(keys(google_pubsub_subscription.push), keys(google_pubsub_subscription.hold))
}
