"""Before the platform announces a URL it has fetched it.

`*.localhost` names are loopback by definition (RFC 6761) but not every resolver knows that, so
the probe connects to 127.0.0.1 for them and sends the name in the Host header, as a browser does.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import requests


def answers(url: str, timeout_seconds: float, interval_seconds: float = 0.1) -> tuple[bool, str]:
    """Poll until the URL answers below 500; return (ok, what was last seen)."""
    target, headers = _loopback_for_localhost(url)
    deadline = time.monotonic() + timeout_seconds
    last = "no answer yet"
    while True:
        try:
            response = requests.get(target, headers=headers, timeout=5, allow_redirects=False)
            if response.status_code < 500:
                return True, f"HTTP {response.status_code}"
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(interval_seconds)


def _loopback_for_localhost(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.endswith(".localhost"):
        return url, {}
    netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), {"Host": parts.netloc}
