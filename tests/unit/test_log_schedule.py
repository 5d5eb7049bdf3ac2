"""The flusher's rule, with numbers for the clock: when the open flush is due."""

from concurrent.futures import Future
from datetime import UTC, datetime

from devgem.logs.chunks import Target
from devgem.logs.entries import RUN, LogLine
from devgem.logs.pending import PendingFlush
from devgem.logs.schedule import Cadence, due

CADENCE = Cadence(max_wait=0.1, eager_below=20, quiet=0.005, max_commits=2)
APP = Target("tenant-a", "app000000001", None)


def flush_of(n: int, first_at: float, last_at: float) -> PendingFlush:
    flush = PendingFlush()
    for i in range(n):
        at = first_at if i == 0 else last_at
        flush.add(
            (APP.app_id, f"i-{i}"), APP, LogLine(f"i-{i}", datetime.now(UTC), "INFO", "x", RUN, "stdout"), Future(), at
        )
    return flush


def test_nothing_pending_waits_to_be_notified() -> None:
    assert due(PendingFlush(), now=5.0, busy=0, committing=0, cadence=CADENCE) is None


def test_a_quiet_trickle_is_due_at_once() -> None:
    assert due(flush_of(3, 1.0, 1.0), now=1.006, busy=0, committing=0, cadence=CADENCE) == 0


def test_a_trickle_that_just_arrived_waits_only_the_quiet_time() -> None:
    wait = due(flush_of(3, 1.0, 1.0), now=1.0, busy=0, committing=0, cadence=CADENCE)
    assert wait is not None and 0 < wait <= CADENCE.quiet


def test_while_a_batch_is_routed_the_cadence_applies() -> None:
    wait = due(flush_of(3, 1.0, 1.0), now=1.03, busy=1, committing=0, cadence=CADENCE)
    assert wait is not None and abs(wait - 0.07) < 1e-9
    assert due(flush_of(3, 1.0, 1.0), now=1.2, busy=1, committing=0, cadence=CADENCE) == 0


def test_many_lines_wait_for_the_cadence_even_when_quiet() -> None:
    wait = due(flush_of(25, 1.0, 1.0), now=1.05, busy=0, committing=0, cadence=CADENCE)
    assert wait is not None and wait > 0


def test_no_more_than_max_commits_in_flight() -> None:
    assert due(flush_of(3, 1.0, 1.0), now=9.0, busy=0, committing=2, cadence=CADENCE) is None
