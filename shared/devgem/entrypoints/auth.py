"""Who is calling: verify an Identity Platform / Firebase ID token and read tenant and user from it.

Production checks the token against Google's published signing certificates. Locally
(DEVGEM_AUTH_MODE=dev) the same verification runs against a certificate that devstack generated,
and `devgem` mints tokens with its key (see dev_tokens). Only where the certificates come from
differs, so the code path that rejects forged, expired or foreign tokens is the one tests exercise.
"""

from __future__ import annotations

import time
from pathlib import Path
from threading import Lock

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from devgem.config import settings
from devgem.domain.errors import Unauthenticated
from devgem.domain.identity import Identity

GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
TENANT_CLAIM = "devgem_tenant"
CLOCK_SKEW_SECONDS = 10


def issuer(project: str) -> str:
    return f"https://securetoken.google.com/{project}"


class _CertCache:
    """Google rotates its keys; an hour's cache matches the Cache-Control it sends."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._certs: dict[str, str] = {}
        self._expires = 0.0

    def get(self) -> dict[str, str]:
        with self._lock:
            if time.monotonic() >= self._expires:
                self._certs = _load_certs()
                self._expires = time.monotonic() + 3600
            return self._certs


def _load_certs() -> dict[str, str]:
    s = settings()
    if s.auth_mode == "dev":
        if not s.dev_auth_cert_file:
            raise Unauthenticated("DEVGEM_AUTH_MODE=dev needs DEVGEM_DEV_AUTH_CERT (devstack sets it)")
        return {"dev": Path(s.dev_auth_cert_file).read_text()}
    if s.auth_mode != "firebase":
        raise Unauthenticated(f"unknown DEVGEM_AUTH_MODE {s.auth_mode!r}: use firebase or dev")
    response = requests.get(GOOGLE_CERTS_URL, timeout=10)
    response.raise_for_status()
    certs = response.json()
    if not isinstance(certs, dict):
        raise Unauthenticated("could not load Google's token signing certificates")
    return {str(k): str(v) for k, v in certs.items()}


_certs = _CertCache()


def verify(authorization_header: str | None) -> Identity:
    if not authorization_header or not authorization_header.startswith("Bearer "):
        raise Unauthenticated("send 'Authorization: Bearer <ID token>' (devgem login gives you one)")
    token = authorization_header.removeprefix("Bearer ").strip()
    project = settings().project
    try:
        claims = jwt.decode(token, certs=_certs.get(), audience=project, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
    except (ValueError, auth_exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"the ID token was rejected: {exc}") from exc
    if claims.get("iss") != issuer(project):
        raise Unauthenticated("the ID token was issued for another project")
    tenant, user = claims.get(TENANT_CLAIM), claims.get("sub")
    if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
        raise Unauthenticated(f"the ID token has no {TENANT_CLAIM} claim: ask a tenant admin to add you")
    return Identity(tenant_id=tenant, user_id=user)
