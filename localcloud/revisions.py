"""A revision's instance: the app process on its own port, supervised as Cloud Run would.

Each start is a new "instance" (new process group, new port, new instanceId label). The first start
of a deploy must listen on $PORT within the startup timeout or the deploy fails with the app's last
lines of output. Once it has served, an exit is a crash: Cloud Run would start a new instance, so
the supervisor restarts it with exponential backoff (1 s doubling to 30 s, reset after a minute of
uptime) and logs "Container called exit(N)." to run.googleapis.com/varlog/system, where a crash
detector looks for it. Output is read by tasks and published asynchronously; the app never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections import deque
from collections.abc import Mapping
from typing import Any

from localcloud import procs
from localcloud.config import Config
from localcloud.images import Artifact
from localcloud.logs import LogSink, log_name, make_entry, pump_lines, revision_resource

log = logging.getLogger(__name__)

_BACKOFF_MAX = 30.0
_STABLE_AFTER = 60.0  # seconds of uptime after which a crash restarts without delay again
_PASS_ENV = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")


class StartFailure(Exception):
    """The revision did not start listening; the message quotes its last lines of output."""


class Instance:
    def __init__(
        self,
        config: Config,
        sink: LogSink,
        service: str,
        revision: str,
        artifact: Artifact,
        container_env: Mapping[str, str],
        command: list[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        # The revision template's labels: Cloud Run copies them into every LogEntry's labels, which
        # is how the crash sink tells Devgem's apps (devgem-managed=true) from anything else.
        self.labels = dict(labels or {})
        self._sink = sink
        self.service = service
        self.revision = revision
        self._artifact = artifact
        self._container_env = dict(container_env)
        self._command = command or artifact.command
        self.port = 0
        self.state = "stopped"  # stopped, starting, ready, failed
        self.pid = 0
        self.tail: deque[str] = deque(maxlen=20)
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._first: asyncio.Future[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._transition = asyncio.Lock()
        self._uptime = 0.0
        self._instance_id = ""
        self._seq = 0
        self._resource = revision_resource(config.project, config.region, service, revision)

    # ---- control ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start (if not running) and wait until the app listens; StartFailure if it never does."""
        async with self._transition:  # never overlaps a stop() still killing the previous instance
            if self._task is None or self._task.done():
                self._stopping = False
                self._first = asyncio.get_running_loop().create_future()
                self._task = asyncio.create_task(self._supervise(), name=f"revision-{self.revision}")
        if self.state == "ready":
            return
        assert self._first is not None
        await asyncio.shield(self._first)

    async def stop(self) -> None:
        """Stop the instance: SIGTERM to its process group, SIGKILL after 5 s (Cloud Run gives 10 s)."""
        async with self._transition:
            self._stopping = True
            proc, task = self._proc, self._task
            if proc is not None and proc.returncode is None:
                await procs.kill_group(proc, grace=5.0)
            elif proc is not None:
                procs.signal_group(proc, signal.SIGKILL)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._fail_first(f"revision {self.revision} was stopped while starting")
            self.state = "stopped"
            self._ready.clear()
            log.info("revision %s stopped", self.revision)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait up to timeout for a serving instance (e.g. while a crashed one restarts)."""
        if self.state == "ready":
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.state == "ready"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ---- supervision ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 1.0
        served = False
        reason = "DEPLOYMENT"
        while not self._stopping:
            outcome = await self._run_once(reason)
            if outcome == "stopped":
                break
            if not served and outcome != "served":
                # The deploy's first start failed: report it and give up, as a failed revision does.
                self.state = "failed"
                self._fail_first(self._failure_message(outcome))
                return
            if outcome == "served":
                served = True
            uptime = outcome == "served" and self._uptime >= _STABLE_AFTER
            backoff = 1.0 if uptime else backoff
            self.state = "starting"
            self._ready.clear()
            self.restarts += 1
            log.warning("revision %s exited; restarting in %.0f s", self.revision, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
            reason = "AUTOSCALING"

    async def _run_once(self, reason: str) -> str:
        """One instance's life. Returns "served" (it listened, then exited), "exited" (exited before
        listening), "timeout" (never listened) or "stopped"."""
        loop = asyncio.get_running_loop()
        self.port = procs.free_port(self._config.host)
        self._instance_id = secrets.token_hex(32)
        self._seq = 0
        self.state = "starting"
        why = "a new deployment" if reason == "DEPLOYMENT" else "a restart after the previous instance exited"
        self._system(f"Starting new instance. Reason: {reason} - Instance started because of {why}.")
        try:
            proc = await procs.spawn(self._command, self._artifact.cwd, self._env())
        except OSError as e:
            self.tail.append(f"cannot start {self._command[0]}: {e}")
            self._system(f"Container failed to start: {e}", "ERROR")
            return "exited"
        self._proc, self.pid = proc, proc.pid
        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(
            pump_lines(proc.stdout, lambda line: self._line("stdout", line)),
            pump_lines(proc.stderr, lambda line: self._line("stderr", line)),
        )
        try:
            started = loop.time()
            deadline = started + self._config.startup_timeout
            attempts = 0
            while proc.returncode is None and loop.time() < deadline and not self._stopping:
                attempts += 1
                if await procs.port_open("127.0.0.1", self.port):
                    break
                await asyncio.sleep(0.1)
            else:
                if self._stopping:
                    return "stopped"
                if proc.returncode is None:  # never listened: stop it
                    self._system(
                        f"Default STARTUP TCP probe failed {attempts} times consecutively for container "
                        f'"app" on port {self.port}. The instance was not started.',
                        "ERROR",
                    )
                    await procs.kill_group(proc, grace=2.0)
                    return "timeout"
                await self._wait_output(readers)
                self._exited(proc.returncode)
                return "exited"

            self._system(
                f"Default STARTUP TCP probe succeeded after {attempts} attempt{'s' if attempts > 1 else ''} "
                f'for container "app" on port {self.port}.'
            )
            self.state = "ready"
            self._ready.set()
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            code = await proc.wait()
            self._uptime = loop.time() - started
            await self._wait_output(readers)
            procs.signal_group(proc, signal.SIGKILL)  # whatever it left behind
            if self._stopping:
                return "stopped"
            self._exited(code)
            return "served"
        finally:
            if proc.returncode is None:
                await asyncio.shield(procs.kill_group(proc, grace=5.0))
            procs.discard(readers)

    def _fail_first(self, message: str) -> None:
        if self._first is not None and not self._first.done():
            self._first.set_exception(StartFailure(message))
            self._first.exception()  # retrieved: no "never retrieved" warning if nobody waits

    @staticmethod
    async def _wait_output(readers: asyncio.Future[Any]) -> None:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(readers), 2.0)

    def _exited(self, code: int) -> None:
        if code < 0:
            text, severity = f"Container terminated on signal {-code}.", "ERROR"
        else:
            text, severity = f"Container called exit({code}).", "WARNING" if code == 0 else "ERROR"
        self._system(text, severity)
        log.warning("%s/%s: %s", self.service, self.revision, text)

    def _failure_message(self, outcome: str) -> str:
        if outcome == "timeout":
            why = (
                f"failed to start and listen on the port defined by the PORT={self.port} environment variable "
                f"within {self._config.startup_timeout:g} s"
            )
        else:
            why = f"exited before listening on the port defined by the PORT={self.port} environment variable"
        lines = "\n".join(self.tail) or "(no output)"
        return (
            f"Revision '{self.revision}' is not ready and cannot serve traffic. The user-provided container "
            f"{why}. Last lines of its output:\n{lines}"
        )

    def _env(self) -> dict[str, str]:
        path = os.pathsep.join([*self._artifact.path_prepend, os.environ.get("PATH", "/usr/bin:/bin")])
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        env.update(self._artifact.env)
        env.update(self._container_env)
        env.update(
            PATH=path,
            PORT=str(self.port),
            K_SERVICE=self.service,
            K_REVISION=self.revision,
            K_CONFIGURATION=self.service,
        )
        return env

    # ---- logs -------------------------------------------------------------------------------

    def _line(self, stream: str, line: str) -> None:
        self.tail.append(line)
        self._seq += 1
        self._sink.emit(
            make_entry(
                log_name=log_name(self._config.project, f"run.googleapis.com/{stream}"),
                resource=self._resource,
                insert_id=f"{self._instance_id[:16]}-{self._seq:08d}",
                line=line,
                severity="ERROR" if stream == "stderr" else "DEFAULT",
                labels={**self.labels, "instanceId": self._instance_id},
                parse_json=True,
            )
        )

    def _system(self, text: str, severity: str = "INFO") -> None:
        self._seq += 1
        self._sink.emit(
            make_entry(
                log_name=log_name(self._config.project, "run.googleapis.com/varlog/system"),
                resource=self._resource,
                insert_id=f"{self._instance_id[:16]}-s{self._seq:08d}",
                line=text,
                severity=severity,
                labels={**self.labels, "instanceId": self._instance_id},
            )
        )
