"""Who is asking: every use case acts for one tenant and one user, and sees only that tenant's data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    tenant_id: str
    user_id: str
