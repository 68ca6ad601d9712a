"""Where an Azure stack lives and what its environment decides, looked up and fixed once.

`AzureContext` is to Azure components what `AwsAccount` is to AWS ones: the
subscription and tenant (from the provider's own credentials, through an
invoke), the location, the stack's resource group, and whether this is a
production stack. Components read these; none repeats the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization

from infra.naming import Namer


@dataclass(frozen=True)
class AzureContext:
    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]
    location: str
    resource_group_name: pulumi.Output[str]
    # Prod gets zone-redundant, Premium, network-closed services; other
    # environments get the cheaper tier of each and deny-by-default firewalls.
    production: bool

    @classmethod
    def lookup(
        cls, location: str, resource_group_name: pulumi.Output[str], production: bool
    ) -> AzureContext:
        client = authorization.get_client_config_output()
        return cls(
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            location=location,
            resource_group_name=resource_group_name,
            production=production,
        )

    @property
    def public_network_access(self) -> str:
        """Prod services have no public endpoint at all: they are reached through
        private endpoints, which belong to the network that hosts the clients.
        Elsewhere the endpoint answers, behind a firewall that denies by default
        wherever the service has one, so a developer's address is allowed by
        adding it, never by opening the service."""
        return "Disabled" if self.production else "Enabled"

    def global_name(self, namer: Namer, role: str, kind: str) -> pulumi.Output[str]:
        """A globally unique name for this subscription (see `Namer.global_name`)."""
        return self.subscription_id.apply(
            lambda subscription: namer.global_name(role, subscription, kind=kind)
        )

    def role_definition_id(self, role_id: str) -> pulumi.Output[str]:
        """A built-in role's definition id, as role assignments take it."""
        return pulumi.Output.concat(
            "/subscriptions/",
            self.subscription_id,
            "/providers/Microsoft.Authorization/roleDefinitions/",
            role_id,
        )
