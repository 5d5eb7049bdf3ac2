output "topic_ids" {
  description = "Topic name => topic id, for publisher grants and the log sink."
  value       = { for name, t in google_pubsub_topic.topic : name => t.id }
}

output "pull_subscription_names" {
  description = "Pull subscription name => name, once created (modules/workers grants each worker subscriber on its own)."
  value       = { for name, s in google_pubsub_subscription.pull : name => s.name }
}

output "subscription_names" {
  description = "Every subscription this module created (push, pull and hold)."
  value       = concat(keys(google_pubsub_subscription.push), keys(google_pubsub_subscription.pull), keys(google_pubsub_subscription.hold))
}
