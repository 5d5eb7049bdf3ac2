"""terraform/firestore.rules, run by the Firestore emulator: tenants see only their own documents.

The emulator accepts unsigned ID tokens, so each request carries exactly the claims under test.
Skipped where Java or the emulator jar is missing; it starts in about a second.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.waiting import wait_for

RULES = Path(__file__).resolve().parents[2] / "terraform" / "firestore.rules"
JAR_CANDIDATES = [
    Path(os.environ.get("FIRESTORE_EMULATOR_JAR", "/nonexistent")),
    Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"),
    Path("/usr/share/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"),
]
PROJECT = "rules-test"
ADMIN = {"Authorization": "Bearer owner"}  # the emulator's rules bypass, as service credentials are


def _jar() -> Path | None:
    return next((p for p in JAR_CANDIDATES if p.is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    jar, java = _jar(), shutil.which("java")
    if jar is None or java is None:
        pytest.skip("Firestore emulator jar or java not found: rules not exercised")
    port = _free_port()
    proc = subprocess.Popen(
        [
            java,
            "-cp",
            str(jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--rules={RULES}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def started() -> bool:
            if proc.poll() is not None:
                pytest.fail("the Firestore emulator exited while starting")
            return requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200

        wait_for(started, "the Firestore emulator to start", 30)
        yield f"http://127.0.0.1:{port}/v1/projects/{PROJECT}/databases/(default)/documents"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _token(claims: dict[str, Any]) -> dict[str, str]:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    body = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "u1",
        "user_id": "u1",
        "iat": 1,
        "auth_time": 1,
        "exp": 4_000_000_000,
        "firebase": {"sign_in_provider": "password"},
        **claims,
    }
    return {"Authorization": f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}."}


DOCS = {
    "tenants/t1": "t1",
    "apps/a1": "t1",
    "apps/a1/logs/0001": "t1",
    "deployments/d1": "t1",
    "sessions/s1": "t1",
    "sessions/s1/messages/m1": "t1",
    "incidents/i1": "t1",
    "apps/a2": "t2",
    "ledger/k1": "t1",  # server-only, whatever its tenant
}


@pytest.fixture(scope="module")
def seeded(base: str) -> str:
    for path, tenant in DOCS.items():
        body = {"fields": {"tenantId": {"stringValue": tenant}, "createdAt": {"integerValue": "1"}}}
        assert requests.patch(f"{base}/{path}", json=body, headers=ADMIN, timeout=10).status_code == 200
    return base


@pytest.mark.parametrize("claims", [{"devgem_tenants": ["t1", "t9"]}, {"devgem_tenant": "t1"}])
def test_member_reads_own_tenant_only(seeded: str, claims: dict[str, Any]) -> None:
    auth = _token(claims)
    for path, tenant in DOCS.items():
        expected = 200 if tenant == "t1" and not path.startswith("ledger/") else 403
        got = requests.get(f"{seeded}/{path}", headers=auth, timeout=10).status_code
        assert got == expected, f"{claims} reading {path}: {got}"


@pytest.mark.parametrize("who", ["anonymous", "no-claims", "other-tenant"])
def test_strangers_read_nothing(seeded: str, who: str) -> None:
    auth = {"anonymous": {}, "no-claims": _token({}), "other-tenant": _token({"devgem_tenants": ["t2"]})}[who]
    for path in ("apps/a1", "apps/a1/logs/0001", "deployments/d1", "tenants/t1"):
        assert requests.get(f"{seeded}/{path}", headers=auth, timeout=10).status_code == 403


def test_no_client_writes(seeded: str) -> None:
    auth = _token({"devgem_tenants": ["t1"]})
    body = {"fields": {"tenantId": {"stringValue": "t1"}}}
    for path in ("apps/a1", "apps/a9", "deployments/d9", "apps/a1/logs/0002", "ledger/k2"):
        assert requests.patch(f"{seeded}/{path}", json=body, headers=auth, timeout=10).status_code == 403
    assert requests.delete(f"{seeded}/apps/a1", headers=auth, timeout=10).status_code == 403


def _query(base: str, auth: dict[str, str], tenant: str | None) -> int:
    query: dict[str, Any] = {"from": [{"collectionId": "apps"}]}
    if tenant is not None:
        query["where"] = {
            "fieldFilter": {"field": {"fieldPath": "tenantId"}, "op": "EQUAL", "value": {"stringValue": tenant}}
        }
    status: int = requests.post(
        f"{base}:runQuery", json={"structuredQuery": query}, headers=auth, timeout=10
    ).status_code
    return status


def test_queries_must_be_scoped_to_a_tenant(seeded: str) -> None:
    auth = _token({"devgem_tenants": ["t1"]})
    assert _query(seeded, auth, "t1") == 200
    assert _query(seeded, auth, "t2") == 403
    assert _query(seeded, auth, None) == 403, "an unfiltered query could return another tenant's apps"
