"""Token verification: the path production uses, with a locally generated signing certificate."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth import crypt, jwt
from google.oauth2 import id_token

from devgem.config import settings
from devgem.domain.errors import Unauthenticated
from devgem.domain.identity import Identity
from devgem.entrypoints import auth
from devstack import dev_tokens


@pytest.fixture()
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    key, cert = dev_tokens.ensure_keys(tmp_path / "auth")
    monkeypatch.setenv("DEVGEM_AUTH_MODE", "dev")
    monkeypatch.setenv("DEVGEM_DEV_AUTH_CERT", str(cert))
    monkeypatch.setenv("DEVGEM_PROJECT", "proj-a")
    settings.cache_clear()
    yield key
    settings.cache_clear()


def test_a_valid_token_names_tenant_and_user(keys: Path) -> None:
    token = dev_tokens.mint(keys, "proj-a", "tenant-1", "ana")
    assert auth.verify(f"Bearer {token}") == Identity("tenant-1", "ana")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer not.a.jwt"])
def test_missing_or_malformed_tokens_are_rejected(keys: Path, header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(header)


def test_a_token_signed_by_another_key_is_rejected(keys: Path, tmp_path: Path) -> None:
    other_key, _ = dev_tokens.ensure_keys(tmp_path / "other")
    forged = dev_tokens.mint(other_key, "proj-a", "tenant-1", "ana")
    with pytest.raises(Unauthenticated, match="rejected"):
        auth.verify(f"Bearer {forged}")


def test_a_token_for_another_project_is_rejected(keys: Path) -> None:
    token = dev_tokens.mint(keys, "proj-b", "tenant-1", "ana")
    with pytest.raises(Unauthenticated):
        auth.verify(f"Bearer {token}")


def test_an_expired_token_is_rejected(keys: Path) -> None:
    token = dev_tokens.mint(keys, "proj-a", "tenant-1", "ana", lifetime_seconds=-3600)
    with pytest.raises(Unauthenticated, match="rejected"):
        auth.verify(f"Bearer {token}")


def test_a_token_without_tenant_claim_is_rejected(keys: Path) -> None:
    signer = crypt.RSASigner.from_string(keys.read_text(), key_id="dev")
    now = int(time.time())
    payload = {"iss": auth.issuer("proj-a"), "aud": "proj-a", "sub": "ana", "iat": now, "exp": now + 60}
    token = jwt.encode(signer, payload).decode()
    with pytest.raises(Unauthenticated, match="devgem_tenant"):
        auth.verify(f"Bearer {token}")


def test_a_tampered_tenant_claim_breaks_the_signature(keys: Path) -> None:
    import base64
    import json

    header, payload, signature = dev_tokens.mint(keys, "proj-a", "tenant-1", "ana").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["devgem_tenant"] = "tenant-2"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(Unauthenticated):
        auth.verify(f"Bearer {header}.{forged_payload}.{signature}")


def test_the_401_names_what_a_user_can_really_do(keys: Path) -> None:
    with pytest.raises(Unauthenticated) as caught:
        auth.verify(None)
    assert "devgem login" not in str(caught.value)
    assert "DEVGEM_TOKEN" in str(caught.value) and ".devgem/cli.json" in str(caught.value)


def test_firebase_mode_verifies_with_google_auth_then_checks_the_same_claims(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVGEM_AUTH_MODE", "firebase")
    settings.cache_clear()
    calls: list[tuple[str, object]] = []
    claims = {"iss": auth.issuer("proj-a"), "aud": "proj-a", "sub": "ana", "devgem_tenant": "tenant-1"}

    def verify_firebase_token(token: str, request: object, audience: object = None, **_: object) -> dict[str, str]:
        calls.append((token, audience))
        return dict(claims)

    monkeypatch.setattr(id_token, "verify_firebase_token", verify_firebase_token)
    assert auth.verify("Bearer t0k") == Identity("tenant-1", "ana")
    assert calls == [("t0k", "proj-a")]
    del claims["devgem_tenant"]
    with pytest.raises(Unauthenticated, match="devgem_tenant"):
        auth.verify("Bearer t0k")
    claims.update(devgem_tenant="tenant-1", iss=auth.issuer("proj-b"))
    with pytest.raises(Unauthenticated, match="another project"):
        auth.verify("Bearer t0k")
