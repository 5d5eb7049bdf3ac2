"""The insertIds this instance committed lately, so a redelivered line is settled without a write."""

from __future__ import annotations

from collections import OrderedDict

from devgem.logs.pending import LineKey

MAX_REMEMBERED = 200_000  # committed insertIds kept for dropping duplicates (~30 MB)


class RecentIds:
    """Not thread-safe: the writer calls it under its lock."""

    def __init__(self, remember: float) -> None:
        self.remember = remember
        self._at: OrderedDict[LineKey, float] = OrderedDict()  # committed key -> when

    def __contains__(self, key: LineKey) -> bool:
        return key in self._at

    def add(self, key: LineKey, at: float) -> None:
        self._at[key] = at

    def forget_old(self, now: float) -> None:
        while self._at:
            key, at = next(iter(self._at.items()))
            if now - at < self.remember and len(self._at) <= MAX_REMEMBERED:
                break
            del self._at[key]
