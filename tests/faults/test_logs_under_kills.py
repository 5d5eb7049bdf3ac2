"""Live logs while the log_entry worker is killed -9 twice: every line stored once, paged once.

The operator's run behind issue #15 (bench/faults_logs.py does it; `make bench-faults` repeats it):
4,000 lines at 200/s, the worker killed outright at +8 s and +18 s and restarted each time, as Cloud
Run would. Before the fix, each of 6 such runs lost 6 to 20 consecutive lines (the Pub/Sub emulator
drops what a dead consumer held when the subscription has a retry policy), 4 of them stored 12 to 57
lines twice (a restarted worker could not know what the dead one had committed), and 3 returned 3 to
57 lines twice across `after=` pages (the api deduped within one response only). See docs/logs.md,
"Faults".
"""

from __future__ import annotations

from bench import faults_logs
from devstack.stack import Stack


def test_every_line_is_stored_once_and_paged_once_though_the_worker_is_killed_twice(stack: Stack) -> None:
    # run() waits until every line is stored and the killed instances' leases (the ack deadline
    # after the last kill) have run out, the last moment Pub/Sub can hand back a line they held.
    result = faults_logs.run(stack, lines=4000, rate=200.0, kills_at=(8.0, 18.0), settle_timeout=45.0)
    print(result)
    assert result["kills"] == 2
    assert result["lost"] == 0, f"lines never stored: {result}"
    assert result["dup_stored"] == 0, f"lines stored twice: {result}"
    assert result["missing_pages"] == 0 and result["dup_pages"] == 0, f"paging through the api: {result}"
    assert result["returned"] == 4000
