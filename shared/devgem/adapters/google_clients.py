"""Client options for the Google API clients: the real endpoint, or a local one when configured.

A local endpoint (the localcloud stand-in) speaks the same REST API over plain HTTP, so the
production adapters below run unchanged against it.
"""

from __future__ import annotations

from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials


def client_kwargs(endpoint: str) -> dict[str, Any]:
    if not endpoint:
        return {}
    return {
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=endpoint),
        "credentials": AnonymousCredentials(),
    }
