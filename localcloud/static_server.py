"""A tiny static file server for static-site revisions: ``python static_server.py DIR``, port from $PORT.

Run as a standalone script (no localcloud imports) because it is the "container" of a static site.
It logs one line per request to stdout, like the nginx of a static buildpack, so requests show up
as runtime logs, and answers 404 with a small page for missing files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stdout.write(f"{self.address_string()} {format % args}\n")
        sys.stdout.flush()


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    port = int(os.environ.get("PORT", "8080"))
    handler = functools.partial(Handler, directory=root)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(f"serving {root} on port {port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
