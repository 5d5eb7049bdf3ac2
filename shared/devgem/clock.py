"""Time and ids in one place, so stage timings and ids are comparable everywhere."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """12 lowercase hex characters: short enough for revision names, 48 random bits."""
    return secrets.token_hex(6)
