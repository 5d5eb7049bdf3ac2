"""`python -m devstack run` stops every process it started, and saves Firestore's data, on SIGHUP (a
closed terminal) and on SIGINT even when it started with SIGINT ignored (a script's background job)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devgem import topology
from devstack.processes import wait_until
from devstack.stack import REPO

pytestmark = pytest.mark.e2e

# Starts devstack the way a non-interactive shell starts a background job: SIGINT ignored, across exec.
IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'devstack', *sys.argv[1:]])"
)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session) of a live process, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3])


def _processes() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None:
            found[int(entry.name)] = stat
    return found


def _sessions_below(root: int) -> set[int]:
    """The sessions of every descendant of root: each server devstack starts leads its own session,
    and whatever a server starts in turn (localcloud's builds and revisions) leads another below it."""
    table = _processes()
    family, grew = {root}, True
    while grew:
        below = {pid for pid, (_, ppid, _) in table.items() if ppid in family}
        grew = not below <= family
        family |= below
    return {table[pid][2] for pid in family - {root} if pid in table}


def _still_running(sessions: set[int]) -> set[int]:
    """Those of the sessions with a process still running (a zombie holds no port; it waits only for its
    reaper). Each session's leader also leads its process group, so its id is the group's id too."""
    return {sid for state, _, sid in _processes().values() if sid in sessions and state != "Z"}


class _Output:
    """The run's stdout, read as it comes, so the test can wait on a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        self._lock = threading.Lock()
        assert process.stdout is not None
        self._stream = process.stdout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            with self._lock:
                self.text += line

    def has(self, needle: str) -> bool:
        with self._lock:
            return needle in self.text


@pytest.mark.parametrize(
    ("sig", "launcher"),
    [
        pytest.param(signal.SIGHUP, ["-m", "devstack"], id="SIGHUP"),
        pytest.param(signal.SIGINT, ["-c", IGNORING_SIGINT], id="SIGINT-started-ignored"),
    ],
)
def test_a_stop_signal_stops_every_process_and_saves_firestore(
    tmp_path: Path, sig: signal.Signals, launcher: list[str]
) -> None:
    state = tmp_path / "devgem"
    args = [sys.executable, *launcher, "run", "--free-ports", "--state-dir", str(state)]
    process = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    output = _Output(process)
    sessions: set[int] = set()
    try:
        running = "Devgem is running"
        wait_until(lambda: output.has(running) or process.poll() is not None, 300, running)
        assert output.has(running), output.text

        sessions = _sessions_below(process.pid)
        servers = 3 + len(topology.FUNCTIONS) + len(topology.WORKERS)  # emulators, localcloud, functions, workers
        assert len(sessions) >= servers, output.text

        process.send_signal(sig)
        assert process.wait(timeout=120) == 0, output.text
        # localcloud has SIGKILLed its revisions' groups before it exits; their exit may trail by a moment.
        wait_until(lambda: not _still_running(sessions), 15, "every process devstack started to exit")
        assert list((state / "firestore-data" / "current").glob("**/*.overall_export_metadata")), output.text
    finally:  # a failed run must not leave its servers holding ports for the tests after it
        if process.poll() is None:
            process.kill()
            process.wait()
        for group in _still_running(sessions):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
