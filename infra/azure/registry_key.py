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

from typing import Any

import pulumi
from pulumi import dynamic

from infra.azure.arm import ArmProvider


class RegistryKeyProvider(ArmProvider):
    """Reads the registry, PATCHes its encryption and waits for ARM, through
    `ArmProvider`'s retries and operation polling."""

    api_version = "2023-07-01"
    system_identity = "system"

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
