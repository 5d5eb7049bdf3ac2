"""A tiny web app that Devgem deploys in `make run` and in the end-to-end tests.

Standard library only, so its build needs no package downloads.
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = """<!doctype html>
<html><head><title>Hello from Devgem</title></head>
<body><h1>Hello from Devgem</h1><p>Revision {revision} of service {service}.</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/crash":  # for `make demo`: a crash Devgem's watch should notice
            print("crashing on purpose (GET /crash)", flush=True)
            os._exit(3)
        body = PAGE.format(revision=os.environ.get("K_REVISION", "?"), service=os.environ.get("K_SERVICE", "?"))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"hello-python listening on port {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
