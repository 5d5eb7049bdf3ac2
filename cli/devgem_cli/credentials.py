"""How the CLI reads Firestore: the emulator locally; in production, as the signed-in user."""

from __future__ import annotations

import os
from typing import Any

from google.auth.credentials import Credentials

from devgem_cli.config import Config
from devgem_cli.errors import CliError


def firestore_client(config: Config) -> Any:
    """A Firestore client: the emulator locally; in production, the user's ID token (security rules apply)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    project = config.project or "devgem-local"
    if config.firestore_emulator_host:
        os.environ["FIRESTORE_EMULATOR_HOST"] = config.firestore_emulator_host
        return firestore.Client(project=project, credentials=AnonymousCredentials())

    return firestore.Client(project=project, credentials=_IdToken(config.token))


class _IdToken(Credentials):
    """The signed-in user's Identity Platform ID token as a bearer token: Firestore applies the
    security rules to it, so the CLI reads exactly what the web app may read."""

    def __init__(self, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # the base class leaves __init__ unannotated
        self.token = token

    def refresh(self, request: Any) -> None:
        raise CliError("the sign-in expired: sign in again")
