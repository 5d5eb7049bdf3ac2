"""Fixtures for the offline checks of terraform/: parsed HCL and the evaluated topology.

Nothing here needs the google provider or the network: HCL is read with python-hcl2, and the
provider-free topology module is evaluated by a bare `terraform console`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
TOPOLOGY_MODULE = TERRAFORM / "modules" / "topology"
ENV = TERRAFORM / "envs" / "prod"

# Plain Python values: unquoted strings, no comment or block markers.
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def parse(path: Path) -> dict[str, Any]:
    """One .tf file as python-hcl2 sees it."""
    with path.open() as f:
        return dict(hcl2.load(f, serialization_options=_OPTIONS))


def tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


def resources(parsed: dict[Path, dict[str, Any]]) -> list[tuple[Path, str, str, dict[str, Any]]]:
    """Every resource block as (file, type, name, body)."""
    out = []
    for path, doc in parsed.items():
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    out.append((path, rtype, name, body))
    return out


def terraform_binary() -> str | None:
    return shutil.which("terraform")


def evaluate_topology() -> dict[str, Any]:
    """The topology module's locals, computed by terraform itself (it has no provider, so no init)."""
    binary = terraform_binary()
    if binary is None:
        pytest.skip("no terraform binary: derived names (subscriptions, dead-letter topics) not evaluated")
    expr = (
        "jsonencode({topics = local.topics, functions = local.normalized, workers = local.workers_normalized,"
        " push_subscriptions = local.push_subscriptions, pull_subscriptions = local.pull_subscriptions,"
        " dead_letter_topics = local.dead_letter_topics, hold_subscriptions = local.hold_subscriptions,"
        " max_delivery_attempts = local.max_delivery_attempts, ack_deadline_seconds = local.ack_deadline_seconds})"
    )
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "TF_DATA_DIR": data_dir, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        done = subprocess.run(
            [binary, f"-chdir={TOPOLOGY_MODULE}", "console"],
            input=expr,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise AssertionError(f"terraform console failed on {TOPOLOGY_MODULE}:\n{done.stderr}")
    # console prints the JSON string as an HCL string literal, i.e. JSON-quoted once more.
    result: dict[str, Any] = json.loads(json.loads(done.stdout.strip()))
    return result


@pytest.fixture(scope="session")
def parsed() -> dict[Path, dict[str, Any]]:
    return {p: parse(p) for p in tf_files()}


@pytest.fixture(scope="session")
def all_resources(parsed: dict[Path, dict[str, Any]]) -> list[tuple[Path, str, str, dict[str, Any]]]:
    return resources(parsed)


@pytest.fixture(scope="session")
def topology_locals() -> dict[str, Any]:
    """The literal declaration in modules/topology/main.tf."""
    merged: dict[str, Any] = {}
    for block in parse(TOPOLOGY_MODULE / "main.tf").get("locals", []):
        merged.update(block)
    return merged


@pytest.fixture(scope="session")
def topology_eval() -> dict[str, Any]:
    return evaluate_topology()


@pytest.fixture(scope="session")
def env_modules() -> dict[str, dict[str, Any]]:
    """module blocks of envs/prod, by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in parse(ENV / "main.tf").get("module", []):
        out.update(block)
    return out
