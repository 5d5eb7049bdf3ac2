"""Who is calling: verify an Identity Platform / Firebase ID token and read tenant and user from it.

Production (DEVGEM_AUTH_MODE=firebase) hands the token to google-auth's `verify_firebase_token`,
which fetches Google's signing certificates, checks signature, expiry, audience and issuer. Locally
(DEVGEM_AUTH_MODE=dev) the signature is checked against a certificate that devstack generated (the
dev CLI config mints tokens with its key, see devstack/dev_tokens), and then the same claim checks
run, so the code path that rejects forged, expired, foreign or tenant-less tokens is the one tests
exercise.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
from cachecontrol import CacheControl
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import Request
from google.oauth2 import id_token

from devgem.config import settings
from devgem.domain.errors import Unauthenticated
from devgem.domain.identity import Identity

TENANT_CLAIM = "devgem_tenant"
CLOCK_SKEW_SECONDS = 10
SIGN_IN_HINT = (
    "sign in to the web console to get one; for local use `make run` writes a token to .devgem/cli.json, "
    "and the devgem CLI also takes one from DEVGEM_TOKEN"
)


def _certs_session() -> requests.Session:
    """One session for the process that keeps Google's certificates as long as their Cache-Control
    says (hours), so a verification fetches nothing in between."""
    return CacheControl(requests.Session())


_session = _certs_session()


def issuer(project: str) -> str:
    return f"https://securetoken.google.com/{project}"


def verify(authorization_header: str | None) -> Identity:
    if not authorization_header or not authorization_header.startswith("Bearer "):
        raise Unauthenticated(f"send 'Authorization: Bearer <ID token>': {SIGN_IN_HINT}")
    token = authorization_header.removeprefix("Bearer ").strip()
    project = settings().project
    try:
        claims = _verified_claims(token, project)
    except (ValueError, auth_exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"the ID token was rejected: {exc}") from exc
    if claims.get("aud") != project or claims.get("iss") != issuer(project):
        raise Unauthenticated("the ID token was issued for another project")
    tenant, user = claims.get(TENANT_CLAIM), claims.get("sub")
    if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
        raise Unauthenticated(f"the ID token has no {TENANT_CLAIM} claim: ask a tenant admin to add you")
    return Identity(tenant_id=tenant, user_id=user)


def _verified_claims(token: str, project: str) -> dict[str, Any]:
    """The token's claims once its signature, expiry and audience check out."""
    s = settings()
    if s.auth_mode == "firebase":
        claims = id_token.verify_firebase_token(
            token, Request(session=_session), audience=project, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
        )
    elif s.auth_mode == "dev":
        claims = jwt.decode(token, certs=_dev_certs(), audience=project, clock_skew_in_seconds=CLOCK_SKEW_SECONDS)
    else:
        raise Unauthenticated(f"unknown DEVGEM_AUTH_MODE {s.auth_mode!r}: use firebase or dev")
    if not isinstance(claims, dict):
        raise Unauthenticated("the ID token has no claims")
    return claims


def _dev_certs() -> dict[str, str]:
    cert_file = settings().dev_auth_cert_file
    if not cert_file:
        raise Unauthenticated("DEVGEM_AUTH_MODE=dev needs DEVGEM_DEV_AUTH_CERT (devstack sets it)")
    return {"dev": _read_cert(cert_file)}


@lru_cache(maxsize=4)
def _read_cert(path: str) -> str:
    return Path(path).read_text()
