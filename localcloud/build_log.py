"""A build's log: every line goes to its log.txt (served at logUrl) and to ``log-entry`` as a LogEntry."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from localcloud.logs import LogSink, build_resource, log_name, make_entry


class BuildLog:
    def __init__(self, path: Path, sink: LogSink, log_project: str, build_project: str, build_id: str) -> None:
        self._path = path
        self._sink = sink
        self._log_project = log_project  # the project localcloud serves, whose logs these are
        self._build_project = build_project
        self._build_id = build_id
        self._seq = 0  # lines written, for stable insertIds
        self._file: IO[str] | None = None

    def line(self, step: str, text: str, severity: str = "INFO") -> None:
        """One line of step's output ("" for the build's own lines, e.g. FETCHSOURCE or DONE)."""
        self._seq += 1
        if self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("a", encoding="utf-8")
        self._file.write(f"{step}: {text}\n" if step and step != "FETCHSOURCE" else f"{text}\n")
        self._file.flush()
        self._sink.emit(
            make_entry(
                log_name=log_name(self._log_project, "cloudbuild"),
                resource=build_resource(self._build_project, self._build_id),
                insert_id=f"{self._build_id}-{self._seq:08d}",
                line=text,
                severity=severity,
                labels={"build_step": step} if step else {},
            )
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
