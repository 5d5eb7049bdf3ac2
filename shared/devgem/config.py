"""Settings, read from the environment once per process.

The same names are set by terraform in production and by devstack locally, so the code that runs
is the same and only where it points differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from devgem.domain.validation import DEFAULT_GIT_HOSTS


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    # Where the Google API clients point. Empty: the real Google endpoint.
    cloud_build_endpoint: str
    cloud_run_endpoint: str
    # "firebase": verify Identity Platform ID tokens with Google's keys; "dev": the same verification
    # with a locally generated key (certificate file below).
    auth_mode: str
    dev_auth_cert_file: str
    # Public URL of an app: "{service}" is replaced by the Cloud Run service name.
    public_url_template: str
    # Where a person reads an app's logs (Slack's "View logs"): "{app}" is replaced by the app id.
    logs_url_template: str
    # Allow file:// and absolute-path repository URLs (local development only).
    allow_local_repos: bool
    # The only hosts https repository URLs may name (exact names, lower case). An allow-list, not a
    # deny-list, because a public name can resolve to the metadata server or a private address and
    # the api cannot see what a build worker's resolver will answer (devgem.domain.validation.repo_url).
    git_hosts: tuple[str, ...]
    # Image name of a build: "{service}" and "{deployment}" are replaced.
    image_template: str
    # Buildpacks builder used by the Cloud Build step.
    builder_image: str
    probe_timeout_seconds: float
    max_event_age_seconds: float
    # Slack's Web API; devstack points it at its local receiver (devstack/slack_receiver.py).
    slack_api_url: str
    # "secret-manager": tenants' secret references are Secret Manager secrets. "env": they are read
    # from DEVGEM_LOCAL_SECRET_<NAME> (devstack only; no tenant can name a platform variable this way
    # in production, because production never reads the environment for them).
    secrets_source: str
    # Slack's signing secret itself (local only), or, in production, the Secret Manager version
    # terraform names in DEVGEM_SECRET_SLACK_SIGNING_SECRET.
    slack_signing_secret: str
    slack_signing_secret_ref: str


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def git_hosts(setting: str) -> tuple[str, ...]:
    """Comma-separated host names; empty keeps the default, since no host at all would refuse every app."""
    hosts = tuple(dict.fromkeys(h.strip().lower() for h in setting.split(",") if h.strip()))
    return hosts or DEFAULT_GIT_HOSTS


@lru_cache(maxsize=1)
def settings() -> Settings:
    project = _env("DEVGEM_PROJECT", _env("GOOGLE_CLOUD_PROJECT", "devgem-local"))
    region = _env("DEVGEM_REGION", "us-central1")
    return Settings(
        project=project,
        region=region,
        cloud_build_endpoint=_env("DEVGEM_CLOUD_BUILD_ENDPOINT", ""),
        cloud_run_endpoint=_env("DEVGEM_CLOUD_RUN_ENDPOINT", ""),
        auth_mode=_env("DEVGEM_AUTH_MODE", "firebase"),
        dev_auth_cert_file=_env("DEVGEM_DEV_AUTH_CERT", ""),
        public_url_template=_env("DEVGEM_PUBLIC_URL_TEMPLATE", "https://{service}.apps.example.com"),
        logs_url_template=_env("DEVGEM_LOGS_URL_TEMPLATE", "https://console.example.com/apps/{app}/logs"),
        allow_local_repos=_env("DEVGEM_ALLOW_LOCAL_REPOS", "") == "1",
        git_hosts=git_hosts(_env("DEVGEM_GIT_HOSTS", "")),
        image_template=_env(
            "DEVGEM_IMAGE_TEMPLATE",
            f"{region}-docker.pkg.dev/{project}/apps/{{service}}:{{deployment}}",
        ),
        builder_image=_env("DEVGEM_BUILDER_IMAGE", "gcr.io/buildpacks/builder:google-22"),
        probe_timeout_seconds=float(_env("DEVGEM_PROBE_TIMEOUT_SECONDS", "60")),
        max_event_age_seconds=float(_env("DEVGEM_MAX_EVENT_AGE_SECONDS", "86400")),
        slack_api_url=_env("DEVGEM_SLACK_API_URL", "https://slack.com/api/"),
        secrets_source=_env("DEVGEM_SECRETS_SOURCE", "secret-manager"),
        slack_signing_secret=_env("DEVGEM_SLACK_SIGNING_SECRET", ""),
        slack_signing_secret_ref=_env("DEVGEM_SECRET_SLACK_SIGNING_SECRET", ""),
    )
