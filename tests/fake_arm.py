"""A small fake of Azure Resource Manager for the dynamic providers' tests,
served on 127.0.0.1 by the test itself: the plumbing every fake shares (a
server started and stopped around a test, replies, the log of what it received)
and a provider pointed at it with its waits turned down to milliseconds."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple, TypeVar

from local_http import serving

from infra.azure.arm import ArmProvider

TOKEN = "test-token"

P = TypeVar("P", bound=ArmProvider)


class Received(NamedTuple):
    """One request as the fake received it."""

    method: str
    path: str
    body: Any
    auth: str

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))


class FakeArm:
    """What every fake ARM keeps: the requests it received, in order."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        # Header names as the server spells them (ARM's casing varies by front end).
        self.lowercase_headers = False

    def methods(self) -> list[str]:
        return [request.method for request in self.requests]


class ArmHandler(BaseHTTPRequestHandler):
    """Replies as ARM does; `serve` binds `arm` to the fake it serves."""

    arm: FakeArm

    def log_message(self, *_args: Any) -> None:
        return

    def reply(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name.lower() if self.arm.lowercase_headers else name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        auth = self.headers.get("Authorization", "")
        self.arm.requests.append(Received(self.command, self.path, body, auth))
        return body

    @property
    def host(self) -> str:
        return f"http://{self.headers['Host']}"


@contextmanager
def serve(arm: FakeArm, handler: type[ArmHandler]) -> Iterator[str]:
    """Serve `arm` on a free local port for the duration; yields its base URL."""
    with serving(type(handler.__name__, (handler,), {"arm": arm})) as url:
        yield url


def local(provider: type[P], url: str, **knobs: Any) -> P:
    """`provider` pointed at the fake at `url`, signed in with `TOKEN`, its
    timeouts in seconds and its polls in hundredths of one."""

    class Local(provider):  # type: ignore[valid-type, misc]
        endpoint = url
        timeout_seconds = 5.0
        poll_seconds = 0.01
        min_retry_seconds = 0.01
        request_seconds = 5.0
        grant_seconds = 1.0

        def token(self) -> str:
            return TOKEN

    for name, value in knobs.items():
        setattr(Local, name, value)
    return Local()
