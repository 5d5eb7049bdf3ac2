"""Cloud Run service and revision names: valid, stable per tenant and app, unique across tenants.

The name is also the app's subdomain (<service>.<domain>, routed by the url_mask load balancer), so
it is short, readable and never reveals the tenant id. Uniqueness is guaranteed by a reservation
document created with the name (see store.reserve_service_name); the hash only makes clashes rare.
"""

from __future__ import annotations

import base64
import hashlib
import re

MAX_SERVICE_NAME = 49  # Cloud Run's limit, leaving room for revision suffixes
_SLUG_MAX = 30


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    s = s[:_SLUG_MAX].rstrip("-")
    if not s or not s[0].isalpha():
        s = ("app-" + s).rstrip("-")
    return s


def service_name(app_name: str, tenant_id: str, app_id: str, attempt: int = 0) -> str:
    digest = hashlib.sha256(f"{tenant_id}/{app_id}/{attempt}".encode()).digest()
    suffix = base64.b32encode(digest).decode().lower()[:8]
    return f"{slug(app_name)}-{suffix}"[:MAX_SERVICE_NAME]


def revision_name(service: str, deployment_id: str) -> str:
    """One revision per deployment, named after it, so re-running a rollout never makes a second one."""
    return f"{service}-{deployment_id[:12]}"


def app_name_from_repo(repo_url: str) -> str:
    last = repo_url.rstrip("/").rsplit("/", 1)[-1]
    return last.removesuffix(".git") or "app"
