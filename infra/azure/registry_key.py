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

import json
import time
import urllib.error
import urllib.request
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
    request_seconds = 60.0
    bearer = ""

    def token(self) -> str:
        # Imported here: only a real deployment needs credentials (an Azure CLI
        # login, workload identity in CI, a managed identity), never a plan.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return credential.get_token(f"{self.endpoint}/.default").token

    def request(
        self, method: str, url: str, body: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.bearer}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.request_seconds) as response:
                return dict(response.headers), json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise RuntimeError(f"{method} {url}: HTTP {error.code}: {detail}") from None

    def wait(self, headers: dict[str, str]) -> None:
        """Follow an asynchronous operation's status URL until it ends, or time out."""
        status_url = headers.get("Azure-AsyncOperation") or headers.get("Location")
        if not status_url:
            return
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            reply_headers, body = self.request("GET", status_url)
            status = str(body.get("status", "")).lower()
            if status == "succeeded":
                return
            if status in ("failed", "canceled"):
                raise RuntimeError(f"registry update {status}: {json.dumps(body.get('error'))}")
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"registry update still {status or 'running'} after {self.timeout_seconds} s"
                )
            delay = float(reply_headers.get("Retry-After", self.poll_seconds))
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    @staticmethod
    def key_properties(registry: dict[str, Any]) -> dict[str, Any]:
        encryption = (registry.get("properties") or {}).get("encryption") or {}
        return encryption.get("keyVaultProperties") or {}

    def rotate(self, registry_id: str, key_identifier: str) -> None:
        """Point the registry's encryption at `key_identifier` through its own identity."""
        # One token for the whole change (an hour's validity covers the wait).
        self.bearer = self.token()
        url = f"{self.endpoint}{registry_id}?api-version={self.api_version}"
        wanted = (key_identifier, self.system_identity)
        _headers, registry = self.request("GET", url)
        current = self.key_properties(registry)
        if (current.get("keyIdentifier"), current.get("identity")) == wanted:
            return
        if "SystemAssigned" not in str((registry.get("identity") or {}).get("type", "")):
            raise RuntimeError(f"{registry_id} has no system-assigned identity to reach the key")
        key = {"keyIdentifier": key_identifier, "identity": self.system_identity}
        body = {"properties": {"encryption": {"status": "enabled", "keyVaultProperties": key}}}
        headers, _body = self.request("PATCH", url, body)
        self.wait(headers)
        _headers, registry = self.request("GET", url)
        applied = self.key_properties(registry)
        if (applied.get("keyIdentifier"), applied.get("identity")) != wanted:
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
