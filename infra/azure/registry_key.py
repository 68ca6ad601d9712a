"""Move a Premium registry's customer-managed key onto the platform key, through
the registry's system-assigned identity.

Why a dynamic resource: ACR takes a customer-managed key only when the registry
is created, through a user-assigned identity, and a vault's firewall admits a
registry (as a trusted Azure service) only when it comes with its
system-assigned identity, which does not exist before the registry does. So the
registry is created with a bootstrap key that it can reach, and then this
resource points its encryption at the platform key with identity `system`
(ACR's reserved word for the registry's own identity), as `az acr encryption
rotate-key --identity [system]` does. It also follows the platform key to a new
key generation. The registry resource ignores later changes to its
`encryption`, so the two never undo each other.

Deleting it changes nothing: a registry cannot give up its customer-managed key.
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

import pulumi
from pulumi import dynamic


class RegistryKeyProvider(dynamic.ResourceProvider):
    """Everything the provider runs lives in this class: Pulumi serializes the
    class by value into the stack's state and runs it in a separate process,
    where only the standard library and installed packages can be imported."""

    endpoint = "https://management.azure.com"
    api_version = "2023-07-01"
    system_identity = "system"
    # An ARM operation that has not finished by then has failed for us.
    timeout_seconds = 600.0
    poll_seconds = 5.0
    # However soon a reply asks to be retried, no sooner than this.
    min_retry_seconds = 1.0
    request_seconds = 60.0
    # A role assignment reaches ARM within minutes; a 403 is retried that long.
    grant_seconds = 300.0
    bearer = ""

    def token(self) -> str:
        # Imported here: only a real deployment needs credentials (an Azure CLI
        # login, workload identity in CI, a managed identity), never a plan.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return credential.get_token(f"{self.endpoint}/.default").token

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
            request.add_header("Authorization", f"Bearer {self.bearer}")
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
                    raise RuntimeError(f"registry update {status}: {json.dumps(body.get('error'))}")
            else:
                status = "running"
                if code != 202:
                    return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"registry update still {status or 'running'} after {self.timeout_seconds} s"
                )

    @staticmethod
    def key_properties(registry: dict[str, Any]) -> dict[str, Any]:
        encryption = (registry.get("properties") or {}).get("encryption") or {}
        return encryption.get("keyVaultProperties") or {}

    def on_key(self, registry: dict[str, Any], key_identifier: str) -> bool:
        """Whether the registry encrypts with `key_identifier` through its own identity.

        ARM may report that identity as `system` or as its client ID; either way
        it is none of the registry's user-assigned identities.
        """
        current = self.key_properties(registry)
        identity = str(current.get("identity") or "")
        assigned = (registry.get("identity") or {}).get("userAssignedIdentities") or {}
        user_clients = {str((uai or {}).get("clientId", "")).lower() for uai in assigned.values()}
        return (
            current.get("keyIdentifier") == key_identifier
            and bool(identity)
            and (identity == self.system_identity or identity.lower() not in user_clients)
        )

    def rotate(self, registry_id: str, key_identifier: str) -> None:
        """Point the registry's encryption at `key_identifier` through its own identity."""
        # One token for the whole change (an hour's validity covers the wait).
        self.bearer = self.token()
        url = f"{self.endpoint}{registry_id}?api-version={self.api_version}"
        _code, _headers, registry = self.request("GET", url)
        if self.on_key(registry, key_identifier):
            return
        if "SystemAssigned" not in str((registry.get("identity") or {}).get("type", "")):
            raise RuntimeError(f"{registry_id} has no system-assigned identity to reach the key")
        key = {"keyIdentifier": key_identifier, "identity": self.system_identity}
        body = {"properties": {"encryption": {"status": "enabled", "keyVaultProperties": key}}}
        code, headers, _body = self.request("PATCH", url, body)
        self.wait(code, headers)
        _code, _headers, registry = self.request("GET", url)
        if not self.on_key(registry, key_identifier):
            applied = self.key_properties(registry)
            raise RuntimeError(f"{registry_id} still encrypts with {applied} after the update")

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        self.rotate(props["registryId"], props["keyIdentifier"])
        return dynamic.CreateResult(id_=f"{props['registryId']}/encryption", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in ("registryId", "keyIdentifier") if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=[k for k in changed if k == "registryId"],
            delete_before_replace=False,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        self.rotate(news["registryId"], news["keyIdentifier"])
        return dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """A registry keeps its customer-managed key; there is nothing to undo."""


class RegistryKeyRotation(dynamic.Resource, module="azure", name="RegistryKeyRotation"):
    """The registry `registry_id` encrypts with `key_identifier` through its
    system-assigned identity."""

    def __init__(
        self,
        name: str,
        registry_id: pulumi.Input[str],
        key_identifier: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            RegistryKeyProvider(),
            name,
            {"registryId": registry_id, "keyIdentifier": key_identifier},
            opts,
        )
