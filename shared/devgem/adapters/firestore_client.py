"""The one lazily created Firestore client of a process.

FIRESTORE_EMULATOR_HOST, when set, points the same client at the emulator.
"""

from __future__ import annotations

from functools import lru_cache

from google.cloud import firestore

from devgem.config import settings


@lru_cache(maxsize=1)
def client() -> firestore.Client:
    return firestore.Client(project=settings().project)
