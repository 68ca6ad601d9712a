"""What every dynamic provider that calls the Vertex AI REST API itself shares: one
authorised request with its retries, and the wait for a long-running operation.

Pulumi stores a dynamic provider by reference and runs it in its own process,
which imports this module from the installed repository; so providers inherit
from `VertexApiProvider`. Credentials are Application Default Credentials,
looked up only when a request is made, so a preview never needs them; a test
replaces `credentials` and points `api_root` at a local fake.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from pulumi import dynamic

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.auth.transport.requests import AuthorizedSession
    from requests import Response

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# google.rpc.Code of an operation that found nothing to act on, and of one that
# found what it was asked to make already there.
NOT_FOUND = 5
ALREADY_EXISTS = 6

ENDPOINT_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/endpoints/([^/]+)$")


class EndpointName(NamedTuple):
    project: str
    region: str
    endpoint_id: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/endpoints/{self.endpoint_id}"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def parse_endpoint(name: str) -> EndpointName:
    match = ENDPOINT_NAME.match(name)
    if not match:
        raise ValueError(f"endpoint: {name!r} is not projects/P/locations/R/endpoints/ID")
    return EndpointName(*match.groups())


class ApiError(RuntimeError):
    """A request the API refused, with its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UnansweredError(RuntimeError):
    """A request that may or may not have been carried out (its connection was
    lost, or the server failed) and was not sent again, because sending it twice
    could do it twice."""


class OperationError(RuntimeError):
    """A long-running operation that ended in an error, with its google.rpc.Code."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class OperationTimeoutError(RuntimeError):
    """A long-running operation still running when its time was up."""

    def __init__(self, message: str, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class VertexApiProvider(dynamic.ResourceProvider):
    """A dynamic provider that talks to Vertex AI through `request` and `wait`.

    The class attributes are the knobs a test turns down (or points at a fake):
    where the API is, how long a call retries, how long an operation may take."""

    # Regional REST root (tests point it at a local fake).
    api_root = "https://{region}-aiplatform.googleapis.com/v1"
    # One long-running operation, start to end.
    timeout_seconds = 600.0
    # How long one call keeps retrying throttling, server errors and lost connections.
    retry_seconds = 300.0
    request_seconds = 60.0
    poll_seconds = 10.0
    # However soon a reply asks to be retried, no sooner than this.
    min_retry_seconds = 1.0

    _session: AuthorizedSession | None = None

    def credentials(self) -> Credentials:
        # Imported here: only a real deployment needs credentials, never a plan.
        import google.auth

        credentials, _project = google.auth.default(scopes=SCOPES)
        return credentials

    def session(self) -> AuthorizedSession:
        if self._session is None:
            from google.auth.transport.requests import AuthorizedSession

            self._session = AuthorizedSession(self.credentials())
        return self._session

    def root(self, endpoint: EndpointName) -> str:
        return self.api_root.format(region=endpoint.region)

    def request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        deadline: float | None = None,
        missing_ok: bool = False,
        repeatable: bool = True,
    ) -> dict[str, Any] | None:
        """One REST call and its JSON body. Throttling (429), server errors and a
        dropped connection are retried until `deadline` (default: `retry_seconds`
        from now); any other refusal fails at once with the API's own message
        (`ApiError`). With `missing_ok`, a 404 answers None.

        A call that is not `repeatable` (one that would act twice if sent twice) is
        retried only when throttled, which the API refuses before acting; a lost
        connection or a server error raises `UnansweredError` for the caller to find
        out what happened before it sends the call again."""
        import requests
        from google.auth.exceptions import TransportError

        lost = (requests.ConnectionError, requests.Timeout, TransportError)
        if deadline is None:
            deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                response = self.session().request(
                    method, url, json=body, params=params, timeout=self.request_seconds
                )
            except lost as error:
                if not repeatable:
                    raise UnansweredError(f"{method} {url}: {error!r}") from None
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{method} {url}: {error!r}") from None
                self.pause(None, deadline)
                continue
            code = response.status_code
            if code == 404 and missing_ok:
                return None
            if code >= 500 and not repeatable:
                raise UnansweredError(f"{method} {url}: {self.refusal(response)}")
            if (code == 429 or code >= 500) and time.monotonic() < deadline:
                self.pause(response.headers.get("Retry-After"), deadline)
                continue
            if code >= 400:
                raise ApiError(f"{method} {url}: {self.refusal(response)}", code)
            return self.body(method, url, response)

    @staticmethod
    def refusal(response: Response) -> str:
        """The API's own account of a refusal: `{"error": {code, message, status}}`."""
        try:
            error = response.json()["error"]
            return f"HTTP {response.status_code} {error.get('status', '')}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            return f"HTTP {response.status_code}: {response.text[:300]}"

    @staticmethod
    def body(method: str, url: str, response: Response) -> dict[str, Any]:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            detail = response.text[:200]
            raise RuntimeError(
                f"{method} {url}: HTTP {response.status_code}: not JSON: {detail}"
            ) from None

    def retry_delay(self, retry_after: str | None) -> float:
        """Seconds a reply's Retry-After asks for (delay-seconds or an HTTP date);
        `poll_seconds` without one or with one that cannot be read."""
        if retry_after is None:
            return self.poll_seconds
        try:
            delay = float(retry_after)
        except ValueError:
            try:
                delay = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):  # Unreadable, or a date without a zone.
                delay = self.poll_seconds
        return delay if math.isfinite(delay) else self.poll_seconds

    def pause(self, retry_after: str | None, deadline: float) -> None:
        """Sleep as long as Retry-After asks (at least `min_retry_seconds`),
        never past `deadline`."""
        delay = max(self.retry_delay(retry_after), self.min_retry_seconds)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def wait(
        self, root: str, operation: dict[str, Any], what: str, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """Follow a long-running operation to its end, within `timeout_seconds`,
        and answer its response. A failed operation fails with the API's message
        (`OperationError`), one still running at the end with `OperationTimeoutError`;
        with `missing_ok`, one that found nothing to act on (NOT_FOUND) answers None."""
        deadline = time.monotonic() + self.timeout_seconds
        while not operation.get("done"):
            if time.monotonic() >= deadline:
                name = operation.get("name", "")
                message = f"{what} still running after {self.timeout_seconds} s: {name}"
                raise OperationTimeoutError(message, name)
            time.sleep(max(0.0, min(self.poll_seconds, deadline - time.monotonic())))
            operation = self.request("GET", f"{root}/{operation['name']}", deadline=deadline) or {}
        error = operation.get("error")
        if error and missing_ok and error.get("code") == NOT_FOUND:
            return None
        if error:
            code = error.get("code")
            raise OperationError(f"{what} failed (code {code}): {error.get('message')}", code)
        return operation.get("response") or {}
