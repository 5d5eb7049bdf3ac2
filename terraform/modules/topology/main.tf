# The event topology, in terraform. It mirrors shared/devgem/topology.py, and
# tests/infra/test_contract.py fails on any difference in either direction.
#
# This module has no provider and no resource: it only computes names, so the
# contract test can evaluate it with a bare `terraform console`, offline.
#
# Adding a function is one line in `functions` below, for example:
#   log_entry      = { trigger_topic = "log-entry", publishes = ["crash-detected"] }
#   crash_detected = { trigger_topic = "crash-detected", secrets = ["slack-webhook-url"] }
#   github_webhook = { trigger_topic = null, public = true, publishes = ["deploy-requested"], secrets = ["github-webhook"] }
#   health_sweep   = { trigger_topic = null, scheduled = "*/5 * * * *" }

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
    build_finished   = { trigger_topic = "cloud-builds", roles = ["roles/run.admin", "roles/iam.serviceAccountUser"] }
    log_entry        = { trigger_topic = "log-entry", concurrency = 500, timeout = 120, roles = ["roles/cloudbuild.builds.viewer"] }
  }

  max_delivery_attempts = 5
  ack_deadline_seconds  = 600

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

  push_subscriptions = {
    for name, f in local.normalized : f.subscription => {
      function          = name
      topic             = f.trigger_topic
      dead_letter_topic = "${f.subscription}-dead-letter"
    } if f.trigger_topic != null
  }

  dead_letter_topics = sort([for s in values(local.push_subscriptions) : s.dead_letter_topic])

  hold_subscriptions = {
    for t in local.dead_letter_topics : "${t}-hold" => { topic = t }
  }
}
