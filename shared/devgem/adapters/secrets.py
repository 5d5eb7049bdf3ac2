"""Secrets by reference: Firestore and logs only ever hold a secret's name, never its value.

In production a reference is a Secret Manager secret. A tenant's references are confined to the
secrets named `tenant-<tenant>-<reference>`, so one tenant cannot name the platform's secrets or
another tenant's. Locally (`DEVGEM_SECRETS_SOURCE=env`, set by devstack only) a reference is read
from the variable DEVGEM_LOCAL_SECRET_<REFERENCE>, so the stack needs no Google credentials.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from google.cloud import secretmanager

from devgem.config import settings
from devgem.domain.errors import InvalidInput, NotFound

_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,150}$")


@lru_cache(maxsize=1)
def _client() -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient()


def connect() -> None:
    if settings().secrets_source != "env":
        _client()


def local_variable(reference: str) -> str:
    return "DEVGEM_LOCAL_SECRET_" + re.sub(r"[^A-Z0-9]", "_", reference.upper())


def tenant_secret(tenant_id: str, reference: str) -> str:
    """The value behind a tenant's reference; the reference itself is checked, as a tenant wrote it."""
    if not _REFERENCE.match(reference):
        raise InvalidInput(f"secret reference {reference!r} is not a secret name (lower case, digits, - and _)")
    if settings().secrets_source == "env":
        return _from_env(reference)
    return version(f"projects/{settings().project}/secrets/tenant-{tenant_id}-{reference}/versions/latest")


def version(name: str) -> str:
    """A Secret Manager version (`projects/P/secrets/S/versions/V`), as terraform hands them to functions."""
    if settings().secrets_source == "env":
        return _from_env(name.split("/secrets/")[-1].split("/")[0])
    response = _client().access_secret_version(name=name)
    return response.payload.data.decode()


def _from_env(reference: str) -> str:
    value = os.environ.get(local_variable(reference), "")
    if not value:
        raise NotFound(f"secret {reference!r} is not set (locally: {local_variable(reference)})")
    return value
