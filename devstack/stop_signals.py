"""Ctrl-C, SIGTERM and a closed terminal (SIGHUP) all stop `make run` the same way: every child
stopped, Firestore's data exported first.

SIGINT gets devstack's own handler rather than Python's default KeyboardInterrupt: a shell that
starts a command in the background sets SIGINT to ignored, and Python then leaves it ignored. A
handled signal is also what the children should inherit: exec resets a handled signal to its
default, while an ignored one would stay ignored in every server devstack starts.

A closed terminal sends SIGHUP to the session leader only. Under an interactive shell that is the
shell, which passes it on to its jobs; but when `make run` is the terminal's own command (a tmux
window, `ssh host make run`), make is the leader, and make waits for its children without passing
SIGHUP on. So devstack also watches its controlling terminal and sends itself SIGHUP once it is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(BaseException):
    """Raised in the main thread by the first stop signal, so a stack still starting or a deploy
    still running is interrupted too. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(self.signal.name)


class StopSignals:
    """The first stop signal raises StopRequested; once stopping has begun (`shield`), signals only
    take note, so a second Ctrl-C or the hangup that follows a SIGTERM cannot cut the stop short."""

    def __init__(self, hangup_log: Path) -> None:
        self.hangup_log = hangup_log
        self.received: signal.Signals | None = None
        self._shielded = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Install the handlers before any child starts, so each child inherits SIGINT at its default."""
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        done = threading.Event()
        if _terminal_open():
            threading.Thread(target=_hang_up_with_terminal, args=(done,), name="terminal-watch", daemon=True).start()
        try:
            yield self
        finally:
            done.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def shield(self) -> None:
        """From here on a signal only takes note: the stop that follows must run to its end."""
        self._shielded = True

    @staticmethod
    def wait() -> None:
        """Sleep until a stop signal raises StopRequested."""
        while True:
            signal.pause()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._leave_terminal()
        first = self.received is None
        self.received = self.received or signal.Signals(signum)
        if first and not self._shielded:
            raise StopRequested(signum)

    def _leave_terminal(self) -> None:
        """A hung-up terminal fails every write (EIO), and a failed print must not cut the stop short:
        from here on stdout and stderr go to a log file instead."""
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        self.hangup_log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.hangup_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)


def _terminal_open() -> bool:
    """Whether this process has a controlling terminal (after a hangup, /dev/tty no longer opens)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _hang_up_with_terminal(done: threading.Event, every: float = 1.0) -> None:
    while not done.wait(every):
        if not _terminal_open():
            os.kill(os.getpid(), signal.SIGHUP)
            return
