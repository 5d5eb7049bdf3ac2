# The event topology, in terraform. It mirrors shared/devgem/topology.py, and
# tests/infra/test_contract.py fails on any difference in either direction.
#
# This module has no provider and no resource: it only computes names, so the
# contract test can evaluate it with a bare `terraform console`, offline.
#
# Two kinds of consumer. A function gets its events pushed, one message per
# request (right for the few deploy and build events); a worker pulls its
# subscription in batches and acks a batch once it is committed (right for
# log-entry, where one app may write 3,000 lines a second: pushed, that is
# 3,000 invocations a second; pulled, about 1,000 messages per Pull request).
#
# Adding a function is one line in `functions` below, for example:
#   crash_detected = { trigger_topic = "crash-detected", secrets = ["slack-webhook-url"] }
#   github_webhook = { trigger_topic = null, public = true, publishes = ["deploy-requested"], secrets = ["github-webhook"] }
#   health_sweep   = { trigger_topic = null, scheduled = "*/5 * * * *" }
# Adding a worker is one line in `workers`, for example:
#   crash_watch = { topic = "crash-detected", ack_deadline_seconds = 60 }

locals {
  topics = ["deploy-requested", "cloud-builds", "log-entry", "crash-detected"]

  # key: the Python entry point in functions/main.py (the deployed name is the
  # same with dashes, as Cloud Run service names allow no underscores).
  # trigger_topic = null: an HTTP function. Every function gets
  # roles/datastore.user; `roles` adds project roles, `publishes` topic-level
  # publisher grants, `secrets` read access to Secret Manager secrets.
  functions = {
    api              = { trigger_topic = null, public = true, min_instances = 1, concurrency = 4, publishes = ["deploy-requested"], secrets = ["gemini-api-key"] }
    deploy_requested = { trigger_topic = "deploy-requested", roles = ["roles/cloudbuild.builds.editor", "roles/iam.serviceAccountUser"] }
    build_finished   = { trigger_topic = "cloud-builds", roles = ["roles/cloudbuild.builds.viewer", "roles/run.admin", "roles/iam.serviceAccountUser"] }
    watchdog         = { trigger_topic = null, scheduled = "* * * * *", timeout = 300, publishes = ["deploy-requested"], roles = ["roles/cloudbuild.builds.editor", "roles/run.admin", "roles/iam.serviceAccountUser"] }
    slack_actions    = { trigger_topic = null, public = true, secrets = ["slack-signing-secret"] }
  }

  # key: the Python entry point in functions/workers.py (`python workers.py
  # <key>`); deployed as a Cloud Run worker pool named with dashes. Every
  # worker gets roles/datastore.user and pubsub.subscriber on its own pull
  # subscription; `roles` adds project roles. `ack_deadline_seconds` is short:
  # a worker acks within ~100 ms of committing, extends the lease of what it is
  # still writing, and nacks what it cannot commit, so the deadline only matters
  # when an instance dies holding messages. log_entry holds at most 256 MiB of
  # pulled entries (devgem.entrypoints.pull_worker), hence its 1 GiB.
  # Optional: `instances` (the pool's fixed instance count, default 1; 0 pauses
  # it), `cpu` (default "1"), `memory` (default "512Mi").
  workers = {
    log_entry      = { topic = "log-entry", ack_deadline_seconds = 10, instances = 1, memory = "1Gi", roles = ["roles/cloudbuild.builds.viewer"] }
    crash_detected = { topic = "crash-detected", ack_deadline_seconds = 10, instances = 1 }
  }

  max_delivery_attempts = 5
  ack_deadline_seconds  = 600 # push subscriptions; each worker declares its own

  # Everything below is derived; nothing to edit.
  normalized = {
    for name, f in local.functions : name => {
      entry_point   = name
      deployed_name = replace(name, "_", "-")
      trigger_topic = f.trigger_topic
      public        = lookup(f, "public", false)
      min_instances = lookup(f, "min_instances", 0)
      max_instances = lookup(f, "max_instances", 10)
      concurrency   = lookup(f, "concurrency", 1)                              # requests per instance; functions-framework runs 4 threads per CPU
      timeout       = lookup(f, "timeout", f.trigger_topic == null ? 60 : 540) # 540 s: the ceiling the ack deadline is sized for
      roles         = concat(["roles/datastore.user"], lookup(f, "roles", []))
      publishes     = lookup(f, "publishes", [])
      secrets       = lookup(f, "secrets", [])
      scheduled     = lookup(f, "scheduled", null)
      subscription  = f.trigger_topic == null ? null : "${replace(name, "_", "-")}-push"
    }
  }

  workers_normalized = {
    for name, w in local.workers : name => {
      entry_point          = name
      deployed_name        = replace(name, "_", "-")
      topic                = w.topic
      subscription         = "${replace(name, "_", "-")}-pull"
      dead_letter_topic    = "${replace(name, "_", "-")}-pull-dead-letter"
      ack_deadline_seconds = w.ack_deadline_seconds
      instances            = lookup(w, "instances", 1)
      cpu                  = lookup(w, "cpu", "1")
      memory               = lookup(w, "memory", "512Mi")
      roles                = concat(["roles/datastore.user"], lookup(w, "roles", []))
    }
  }

  push_subscriptions = {
    for name, f in local.normalized : f.subscription => {
      function          = name
      topic             = f.trigger_topic
      dead_letter_topic = "${f.subscription}-dead-letter"
    } if f.trigger_topic != null
  }

  pull_subscriptions = {
    for name, w in local.workers_normalized : w.subscription => {
      worker               = name
      topic                = w.topic
      dead_letter_topic    = w.dead_letter_topic
      ack_deadline_seconds = w.ack_deadline_seconds
    }
  }

  dead_letter_topics = sort(concat(
    [for s in values(local.push_subscriptions) : s.dead_letter_topic],
    [for s in values(local.pull_subscriptions) : s.dead_letter_topic],
  ))

  hold_subscriptions = {
    for t in local.dead_letter_topics : "${t}-hold" => { topic = t }
  }
}
