"""`mlops:azure:Network`: the stack's virtual network, and the private endpoints
through which the lake, the vault and the registry are reached from inside it.

Two subnets: `workload` (where endpoints and pools run) and `endpoints` (the
private endpoints' addresses), each behind a network security group that denies
inbound traffic from the internet, and neither with default outbound access.
Every private endpoint registers its address in a private DNS zone linked to the
network, so the services' usual names resolve to private addresses inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import managedidentity, network, privatedns, storage

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess
from infra.azure.storage import AccountSpec, log_access, secure_account, versioned_blobs
from infra.common import Baseline, PrivateNetwork
from infra.settings import NetworkSettings

# Azure enables one Network Watcher per region in this group, under this name,
# when the subscription's first virtual network there is created.
NETWORK_WATCHER_GROUP = "NetworkWatcherRG"
DENY_INTERNET_INBOUND = {
    "name": "deny-internet-inbound",
    "description": "Nothing from the internet, whatever a later rule allows",
    "priority": 100,
    "direction": "Inbound",
    "access": "Deny",
    "protocol": "*",
    "source_address_prefix": "Internet",
    "source_port_range": "*",
    "destination_address_prefix": "*",
    "destination_port_range": "*",
}
FLOW_LOG_FORMAT = {"type": "JSON", "version": 2}


@dataclass(frozen=True)
class PrivateService:
    """A service reached through a private endpoint: which sub-resource (`group_id`)
    and the private DNS zone its name resolves in."""

    role: str
    resource_id: pulumi.Output[str]
    group_id: str
    dns_zone: str
    # Zones of further names the same private endpoint serves (an ML workspace's notebooks).
    more_zones: tuple[str, ...] = ()

    @property
    def zones(self) -> tuple[str, ...]:
        return (self.dns_zone, *self.more_zones)


@dataclass(frozen=True)
class NetworkArgs:
    baseline: Baseline
    context: AzureContext
    settings: NetworkSettings
    key: KeyAccess
    services: Sequence[PrivateService]
    # How long deleted flow log blobs stay recoverable.
    soft_delete_days: int
    # Where reads and writes of the flow log account are logged, if anywhere.
    access_log_workspace_id: pulumi.Output[str] | None


class Network(pulumi.ComponentResource):
    """A virtual network over `network.cidr` with a `workload` and an `endpoints`
    subnet, both without default outbound access and each behind a network
    security group that denies inbound traffic from the internet; a private
    endpoint per private service in the `endpoints` subnet with its private DNS
    zone linked to the network; VNet flow logs of all traffic, kept
    `flowLogs.retentionDays`, in a storage account locked down like the lake and
    written through a managed identity. `egress: nat` adds a NAT gateway on the
    `workload` subnet. The flow log account is protected and retained in prod."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:Network", name, {}, opts)
        self._args = args
        baseline, context, settings = args.baseline, args.context, args.settings
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=context.resource_group_name,
            location=context.location,
            address_space={"address_prefixes": [settings.cidr]},
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        ranges = settings.subnets("azure")
        nat = self._nat(name) if settings.egress == "nat" else None
        workload = self._subnet(
            name, "workload", ranges["workload"], endpoint_policies="Disabled", nat=nat
        )
        # One subnet at a time: Azure refuses concurrent changes to one network.
        endpoints = self._subnet(
            name,
            "endpoints",
            ranges["endpoints"],
            endpoint_policies="Enabled",
            nat=None,
            after=[workload],
        )
        self.subnets = {"workload": workload, "endpoints": endpoints}
        zones = sorted({zone for service in args.services for zone in service.zones})
        self.dns_zones = {zone: self._dns_zone(name, zone) for zone in zones}
        self.private_endpoints = {
            service.role: self._private_endpoint(name, service) for service in args.services
        }
        self.flow_log_account = self._flow_logs(name)
        self.network = PrivateNetwork(
            id=self.vnet.id,
            subnet_ids=[workload.id],
            zones=pulumi.Output.from_input([str(z + 1) for z in range(settings.zones)]),
            resource=self.vnet,
        )
        self.register_outputs(
            {
                "virtualNetworkId": self.vnet.id,
                "subnetIds": {role: subnet.id for role, subnet in self.subnets.items()},
            }
        )

    def _subnet(
        self,
        name: str,
        role: str,
        prefix: str,
        *,
        endpoint_policies: str,
        nat: network.NatGateway | None,
        after: Sequence[pulumi.Resource] = (),
    ) -> network.Subnet:
        baseline, context = self._args.baseline, self._args.context
        group = network.NetworkSecurityGroup(
            f"{name}-{role}",
            resource_group_name=context.resource_group_name,
            location=context.location,
            # Inline only: rules declared both inline and separately churn.
            security_rules=[DENY_INTERNET_INBOUND],
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        extra: dict[str, Any] = {"nat_gateway": {"id": nat.id}} if nat is not None else {}
        return network.Subnet(
            f"{name}-{role}",
            subnet_name=role,
            virtual_network_name=self.vnet.name,
            resource_group_name=context.resource_group_name,
            address_prefix=prefix,
            network_security_group={"id": group.id},
            # Create-only: nothing leaves the network unless egress says so.
            default_outbound_access=False,
            private_endpoint_network_policies=endpoint_policies,
            opts=baseline.child(self, depends_on=list(after)),
            **extra,
        )

    def _dns_zone(self, name: str, zone: str) -> privatedns.PrivateZone:
        baseline, context = self._args.baseline, self._args.context
        role = zone.split(".")[1]
        resource = privatedns.PrivateZone(
            f"{name}-dns-{role}",
            private_zone_name=zone,
            resource_group_name=context.resource_group_name,
            location="global",
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        privatedns.VirtualNetworkLink(
            f"{name}-dns-{role}",
            private_zone_name=resource.name,
            resource_group_name=context.resource_group_name,
            location="global",
            virtual_network={"id": self.vnet.id},
            registration_enabled=False,
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        return resource

    def _private_endpoint(self, name: str, service: PrivateService) -> network.PrivateEndpoint:
        baseline, context = self._args.baseline, self._args.context
        endpoint_name = f"{name}-{service.role}"
        endpoint = network.PrivateEndpoint(
            endpoint_name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            subnet={"id": self.subnets["endpoints"].id},
            private_link_service_connections=[
                {
                    "name": service.role,
                    "private_link_service_id": service.resource_id,
                    "group_ids": [service.group_id],
                }
            ],
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        network.PrivateDnsZoneGroup(
            endpoint_name,
            private_endpoint_name=endpoint.name,
            resource_group_name=context.resource_group_name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[
                {
                    "name": zone.split(".")[1] if zone != service.dns_zone else service.role,
                    "private_dns_zone_id": self.dns_zones[zone].id,
                }
                for zone in service.zones
            ],
            opts=baseline.child(self),
        )
        return endpoint

    def _nat(self, name: str) -> network.NatGateway:
        baseline, context = self._args.baseline, self._args.context
        address = network.PublicIPAddress(
            f"{name}-nat",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "Standard", "tier": "Regional"},
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        return network.NatGateway(
            f"{name}-nat",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "Standard"},
            public_ip_addresses=[{"id": address.id}],
            idle_timeout_in_minutes=4,
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )

    def _flow_logs(self, name: str) -> storage.StorageAccount:
        args = self._args
        baseline, context, days = args.baseline, args.context, args.soft_delete_days
        account = secure_account(
            self,
            f"{name}-flow-logs",
            AccountSpec(role="flow", hierarchical=False, tags={"purpose": "flow-logs"}),
            context=context,
            key=args.key,
            baseline=baseline,
        )
        # Flow logs append to hourly blobs; every append leaves a version behind.
        versioned_blobs(
            self, f"{name}-flow-logs", account, days=days, context=context, baseline=baseline
        )
        if args.access_log_workspace_id is not None:
            log_access(
                self, f"{name}-flow-logs-access", account, args.access_log_workspace_id, baseline
            )
        writer = managedidentity.UserAssignedIdentity(
            f"{name}-flow-logs",
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        grant = rbac.assign(
            f"{name}-flow-logs-writer",
            rbac.Grant(
                principal_id=writer.principal_id,
                role_id=rbac.STORAGE_BLOB_DATA_CONTRIBUTOR,
                scope=account.id,
                description="Network Watcher writes the VNet flow logs",
            ),
            context,
            baseline.child(self),
        )
        network.FlowLog(
            f"{name}-flow-logs",
            resource_group_name=NETWORK_WATCHER_GROUP,
            network_watcher_name=f"NetworkWatcher_{context.location}",
            location=context.location,
            target_resource_id=self.vnet.id,
            storage_id=account.id,
            enabled=True,
            format=FLOW_LOG_FORMAT,
            retention_policy={"enabled": True, "days": args.settings.flow_logs.retention_days},
            identity={"type": "UserAssigned", "user_assigned_identities": [writer.id]},
            tags=dict(baseline.tags),
            opts=baseline.child(self, depends_on=[grant]),
        )
        return account


def network_outputs(net: Network) -> Mapping[str, Any]:
    return {
        "virtualNetworkId": net.vnet.id,
        "subnetIds": {role: subnet.id for role, subnet in net.subnets.items()},
        "privateEndpointIds": {role: pe.id for role, pe in net.private_endpoints.items()},
        "flowLogAccountName": net.flow_log_account.name,
    }
