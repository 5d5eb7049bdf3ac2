variable "project" {
  description = "Project id."
  type        = string
}

variable "project_number" {
  description = "Project number, to name the Pub/Sub service agent."
  type        = string
}

variable "topics" {
  description = "Topic names (module.topology.topics)."
  type        = list(string)
}

variable "dead_letter_topics" {
  description = "Dead-letter topic names (module.topology.dead_letter_topics)."
  type        = list(string)
}

variable "push_subscriptions" {
  description = "name => function, topic, dead_letter_topic, push_endpoint (module.topology.push_subscriptions plus each function's URL)."
  type = map(object({
    function          = string
    topic             = string
    dead_letter_topic = string
    push_endpoint     = string
  }))
}

variable "pull_subscriptions" {
  description = "name => worker, topic, dead_letter_topic, ack_deadline_seconds: one pull subscription per worker (module.topology.pull_subscriptions)."
  type = map(object({
    worker               = string
    topic                = string
    dead_letter_topic    = string
    ack_deadline_seconds = number
  }))

  validation {
    condition     = alltrue([for s in values(var.pull_subscriptions) : s.ack_deadline_seconds >= 10 && s.ack_deadline_seconds <= 600])
    error_message = "Pub/Sub allows ack deadlines of 10 to 600 seconds."
  }
}

variable "hold_subscriptions" {
  description = "name => topic: a pull subscription on each dead-letter topic (module.topology.hold_subscriptions)."
  type        = map(object({ topic = string }))
}

variable "push_service_account_email" {
  description = "Identity in the OIDC token of every push request; it holds run.invoker on the event functions."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message is dead-lettered (5 to 100)."
  type        = number
}

variable "ack_deadline_seconds" {
  description = "Push request deadline in seconds (at most 600)."
  type        = number
}

variable "labels" {
  description = "Labels for every topic and subscription."
  type        = map(string)
  default     = {}
}
