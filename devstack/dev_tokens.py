"""Local sign-in: a key pair that devstack creates, and ID tokens shaped like Identity Platform's.

Only for DEVGEM_AUTH_MODE=dev; production tokens come from Identity Platform.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from devgem.entrypoints.auth import TENANT_CLAIM, issuer

KEY_FILE = "dev-auth-key.pem"
CERT_FILE = "dev-auth-cert.pem"
KEY_ID = "dev"


def ensure_keys(directory: Path) -> tuple[Path, Path]:
    """Create the key and self-signed certificate once; later runs reuse them."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devgem local sign-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def mint(key_path: Path, project: str, tenant_id: str, user_id: str, lifetime_seconds: int = 3600) -> str:
    signer = crypt.RSASigner.from_string(key_path.read_text(), key_id=KEY_ID)
    now = int(time.time())
    payload = {
        "iss": issuer(project),
        "aud": project,
        "sub": user_id,
        "user_id": user_id,
        "auth_time": now,
        "iat": now,
        "exp": now + lifetime_seconds,
        TENANT_CLAIM: tenant_id,
    }
    token: bytes = jwt.encode(signer, payload)
    return token.decode()
