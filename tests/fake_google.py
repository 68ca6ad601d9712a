"""The plumbing of the small Google API fakes the dynamic providers' tests serve
on 127.0.0.1 (Vertex AI, Cloud Monitoring): JSON replies and errors in Google's
shape and the request as received (tests/local_http.py serves it). Each test
module's handler answers as its own fake."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    """An error body as Google's APIs return it."""
    return {"error": {"code": code, "message": message, "status": status}}


class GoogleHandler(BaseHTTPRequestHandler):
    """Replies as Google's front ends do; subclasses answer in `serve`."""

    # Headers and body leave in two writes; without this the body waits for
    # the client's delayed acknowledgement of the headers.
    disable_nagle_algorithm = True
    # Connections kept open between requests, as Google's front ends do.
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        return

    def reply(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def received(self) -> tuple[str, dict[str, str], Any]:
        """The request's path, query (first value of each key) and JSON body."""
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        url = urlsplit(self.path)
        return url.path, {key: values[0] for key, values in parse_qs(url.query).items()}, body

    def serve(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self.serve()

    def do_POST(self) -> None:
        self.serve()

    def do_PATCH(self) -> None:
        self.serve()

    def do_DELETE(self) -> None:
        self.serve()
