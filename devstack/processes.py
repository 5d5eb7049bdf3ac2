"""Child processes that are always stopped: each runs in its own process group, so stopping it
also stops whatever it started (java under a wrapper, revisions under localcloud)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct free ports: each socket stays bound until all are found, so the kernel cannot hand the
    same port out twice (as it may to one bind-and-close after another)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int) -> bool:
    """True if a server could listen there (connections lingering in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Child:
    name: str
    args: Sequence[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log_offset: int = field(default=0, init=False)  # where this run's output starts in log_path

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.args),
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def output(self) -> str:
        """What this run has written to its log so far."""
        with self.log_path.open("rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            os.killpg(self.process.pid, signal.SIGCONT)  # a frozen process could not act on the signal
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crashed instance looks like."""
        self.stop(signal.SIGKILL)

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) the whole group: a server that accepts connections and never answers."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, child: Child | None = None, every: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{what}: {child.name} exited early. Its log ({child.log_path}):\n{child.tail()}")
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(every)
    detail = f" Its log ({child.log_path}):\n{child.tail()}" if child else ""
    raise TimeoutError(f"{what} was not ready after {timeout:.0f} s.{detail}")


def wait_for_value(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """The first truthy value `check` gives, polled as wait_until polls (a refused connection is "not yet")."""
    seen: list[T | None] = [None]

    def holds() -> bool:
        seen[0] = check()
        return bool(seen[0])

    wait_until(holds, timeout, what, every=every)
    assert seen[0] is not None
    return seen[0]


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2).status_code == 200
