"""Child processes in their own process groups.

Builds (git, pip, npm) and revisions (an app and whatever it forks) each run in a new session, so
cancelling a build or stopping a revision can signal the whole tree with one killpg, and nothing is
left behind when localcloud exits.

A localcloud killed with SIGKILL cannot clean up, so every child carries LOCALCLOUD_OWNER=<workdir>
in its environment, and the next localcloud on that workdir kills whatever still carries it
(leftover apps would otherwise keep their ports and keep logging nowhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from localcloud.logs import pump_lines

OWNER_ENV = "LOCALCLOUD_OWNER"
_owner = ""


def set_owner(workdir: Path) -> None:
    """Mark every child started from now on as belonging to the localcloud of workdir."""
    global _owner
    _owner = str(workdir.resolve())


def kill_leftovers(workdir: Path) -> int:
    """SIGKILL the processes a previous localcloud on workdir left running; return how many."""
    marker = f"{OWNER_ENV}={workdir.resolve()}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


async def spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """Start argv (never through a shell) in a new process group, stdout and stderr piped."""
    child_env = dict(env)
    if _owner:
        child_env[OWNER_ENV] = _owner
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


def signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def kill_group(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if the leader has not exited after grace seconds.

    The SIGKILL goes to the group even when the leader exited, so children that ignored SIGTERM die too.
    """
    signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    signal_group(proc, signal.SIGKILL)
    await proc.wait()


async def run(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str, str], None],
) -> int:
    """Run argv to completion, passing each output line to on_line(stream, line); return the exit code.

    Cancelling the awaiting task kills the process group, so a cancelled or timed-out build stops
    its git, pip or npm at once.
    """
    proc = await spawn(argv, cwd, env)
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(
        pump_lines(proc.stdout, lambda line: on_line("stdout", line)),
        pump_lines(proc.stderr, lambda line: on_line("stderr", line)),
    )
    try:
        code = await proc.wait()
        # A leftover grandchild may hold the pipes open; give the readers a moment, then move on.
        try:
            await asyncio.wait_for(asyncio.shield(readers), 5.0)
        except TimeoutError:
            discard(readers)
        signal_group(proc, signal.SIGKILL)  # a build step leaves nothing running behind it
        return code
    except asyncio.CancelledError:
        discard(readers)
        await asyncio.shield(kill_group(proc, grace=2.0))
        raise


def discard(future: asyncio.Future[Any]) -> None:
    """Cancel a future nobody will await, without asyncio logging "exception was never retrieved"."""
    future.cancel()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the usual small race is acceptable locally)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
