"""Static checks of terraform/ that need neither the google provider nor the network.

`terraform validate` and `plan` cannot run here (the provider cannot be downloaded), so these
tests pin down by reading the HCL what those would not catch anyway: the settings the code
reads, what must never be managed here, and the pieces of the design the issue asks for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devgem.domain.validation import DEFAULT_GIT_HOSTS

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
ENV = TERRAFORM / "envs" / "prod"
CONFIG = REPO / "shared" / "devgem" / "config.py"

Resources = list[tuple[Path, str, str, dict[str, Any]]]

# Settings of shared/devgem/config.py that production must set, and those it must leave unset
# (they point the clients at local servers or loosen checks for local development).
SET_IN_PRODUCTION = {
    "DEVGEM_PROJECT",
    "DEVGEM_REGION",
    "DEVGEM_AUTH_MODE",
    "DEVGEM_PUBLIC_URL_TEMPLATE",
    "DEVGEM_IMAGE_TEMPLATE",
    "DEVGEM_BUILDER_IMAGE",
    "DEVGEM_GIT_HOSTS",
}
UNSET_IN_PRODUCTION = {
    "DEVGEM_CLOUD_BUILD_ENDPOINT",
    "DEVGEM_CLOUD_RUN_ENDPOINT",
    "DEVGEM_ALLOW_LOCAL_REPOS",
    "DEVGEM_DEV_AUTH_CERT",
}


def _by_type(resources: Resources, rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for _, t, name, body in resources if t == rtype}


def _env_locals(parsed: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in parsed[ENV / "main.tf"].get("locals", []):
        merged.update(block)
    return merged


def test_every_file_parses(parsed: dict[Path, dict[str, Any]]) -> None:
    assert len(parsed) >= 10, "terraform/ is missing files"
    for path, doc in parsed.items():
        assert doc, f"{path} parsed to nothing"


def test_variables_and_outputs_are_documented(parsed: dict[Path, dict[str, Any]]) -> None:
    for path, doc in parsed.items():
        for block in doc.get("variable", []):
            for name, body in block.items():
                assert body.get("description"), f"variable {name} in {path} has no description"
                assert "type" in body, f"variable {name} in {path} has no type"
        for block in doc.get("output", []):
            for name, body in block.items():
                assert body.get("description"), f"output {name} in {path} has no description"


def test_functions_get_the_production_settings(parsed: dict[Path, dict[str, Any]]) -> None:
    read = set(re.findall(r'_env\(\s*"(DEVGEM_[A-Z_]+)"', CONFIG.read_text()))
    known = SET_IN_PRODUCTION | UNSET_IN_PRODUCTION
    assert known <= read, f"config.py no longer reads {sorted(known - read)}: update this test and terraform"

    env = _env_locals(parsed)["function_environment"]
    assert set(env) >= SET_IN_PRODUCTION, f"not set: {sorted(SET_IN_PRODUCTION - set(env))}"
    assert not UNSET_IN_PRODUCTION & set(env), f"must stay unset: {sorted(UNSET_IN_PRODUCTION & set(env))}"
    assert env["DEVGEM_AUTH_MODE"] == "firebase"
    assert env["DEVGEM_IMAGE_TEMPLATE"] == (
        "${var.region}-docker.pkg.dev/${var.project}/"
        "${google_artifact_registry_repository.apps.repository_id}/{service}:{deployment}"
    )


def test_git_hosts_default_to_the_public_forges(parsed: dict[Path, dict[str, Any]]) -> None:
    """Production and the code agree on where repositories come from unless an operator says otherwise."""
    variables = parsed[ENV / "variables.tf"]["variable"]
    default = next(b["git_hosts"]["default"] for b in variables if "git_hosts" in b)
    assert tuple(default) == DEFAULT_GIT_HOSTS
    assert _env_locals(parsed)["function_environment"]["DEVGEM_GIT_HOSTS"] == '${join(",", var.git_hosts)}'


def test_artifact_registry_repository_is_apps(all_resources: Resources) -> None:
    repo = _by_type(all_resources, "google_artifact_registry_repository")["apps"]
    assert repo["repository_id"] == "apps" and repo["format"] == "DOCKER"


def test_platform_images_live_apart_from_the_apps(all_resources: Resources) -> None:
    """Tenants' build accounts may write to `apps`; the workers' image must not be within their reach."""
    repos = _by_type(all_resources, "google_artifact_registry_repository")
    assert repos["platform"]["repository_id"] == "platform" and repos["platform"]["format"] == "DOCKER"
    for name, grant in _by_type(all_resources, "google_artifact_registry_repository_iam_member").items():
        assert "repository.platform" not in grant["repository"], f"{name} grants on the platform repository"


def test_public_url_template_matches_the_load_balancer(parsed: dict[Path, dict[str, Any]]) -> None:
    outputs: dict[str, Any] = {}
    for block in parsed[TERRAFORM / "modules" / "edge" / "outputs.tf"]["output"]:
        outputs.update(block)
    assert outputs["url_template"]["value"] == "https://{service}.${var.apps_domain}"
    assert _env_locals(parsed)["function_environment"]["DEVGEM_PUBLIC_URL_TEMPLATE"] == "${module.edge.url_template}"


def test_source_archive_ships_devgem_next_to_main(
    parsed: dict[Path, dict[str, Any]], env_modules: dict[str, Any]
) -> None:
    functions = env_modules["functions"]
    assert functions["functions_dir"] == "${local.repo_root}/functions"
    assert functions["shared_package_dir"] == "${local.repo_root}/shared/devgem"
    assert (REPO / "shared" / "devgem" / "topology.py").exists()
    text = (TERRAFORM / "modules" / "functions" / "main.tf").read_text()
    assert '"devgem/${f}" => "${var.shared_package_dir}/${f}"' in text
    assert "output_md5" in text, "the object name must change with the source, or code changes never deploy"
    runtime = parsed[ENV / "variables.tf"]["variable"]
    default = next(b["functions_runtime"]["default"] for b in runtime if "functions_runtime" in b)
    assert default in {"python312", "python313"}


def test_terraform_never_owns_app_services_or_secret_values(all_resources: Resources) -> None:
    """Per-app services belong to build_finished; secret values never enter the state."""
    types = {t for _, t, _, _ in all_resources}
    assert not types & {"google_cloud_run_service", "google_cloud_run_v2_service"}
    assert "google_secret_manager_secret_version" not in types


def test_log_sink_selects_managed_logs_and_may_publish(
    parsed: dict[Path, dict[str, Any]], all_resources: Resources
) -> None:
    sink = _by_type(all_resources, "google_logging_project_sink")["log_entry"]
    assert sink["destination"] == 'pubsub.googleapis.com/${module.pubsub.topic_ids["log-entry"]}'
    assert sink["unique_writer_identity"] is True
    assert sink["filter"].startswith('resource.type="build" OR (${local.runtime_log_filter})')
    local: dict[str, Any] = {}
    for block in parsed[ENV / "platform.tf"]["locals"]:
        local.update(block)
    runtime = local["runtime_log_filter"]
    assert 'resource.type=\\"cloud_run_revision\\"' in runtime
    assert "local.platform_services" in runtime and "service_name!=" in runtime
    assert "module.topology.functions" in local["platform_services"], "the functions' own logs must stay out"
    # Worker pools log as resource.type "cloud_run_worker_pool": selecting it would feed log_entry its own output.
    assert "cloud_run_worker_pool" not in sink["filter"] + runtime
    grant = _by_type(all_resources, "google_pubsub_topic_iam_member")["log_sink_publisher"]
    assert grant["member"] == "${google_logging_project_sink.log_entry.writer_identity}"
    assert grant["topic"] == '${module.pubsub.topic_ids["log-entry"]}'


def test_firestore_indexes_ttl_and_rules(parsed: dict[Path, dict[str, Any]], all_resources: Resources) -> None:
    module = parsed[TERRAFORM / "modules" / "firestore" / "main.tf"]
    local: dict[str, Any] = {}
    for block in module["locals"]:
        local.update(block)
    collections = {i["collection"] for i in local["composite_indexes"].values()}
    assert {"deployments", "apps", "logs"} <= collections
    assert {"logs": "expireAt", "ledger": "expireAt"}.items() <= local["ttl_fields"].items()
    assert local["unindexed_fields"]["logs"] == "lines"
    fields = _by_type(all_resources, "google_firestore_field")
    assert fields["ttl"]["ttl_config"] == [{}]
    assert fields["ttl"]["index_config"] == [{}], "an indexed increasing timestamp caps write rates"
    assert fields["unindexed"]["index_config"] == [{}]
    assert (TERRAFORM / "firestore.rules").exists()
    release = _by_type(all_resources, "google_firebaserules_release")["firestore"]
    assert release["name"] == "cloud.firestore"


def test_custom_urls(all_resources: Resources) -> None:
    neg = _by_type(all_resources, "google_compute_region_network_endpoint_group")["apps"]
    assert neg["network_endpoint_type"] == "SERVERLESS"
    assert neg["cloud_run"][0]["url_mask"] == "<service>.${var.apps_domain}"
    cert = _by_type(all_resources, "google_certificate_manager_certificate")["apps"]
    assert cert["managed"][0]["domains"] == ["*.${var.apps_domain}"]
    assert cert["managed"][0]["dns_authorizations"]
    records = _by_type(all_resources, "google_dns_record_set")
    assert records["wildcard"]["name"] == "*.${var.apps_domain}."
    redirect = _by_type(all_resources, "google_compute_url_map")["http_redirect"]
    assert redirect["default_url_redirect"][0]["https_redirect"] is True
    rules = _by_type(all_resources, "google_compute_global_forwarding_rule")
    assert {r["port_range"] for r in rules.values()} == {"80", "443"}


def test_scheduler_and_tenancy(all_resources: Resources) -> None:
    job = _by_type(all_resources, "google_cloud_scheduler_job")["fn"]
    assert "f.scheduled != null" in job["for_each"], "a job exists exactly for the functions that declare a schedule"
    grants = _by_type(all_resources, "google_project_iam_member")
    assert grants["provisioner_creates_accounts"]["role"] == "roles/iam.serviceAccountCreator"
    condition = grants["provisioner_grants_log_writer"]["condition"][0]["expression"]
    assert "modifiedGrantsByRole" in condition and "roles/logging.logWriter" in condition


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_no_hard_coded_project(path: Path) -> None:
    """Everything project-specific comes from variables, so the same code serves any project."""
    assert not re.search(r'project\s*=\s*"[a-z]', path.read_text()), f"{path} hard-codes a project"
