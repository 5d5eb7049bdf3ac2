"""terraform/ declares exactly the topology of shared/devgem/topology.py, in both directions.

Names come from devgem.topology on one side and from terraform on the other (the literal
declaration, then what terraform computes from it, then how the resources consume it), so
adding a function, a worker or a topic on one side only fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from devgem import topology

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
TOPOLOGY_MODULE = TERRAFORM / "modules" / "topology"


def _diff(name: str, code: set[str], terraform: set[str]) -> str:
    return (
        f"{name} differ: only in devgem.topology {sorted(code - terraform)}, "
        f"only in terraform {sorted(terraform - code)}"
    )


def _check(name: str, code: set[str], terraform: set[str]) -> None:
    assert code == terraform, _diff(name, code, terraform)


# --- the literal declaration (python-hcl2; needs no terraform binary) -------------------------


def test_topics_match(topology_locals: dict[str, Any]) -> None:
    _check("topics", set(topology.TOPICS), set(topology_locals["topics"]))


def test_function_entry_points_and_triggers_match(topology_locals: dict[str, Any]) -> None:
    declared = {name: spec["trigger_topic"] for name, spec in topology_locals["functions"].items()}
    code = {f.name: f.trigger_topic for f in topology.FUNCTIONS}
    _check("function entry points", set(code), set(declared))
    assert declared == code, "trigger topics differ"


def test_schedules_match(topology_locals: dict[str, Any]) -> None:
    """A scheduled function runs on the same cron in production as the topology declares."""
    declared = {name: spec.get("scheduled") for name, spec in topology_locals["functions"].items()}
    code = {f.name: f.schedule for f in topology.FUNCTIONS}
    assert declared == code, "schedules differ"
    for f in topology.scheduled_functions():
        assert f.trigger_topic is None, f"{f.name}: Cloud Scheduler calls an HTTP function, not a pushed one"
        assert f.local_every_seconds > 0, f"{f.name}: devstack needs a local interval to call it on"


def test_delivery_settings_match(topology_locals: dict[str, Any]) -> None:
    assert topology_locals["max_delivery_attempts"] == topology.MAX_DELIVERY_ATTEMPTS
    assert topology_locals["ack_deadline_seconds"] == topology.ACK_DEADLINE_SECONDS


def test_trigger_and_published_topics_are_declared(topology_locals: dict[str, Any]) -> None:
    topics = set(topology_locals["topics"])
    for name, spec in topology_locals["functions"].items():
        used = {spec["trigger_topic"]} - {None} | set(spec.get("publishes", []))
        assert used <= topics, f"{name} uses undeclared topics {sorted(used - topics)}"
    for name, spec in topology_locals["workers"].items():
        assert spec["topic"] in topics, f"worker {name} pulls from undeclared topic {spec['topic']}"


def test_workers_match(topology_locals: dict[str, Any]) -> None:
    declared = topology_locals["workers"]
    _check("workers", {w.name for w in topology.WORKERS}, set(declared))
    for w in topology.WORKERS:
        assert declared[w.name]["topic"] == w.topic, f"worker {w.name}: topics differ"
        assert declared[w.name]["ack_deadline_seconds"] == w.ack_deadline_seconds, (
            f"worker {w.name}: ack deadlines differ"
        )


def test_no_name_is_both_a_function_and_a_worker(topology_locals: dict[str, Any]) -> None:
    both = set(topology_locals["functions"]) & set(topology_locals["workers"])
    assert not both, f"pushed and pulled at once: {sorted(both)}"


# --- what terraform computes from it (terraform console) --------------------------------------


def test_push_subscriptions_match(topology_eval: dict[str, Any]) -> None:
    subs = topology_eval["push_subscriptions"]
    code = {f.subscription: f for f in topology.event_functions() if f.subscription}
    _check("push subscriptions", set(code), set(subs))
    for name, f in code.items():
        assert subs[name]["function"] == f.name
        assert subs[name]["topic"] == f.trigger_topic
        assert subs[name]["dead_letter_topic"] == f.dead_letter_topic


def test_pull_subscriptions_match(topology_eval: dict[str, Any]) -> None:
    subs = topology_eval["pull_subscriptions"]
    code = {w.subscription: w for w in topology.WORKERS}
    _check("pull subscriptions", set(code), set(subs))
    for name, w in code.items():
        assert subs[name]["worker"] == w.name
        assert subs[name]["topic"] == w.topic
        assert subs[name]["dead_letter_topic"] == w.dead_letter_topic
        assert subs[name]["ack_deadline_seconds"] == w.ack_deadline_seconds


def test_deployed_workers_match(topology_eval: dict[str, Any]) -> None:
    workers = topology_eval["workers"]
    _check("workers", {w.name for w in topology.WORKERS}, set(workers))
    for w in topology.WORKERS:
        spec = workers[w.name]
        assert spec["entry_point"] == w.name
        assert spec["deployed_name"] == w.name.replace("_", "-")
        assert spec["topic"] == w.topic
        assert spec["subscription"] == w.subscription
        assert spec["dead_letter_topic"] == w.dead_letter_topic
        assert spec["ack_deadline_seconds"] == w.ack_deadline_seconds
        assert "roles/datastore.user" in spec["roles"], f"{w.name} commits to Firestore"


def test_pull_ack_deadlines_are_allowed(topology_eval: dict[str, Any]) -> None:
    for name, sub in topology_eval["pull_subscriptions"].items():
        assert 10 <= sub["ack_deadline_seconds"] <= 600, f"{name}: Pub/Sub allows 10..600 s"


def test_dead_letter_topics_match(topology_eval: dict[str, Any]) -> None:
    _check("dead-letter topics", set(topology.dead_letter_topics()), set(topology_eval["dead_letter_topics"]))


def test_hold_subscriptions_match(topology_eval: dict[str, Any]) -> None:
    code = {topology.dead_letter_subscription(t): t for t in topology.dead_letter_topics()}
    declared = {name: spec["topic"] for name, spec in topology_eval["hold_subscriptions"].items()}
    _check("dead-letter hold subscriptions", set(code), set(declared))
    assert declared == code


def test_deployed_functions_match(topology_eval: dict[str, Any]) -> None:
    functions = topology_eval["functions"]
    _check("functions", {f.name for f in topology.FUNCTIONS}, set(functions))
    for f in topology.FUNCTIONS:
        spec = functions[f.name]
        assert spec["entry_point"] == f.name
        assert spec["trigger_topic"] == f.trigger_topic
        assert spec["subscription"] == f.subscription


def test_event_functions_finish_before_the_ack_deadline(topology_eval: dict[str, Any]) -> None:
    """A handler still running at the deadline would be redelivered while it works."""
    deadline = topology_eval["ack_deadline_seconds"]
    assert 10 <= deadline <= 600, "Pub/Sub allows 10..600 s"
    assert 5 <= topology_eval["max_delivery_attempts"] <= 100, "Pub/Sub allows 5..100 attempts"
    for name, spec in topology_eval["functions"].items():
        if spec["trigger_topic"] is not None:
            assert spec["timeout"] < deadline, f"{name} may outlive its ack deadline"


# --- how the resources consume it (the only place names come from) ----------------------------


def _only(all_resources: list[tuple[Path, str, str, dict[str, Any]]], rtype: str) -> dict[str, dict[str, Any]]:
    found = {name: body for _, t, name, body in all_resources if t == rtype}
    return found


def test_no_topic_subscription_or_function_outside_the_topology(
    all_resources: list[tuple[Path, str, str, dict[str, Any]]],
) -> None:
    """Every such resource lives in the modules that iterate over the topology, keyed by name."""
    owners = {
        "google_pubsub_topic": ("pubsub", {"topic", "dead_letter"}),
        "google_pubsub_subscription": ("pubsub", {"push", "hold", "pull"}),
        "google_cloudfunctions2_function": ("functions", {"fn"}),
        "google_cloudfunctions_function": ("functions", set()),
        "google_cloud_run_v2_worker_pool": ("workers", {"worker"}),
    }
    for path, rtype, name, body in all_resources:
        if rtype in owners:
            module, names = owners[rtype]
            assert path.parent == TERRAFORM / "modules" / module, f"{rtype}.{name} declared in {path}"
            assert name in names, f"unexpected {rtype}.{name} in {path}"
            assert "for_each" in body, f"{rtype}.{name} must iterate over the topology"


def test_resources_take_names_from_the_topology(all_resources: list[tuple[Path, str, str, dict[str, Any]]]) -> None:
    topics = _only(all_resources, "google_pubsub_topic")
    assert topics["topic"]["for_each"] == "${toset(var.topics)}"
    assert topics["dead_letter"]["for_each"] == "${toset(var.dead_letter_topics)}"
    assert topics["topic"]["name"] == topics["dead_letter"]["name"] == "${each.key}"

    subs = _only(all_resources, "google_pubsub_subscription")
    push, hold = subs["push"], subs["hold"]
    assert push["for_each"] == "${var.push_subscriptions}" and push["name"] == "${each.key}"
    assert push["topic"] == "${google_pubsub_topic.topic[each.value.topic].id}"
    policy = push["dead_letter_policy"][0]
    assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id}"
    assert policy["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert push["ack_deadline_seconds"] == "${var.ack_deadline_seconds}"
    assert push["retry_policy"], "push subscriptions retry with backoff"
    assert "no_wrapper" not in push["push_config"][0], "functions-framework needs the wrapped push body"
    assert push["push_config"][0]["oidc_token"], "push requests must authenticate"
    assert hold["for_each"] == "${var.hold_subscriptions}" and hold["name"] == "${each.key}"
    assert hold["topic"] == "${google_pubsub_topic.dead_letter[each.value.topic].id}"
    assert "push_config" not in hold, "hold subscriptions are pull: they keep messages"

    pull = subs["pull"]
    assert pull["for_each"] == "${var.pull_subscriptions}" and pull["name"] == "${each.key}"
    assert pull["topic"] == "${google_pubsub_topic.topic[each.value.topic].id}"
    policy = pull["dead_letter_policy"][0]
    assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id}"
    assert policy["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    assert pull["ack_deadline_seconds"] == "${each.value.ack_deadline_seconds}", "each worker has its own deadline"
    assert "push_config" not in pull, "a worker pulls its subscription"
    assert pull["retry_policy"], "nacked lines come back with a short backoff"
    assert pull["enable_exactly_once_delivery"] is False
    assert pull["expiration_policy"][0]["ttl"] == "", "a subscription must not expire while its pool is stopped"

    fn = _only(all_resources, "google_cloudfunctions2_function")["fn"]
    assert fn["for_each"] == "${var.functions}"
    assert fn["name"] == "${each.value.deployed_name}"
    assert fn["build_config"][0]["entry_point"] == "${each.value.entry_point}"
    assert "event_trigger" not in fn, "an Eventarc trigger would bring its own subscription without dead-lettering"


def test_worker_pools_take_names_from_the_topology(
    parsed: dict[Path, dict[str, Any]], all_resources: list[tuple[Path, str, str, dict[str, Any]]]
) -> None:
    module = TERRAFORM / "modules" / "workers" / "main.tf"
    local: dict[str, Any] = {}
    for block in parsed[module].get("locals", []):
        local.update(block)
    assert "var.workers" in local["deployed"], "the pools are exactly the topology's workers (once the image exists)"

    pool = _only(all_resources, "google_cloud_run_v2_worker_pool")["worker"]
    assert pool["for_each"] == "${local.deployed}"
    assert pool["name"] == "${each.value.deployed_name}"
    assert pool["scaling"][0]["manual_instance_count"] == "${each.value.instances}"
    template = pool["template"][0]
    assert template["service_account"] == "${google_service_account.worker[each.key].email}"
    container = template["containers"][0]
    assert container["image"] == "${var.image}", "one image for every worker"
    assert container["args"] == ["python", "workers.py", "${each.value.entry_point}"], (
        "a worker runs `python workers.py <entry point>` from the archive root"
    )

    grant = _only(all_resources, "google_pubsub_subscription_iam_member")["subscriber"]
    assert grant["for_each"] == "${var.workers}"
    assert grant["subscription"] == "${var.subscription_names[each.value.subscription]}"
    assert grant["role"] == "roles/pubsub.subscriber"
    assert grant["member"] == "${google_service_account.worker[each.key].member}"

    # The service agent acknowledges on every subscription it dead-letters from.
    agent = _only(all_resources, "google_pubsub_subscription_iam_member")["dead_letter_subscriber"]
    assert "google_pubsub_subscription.push" in agent["for_each"]
    assert "google_pubsub_subscription.pull" in agent["for_each"]


def test_topology_outputs_are_its_locals(parsed: dict[Path, dict[str, Any]]) -> None:
    """The env reads outputs; the contract above checks locals: they must be the same values."""
    outputs: dict[str, Any] = {}
    for block in parsed[TOPOLOGY_MODULE / "outputs.tf"]["output"]:
        outputs.update(block)
    expected = {
        "topics": "local.topics",
        "functions": "local.normalized",
        "workers": "local.workers_normalized",
        "push_subscriptions": "local.push_subscriptions",
        "pull_subscriptions": "local.pull_subscriptions",
        "dead_letter_topics": "local.dead_letter_topics",
        "hold_subscriptions": "local.hold_subscriptions",
        "max_delivery_attempts": "local.max_delivery_attempts",
        "ack_deadline_seconds": "local.ack_deadline_seconds",
    }
    for name, local in expected.items():
        assert outputs[name]["value"] == f"${{{local}}}", f"output {name} must be {local}"


def test_environment_wires_the_topology_module(env_modules: dict[str, dict[str, Any]]) -> None:
    assert env_modules["topology"]["source"] == "../../modules/topology"
    pubsub, functions = env_modules["pubsub"], env_modules["functions"]
    for key in (
        "topics",
        "dead_letter_topics",
        "hold_subscriptions",
        "pull_subscriptions",
        "max_delivery_attempts",
        "ack_deadline_seconds",
    ):
        assert pubsub[key] == f"${{module.topology.{key}}}", f"pubsub.{key} must come from module.topology"
    assert "module.topology.push_subscriptions" in pubsub["push_subscriptions"]
    assert functions["functions"] == "${module.topology.functions}"
    workers = env_modules["workers"]
    assert workers["source"] == "../../modules/workers"
    assert workers["workers"] == "${module.topology.workers}"
    assert workers["subscription_names"] == "${module.pubsub.pull_subscription_names}"
    assert workers["environment"] == "${local.function_environment}", "workers read the functions' settings"


def test_topology_module_has_no_provider(parsed: dict[Path, dict[str, Any]]) -> None:
    """It must stay evaluable offline by `terraform console`, which needs no init without providers."""
    for path in TOPOLOGY_MODULE.glob("*.tf"):
        blocks = set(parsed[path])
        assert not blocks & {"resource", "data", "provider", "module", "terraform"}, f"{path}: {sorted(blocks)}"


# --- the code side of the choice: HTTP-deployed event functions need @cloud_event ------------


def _decorated_entry_points(main: Path) -> dict[str, set[str]]:
    """Top-level names of main.py; for functions defined there, the last names of their decorators."""
    out: dict[str, set[str]] = {}
    for node in ast.parse(main.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = set()
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
            out[node.name] = names
        elif isinstance(node, ast.ImportFrom):
            out.update({alias.asname or alias.name: set() for alias in node.names})
        elif isinstance(node, ast.Assign):
            out.update({t.id: set() for t in node.targets if isinstance(t, ast.Name)})
    return out


def test_entry_points_exist_in_functions_main() -> None:
    main = REPO / "functions" / "main.py"
    if not main.exists():
        pytest.skip("functions/main.py does not exist yet")
    defined = _decorated_entry_points(main)
    missing = [f.name for f in topology.FUNCTIONS if f.name not in defined]
    assert not missing, f"entry points missing from functions/main.py: {missing}"
    for f in topology.event_functions():
        decorators = defined[f.name]
        if decorators:  # a re-export from elsewhere is not checked here
            assert "cloud_event" in decorators, (
                f"{f.name} is deployed HTTP-triggered and fed by a push subscription: it needs "
                "@functions_framework.cloud_event so the raw push body becomes a CloudEvent"
            )


def test_worker_entry_points_exist_in_functions_workers() -> None:
    """`python workers.py <name>` runs the top-level function of that name."""
    workers = REPO / "functions" / "workers.py"
    if not workers.exists():
        pytest.skip("functions/workers.py does not exist yet")
    defined = {
        node.name
        for node in ast.parse(workers.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    missing = [w.name for w in topology.WORKERS if w.name not in defined]
    assert not missing, f"worker entry points missing from functions/workers.py: {missing}"
