output "topics" {
  description = "Topics that functions and workers consume or publish to (not the dead-letter topics)."
  value       = local.topics
}

output "functions" {
  description = "Every function, keyed by Python entry point, with defaults filled in."
  value       = local.normalized
}

output "workers" {
  description = "Every worker (a pull consumer run as a Cloud Run worker pool), keyed by Python entry point, with defaults filled in."
  value       = local.workers_normalized
}

output "push_subscriptions" {
  description = "One push subscription per event function: name => function, topic, dead-letter topic."
  value       = local.push_subscriptions
}

output "pull_subscriptions" {
  description = "One pull subscription per worker: name => worker, topic, dead-letter topic, ack deadline."
  value       = local.pull_subscriptions
}

output "dead_letter_topics" {
  description = "One dead-letter topic per push and per pull subscription."
  value       = local.dead_letter_topics
}

output "hold_subscriptions" {
  description = "A pull subscription on every dead-letter topic, so a dead-lettered message is kept."
  value       = local.hold_subscriptions
}

output "max_delivery_attempts" {
  description = "Deliveries before a message goes to the dead-letter topic (push and pull subscriptions alike)."
  value       = local.max_delivery_attempts
}

output "ack_deadline_seconds" {
  description = "Push request deadline; above the 540 s event-function timeout. Pull subscriptions take each worker's own."
  value       = local.ack_deadline_seconds
}
