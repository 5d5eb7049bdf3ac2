"""The one way a test waits: poll a check until it holds, never sleep a fixed time and hope.

It reuses devstack's poll loop (devstack.processes.wait_until, which also waits for the servers),
adding what a test needs: the value that satisfied the check, and the last value seen when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from devstack.processes import wait_until

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Return the first truthy value `check` gives; fail naming `what` if none comes within `timeout`."""
    seen: list[T] = []

    def holds() -> bool:
        seen[:] = [check()]
        return bool(seen[0])

    try:
        wait_until(holds, timeout, what)
    except TimeoutError:
        last = repr(seen[0])[:2000] if seen else "(the check never returned)"
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}") from None
    return seen[0]
