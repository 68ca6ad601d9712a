"""What every dynamic provider that calls Azure Resource Manager (ARM) itself
shares: one signed request with its retries, and the wait for a long-running
operation.

Pulumi stores a dynamic provider by reference (dill) and runs it in its own
process, which imports this module from the installed repository; so providers
inherit from `ArmProvider` and need nothing but the standard library at run
time (and `azure-identity` once they sign in).
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

from pulumi import dynamic


class ArmProvider(dynamic.ResourceProvider):
    """A dynamic provider that talks to ARM through `request` and `wait`.

    The class attributes are the knobs a test turns down (or points at a fake
    ARM): where ARM is, how long an operation may take, how often it is polled.
    """

    endpoint = "https://management.azure.com"
    # An ARM operation that has not finished by then has failed for us.
    timeout_seconds = 600.0
    poll_seconds = 5.0
    # However soon a reply asks to be retried, no sooner than this.
    min_retry_seconds = 1.0
    request_seconds = 60.0
    # A role assignment reaches ARM within minutes; a 403 is retried that long.
    grant_seconds = 300.0
    # An ARM token lives 60-90 minutes; a change that takes longer (a rollout
    # that bakes) signs in again well before its token expires.
    token_seconds = 1800.0
    bearer = ""
    signed_at = -math.inf

    def token(self) -> str:
        # Imported here: only a real deployment needs credentials (an Azure CLI
        # login, workload identity in CI, a managed identity), never a plan.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return credential.get_token(f"{self.endpoint}/.default").token

    def authorization(self) -> str:
        """The bearer token of this change, fetched once per `token_seconds`."""
        if not self.bearer or time.monotonic() - self.signed_at >= self.token_seconds:
            self.bearer = self.token()
            self.signed_at = time.monotonic()
        return f"Bearer {self.bearer}"

    def request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> tuple[int, Message, dict[str, Any]]:
        """One ARM call: its status, its headers (looked up case-insensitively),
        its JSON body. Throttling, server errors and a dropped connection are
        retried until `deadline` (default: `timeout_seconds` from now); a refusal
        (403) only for `grant_seconds`, the time a new role assignment takes to
        reach ARM; anything else fails at once."""
        data = json.dumps(body).encode() if body is not None else None
        started = time.monotonic()
        if deadline is None:
            deadline = started + self.timeout_seconds
        grant_deadline = min(deadline, started + self.grant_seconds)
        while True:
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Authorization", self.authorization())
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=self.request_seconds) as response:
                    status, headers, raw = response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")[:500]
                transient = error.code == 429 or error.code >= 500
                until = deadline if transient else grant_deadline if error.code == 403 else None
                if until is None or time.monotonic() >= until:
                    raise RuntimeError(f"{method} {url}: HTTP {error.code}: {detail}") from None
                self.pause(error.headers, until)
                continue
            except (OSError, http.client.HTTPException) as error:  # URLError is an OSError.
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{method} {url}: {error!r}") from None
                self.pause(Message(), deadline)
                continue
            try:
                return status, headers, json.loads(raw or b"{}")
            except ValueError:  # Not JSON, or not UTF-8.
                detail = raw[:200].decode(errors="replace")
                raise RuntimeError(f"{method} {url}: HTTP {status}: not JSON: {detail}") from None

    def pause(self, headers: Message, deadline: float) -> None:
        """Sleep as long as the reply's Retry-After asks (at least
        `min_retry_seconds`), never past `deadline`."""
        try:
            delay = float(headers.get("Retry-After", self.poll_seconds))
        except ValueError:  # An HTTP date instead of seconds.
            delay = self.poll_seconds
        if not math.isfinite(delay):
            delay = self.poll_seconds
        delay = max(delay, self.min_retry_seconds)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def wait(self, status_code: int, headers: Message) -> None:
        """Follow an asynchronous operation until it ends, or time out.

        ARM names the operation by `Azure-AsyncOperation`, whose body carries a
        status, or by `Location`, which answers 202 until the operation is done.
        """
        operation = headers.get("Azure-AsyncOperation")
        location = headers.get("Location") if status_code == 202 else None
        if not (operation or location):
            return
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            self.pause(headers, deadline)
            code, headers, body = self.request("GET", operation or location, deadline=deadline)
            if operation:
                status = str(body.get("status", "")).lower()
                if status == "succeeded":
                    return
                if status in ("failed", "canceled"):
                    raise RuntimeError(f"ARM operation {status}: {json.dumps(body.get('error'))}")
            else:
                status = "running"
                if code != 202:
                    return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"ARM operation still {status or 'running'} after {self.timeout_seconds} s"
                )
