"""Request signing, each cloud with its own auth library.

A signer turns (method, url, body, content type) into the headers to send.
It is described by a small JSON spec (`{"kind": "aws", "region": ...}`) so the
locust process builds its own and loads credentials itself: nothing secret
crosses a process boundary or touches the disk, and nothing is loaded unless a
load test really runs. Tests build signers with injected fake credentials.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

AWS_SERVICE = "sagemaker"
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
AZURE_ML_SCOPE = "https://ml.azure.com/.default"
# A token this close to expiry is replaced before use: a request in flight
# must not carry a token that expires on the way.
REFRESH_MARGIN_S = 180.0
# Credentials that state no expiry are asked again after this long.
UNSTATED_LIFETIME_S = 900.0


class Signer(Protocol):
    def headers(self, method: str, url: str, body: bytes, content_type: str) -> dict[str, str]: ...


class TokenSource(Protocol):
    def fetch(self) -> tuple[str, float]:
        """A fresh token and when it expires (seconds since the epoch)."""
        ...


class SigV4Signer:
    """AWS Signature Version 4 for the SageMaker runtime, with botocore's own
    signer. Refreshable credentials (SSO, an assumed role) are frozen per
    request, as botocore's clients do, so a long run survives a refresh."""

    def __init__(self, region: str, credentials: Any = None, service: str = AWS_SERVICE) -> None:
        self.region = region
        self.service = service
        self._credentials = credentials

    def _frozen(self) -> Any:
        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise RuntimeError(
                    "botocore found no AWS credentials (environment, ~/.aws profile, SSO, "
                    "instance or task role); set AWS_PROFILE or log in, then run this again"
                )
        return self._credentials.get_frozen_credentials()

    def headers(self, method: str, url: str, body: bytes, content_type: str) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            method=method, url=url, data=body, headers={"Content-Type": content_type}
        )
        SigV4Auth(self._frozen(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())


class BearerSigner:
    """`Authorization: Bearer <token>`, the token fetched again before it expires."""

    def __init__(
        self,
        tokens: TokenSource,
        margin: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._margin = margin
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires - self._margin:
                self._token, self._expires = self._tokens.fetch()
            return self._token

    def headers(self, method: str, url: str, body: bytes, content_type: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Content-Type": content_type}


class GoogleTokens:
    """Access tokens from Application Default Credentials (`gcloud auth
    application-default login`, a service account, workload identity)."""

    def __init__(self, credentials: Any = None) -> None:
        self._credentials = credentials
        self._request: Any = None

    def fetch(self) -> tuple[str, float]:
        from google.auth.transport.requests import Request

        if self._credentials is None:
            import google.auth

            self._credentials, _project = google.auth.default(scopes=[GOOGLE_SCOPE])
        if self._request is None:
            self._request = Request()
        self._credentials.refresh(self._request)
        expiry = self._credentials.expiry
        if expiry is None:
            return self._credentials.token, time.time() + UNSTATED_LIFETIME_S
        # google-auth states expiry as a naive UTC datetime.
        return self._credentials.token, expiry.replace(tzinfo=datetime.UTC).timestamp()


class AzureTokens:
    """Entra ID tokens for Azure ML from `DefaultAzureCredential` (environment,
    workload or managed identity, `az login`)."""

    def __init__(self, credential: Any = None) -> None:
        self._credential = credential

    def fetch(self) -> tuple[str, float]:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        token = self._credential.get_token(AZURE_ML_SCOPE)
        return token.token, float(token.expires_on)


class StaticSigner:
    """Fixed headers: for tests and local fakes, never a cloud's endpoint."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self, method: str, url: str, body: bytes, content_type: str) -> dict[str, str]:
        return {**self._headers, "Content-Type": content_type}


def spec_for(cloud: str, region: str) -> dict[str, Any]:
    """The signer a cloud's endpoint takes."""
    kinds = {"aws": "aws-sigv4", "gcp": "google", "azure": "azure"}
    return {"kind": kinds[cloud], "region": region}


def from_spec(spec: Mapping[str, Any]) -> Signer:
    kind = spec.get("kind")
    if kind == "aws-sigv4":
        return SigV4Signer(spec["region"])
    if kind == "google":
        return BearerSigner(GoogleTokens())
    if kind == "azure":
        return BearerSigner(AzureTokens())
    if kind == "static":
        return StaticSigner(spec["headers"])
    raise ValueError(f"unknown signer kind {kind!r}")


def describe(spec: Mapping[str, Any]) -> str:
    """The signer as the report names it (no secrets)."""
    return {
        "aws-sigv4": f"AWS SigV4 (service {AWS_SERVICE}, botocore credentials)",
        "google": "Google access token (Application Default Credentials)",
        "azure": "Entra ID token for Azure ML (DefaultAzureCredential)",
        "static": "fixed test headers",
    }.get(str(spec.get("kind")), str(spec.get("kind")))
