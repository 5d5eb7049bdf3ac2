"""The local Slack Web API: what devstack's functions post to instead of slack.com.

The functions use the real slack-sdk WebClient with `base_url` pointed here (DEVGEM_SLACK_API_URL),
so what this receiver records is exactly what Slack would have received. It answers
`chat.postMessage` and `auth.test`, keeps every message (in memory, and one JSON line each in
`<state>/slack/messages.jsonl`, so `make run` and a crashed test can show them), serves them at
`GET /messages`, takes interactivity answers on `/actions/...` (a payload's response_url), and,
when told (`POST /control/rate-limit?n=2&retry_after=1`), answers the next n
calls 429 with Retry-After, as Slack does when a channel gets more than about a message a second.

`signed_headers` signs an interactivity request with the local signing secret, as Slack would.

Run: python -m devstack.slack_receiver PORT STATE_DIR
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from slack_sdk.signature import SignatureVerifier

# devstack sets DEVGEM_SLACK_SIGNING_SECRET and a tenant's bot token to these; they guard nothing real.
LOCAL_SIGNING_SECRET = "devstack-local-signing-secret"
LOCAL_BOT_TOKEN = "xoxb-devstack-local"
STARTED = "slack receiver listening"


def signed_headers(body: bytes, secret: str = LOCAL_SIGNING_SECRET, at: float | None = None) -> dict[str, str]:
    """The headers Slack sends with an interactivity request; `at` older than 5 minutes makes a replay."""
    timestamp = str(int(time.time() if at is None else at))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def interactivity_body(payload: dict[str, Any]) -> bytes:
    """How Slack sends an interactivity payload: a form with one field, `payload`, holding JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


class Receiver:
    def __init__(self, state_dir: Path) -> None:
        self.messages: list[dict[str, Any]] = []
        self.file = state_dir / "slack" / "messages.jsonl"
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.limited = 0  # the next this-many calls answer 429
        self.retry_after = 1
        self.refused = 0  # 429s answered so far
        self.ts = itertools.count(1)

    def rate_limited(self) -> int | None:
        with self.lock:
            if self.limited > 0:
                self.limited -= 1
                self.refused += 1
                return self.retry_after
            return None

    def record(self, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            message = {**message, "ts": f"{int(time.time())}.{next(self.ts):06d}", "receivedAt": time.time()}
            self.messages.append(message)
            with self.file.open("a") as f:
                f.write(json.dumps(message) + "\n")
            return message


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            sys.stdout.write(f"slack receiver: {format % args}\n")

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _form_or_json(self) -> dict[str, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "json" in (self.headers.get("Content-Type") or ""):
                data = json.loads(raw or b"{}")
                return data if isinstance(data, dict) else {}
            return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/messages":
                with receiver.lock:
                    self._send(200, {"messages": list(receiver.messages), "rateLimited": receiver.refused})
            else:
                self._send(404, {"ok": False, "error": "unknown_method"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            if url.path == "/control/rate-limit":
                query = parse_qs(url.query)
                with receiver.lock:
                    receiver.limited = int(query.get("n", ["1"])[0])
                    receiver.retry_after = int(query.get("retry_after", ["1"])[0])
                self._send(200, {"ok": True})
                return
            data = self._form_or_json()
            if url.path.startswith("/actions/"):
                # A response_url: what Slack shows the person who pressed a button (no token: the URL is it).
                receiver.record({"method": "response_url", "path": url.path, **data})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            method = url.path.removeprefix("/api/")
            authorized = (self.headers.get("Authorization") or "").startswith("Bearer xoxb-")
            if not authorized:
                self._send(200, {"ok": False, "error": "not_authed"})
                return
            retry_after = receiver.rate_limited()
            if retry_after is not None:
                self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
                return
            if method == "auth.test":
                self._send(200, {"ok": True, "team_id": "T-LOCAL", "user_id": "U-DEVGEM-BOT", "bot_id": "B-LOCAL"})
            elif method == "chat.postMessage":
                if not data.get("channel"):
                    self._send(200, {"ok": False, "error": "channel_not_found"})
                    return
                # The token is never recorded: a test can see that one was sent, not what it was.
                message = receiver.record({"method": method, **data})
                self._send(200, {"ok": True, "channel": data["channel"], "ts": message["ts"], "message": data})
            else:
                self._send(200, {"ok": False, "error": "unknown_method"})

    return Handler


def summary(message: dict[str, Any]) -> str:
    """One line for `make run`: where it went, its text, and the buttons a user would see."""
    blocks = message.get("blocks") or []
    buttons = [
        e.get("text", {}).get("text", "")
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "actions"
        for e in b.get("elements", [])
        if isinstance(e, dict)
    ]
    where = f"{message.get('channel')}" + (f" (thread {message['thread_ts']})" if message.get("thread_ts") else "")
    shown = f"Slack {where}: {message.get('text', '')}"
    return shown + (f"  [{'] ['.join(buttons)}]" if buttons else "")


def follow(path: Path, show: Callable[[str], None], stop: threading.Event, every: float = 0.5) -> None:
    """Show each message as the receiver records it (from its file, so any process can follow it)."""
    shown = len(path.read_text().splitlines()) if path.exists() else 0  # earlier runs' were shown then
    while not stop.wait(every):
        if not path.exists():
            continue
        lines = path.read_text().splitlines()
        for line in lines[shown:]:
            with contextlib.suppress(ValueError):
                show(summary(json.loads(line)))
        shown = len(lines)


def main() -> None:
    port, state_dir = int(sys.argv[1]), Path(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(Receiver(state_dir)))
    print(f"{STARTED} on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
