"""`mlops:gcp:Network`: the stack's custom-mode VPC, private by construction.

Vertex AI serves privately through Private Service Connect, not private
services access (VPC peering): a PSC endpoint supports traffic splitting
(canary rollouts) and request-response logging (drift monitoring reads it),
which peered private endpoints do not; it needs no range reserved for a
producer network nor a shared peering that blocks the network's deletion. Its
consumer side is a forwarding rule with an address in this network's
`endpoints` subnet, created with each endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, PrivateNetwork
from infra.gcp.context import GcpProject
from infra.settings import NetworkSettings

# Google's IAP TCP forwarding proxies connect from this range only.
IAP_RANGE = "35.235.240.0/20"
SSH = "22"
ALLOW_PRIORITY = 1000
# Just above the implied deny (65535): the same verdict, but logged.
DENY_PRIORITY = 65534
FLOW_LOGS = {
    "aggregation_interval": "INTERVAL_1_MIN",
    "flow_sampling": 1.0,
    "metadata": "INCLUDE_ALL_METADATA",
    # The API's default, written out so a refresh never shows a difference.
    "filter_expr": "true",
}
FIREWALL_LOGS = {"metadata": "INCLUDE_ALL_METADATA"}


@dataclass(frozen=True)
class NetworkArgs:
    baseline: Baseline
    project: GcpProject
    settings: NetworkSettings
    # Resources the network waits for (the Compute Engine API).
    requires: Sequence[pulumi.Resource] = ()


class Network(pulumi.ComponentResource):
    """A custom-mode VPC (no automatic subnets, regional routing) with two
    regional subnets, `workload` and `endpoints` (Private Service Connect
    addresses), each with Private Google Access and flow logs of every sampled
    flow with all metadata; a logged firewall rule that denies all ingress and
    one that admits SSH only from IAP's TCP forwarding range, only to nodes
    tagged `ssh_tag`. `egress: nat` adds a Cloud Router with Cloud NAT for the
    workload subnet, logging errors."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:Network", name, {}, opts)
        self._args = args
        settings, baseline = args.settings, args.baseline
        self.ssh_tag = baseline.namer.name("ssh", kind="gcp-id")
        self.vpc = gcp.compute.Network(
            f"{name}-vpc",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description=f"Private network of {baseline.namer.prefix}",
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        ranges = settings.subnets("gcp")
        self.subnets = {role: self._subnet(name, role, cidr) for role, cidr in ranges.items()}
        self._firewall(
            f"{name}-deny-ingress",
            "Deny every inbound connection not allowed by a rule above",
            priority=DENY_PRIORITY,
            source_ranges=["0.0.0.0/0"],
            denies=[{"protocol": "all"}],
        )
        self._firewall(
            f"{name}-iap-ssh",
            "SSH through Identity-Aware Proxy TCP forwarding only",
            priority=ALLOW_PRIORITY,
            source_ranges=[IAP_RANGE],
            allows=[{"protocol": "tcp", "ports": [SSH]}],
            target_tags=[self.ssh_tag],
        )
        if settings.egress == "nat":
            self._nat(name)
        zones = gcp.compute.get_zones_output(
            project=args.project.project_id,
            region=baseline.region,
            status="UP",
            # Only once the Compute Engine API is on: a new project has it off.
            opts=pulumi.InvokeOutputOptions(depends_on=list(args.requires)),
        )
        self.zone_names: pulumi.Output[list[str]] = zones.names.apply(
            lambda names: sorted(names)[: settings.zones]
        )
        self.network = PrivateNetwork(
            id=self.vpc.id,
            subnet_ids=[self.subnets["workload"].id],
            zones=self.zone_names,
            resource=self.vpc,
        )
        self.register_outputs(
            {
                "networkId": self.vpc.id,
                "subnetIds": {role: subnet.id for role, subnet in self.subnets.items()},
                "sshTag": self.ssh_tag,
                "zones": self.zone_names,
            }
        )

    def _subnet(self, name: str, role: str, cidr: str) -> gcp.compute.Subnetwork:
        baseline = self._args.baseline
        return gcp.compute.Subnetwork(
            f"{name}-{role}",
            network=self.vpc.id,
            region=baseline.region,
            ip_cidr_range=cidr,
            stack_type="IPV4_ONLY",
            private_ip_google_access=True,
            log_config=FLOW_LOGS,
            description=f"{role} subnet of {baseline.namer.prefix}",
            opts=baseline.child(self),
        )

    def _firewall(self, name: str, description: str, **rule: Any) -> gcp.compute.Firewall:
        return gcp.compute.Firewall(
            name,
            network=self.vpc.id,
            direction="INGRESS",
            description=description,
            log_config=FIREWALL_LOGS,
            opts=self._args.baseline.child(self),
            **rule,
        )

    def _nat(self, name: str) -> gcp.compute.RouterNat:
        baseline = self._args.baseline
        router = gcp.compute.Router(
            f"{name}-router",
            network=self.vpc.id,
            region=baseline.region,
            description=f"Cloud NAT of {baseline.namer.prefix}",
            opts=baseline.child(self),
        )
        return gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=baseline.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                {
                    "name": self.subnets["workload"].id,
                    "source_ip_ranges_to_nats": ["ALL_IP_RANGES"],
                }
            ],
            # The API's default; older providers sent true and showed a diff.
            enable_endpoint_independent_mapping=False,
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=baseline.child(self),
        )


def network_outputs(network: Network) -> Mapping[str, Any]:
    return {
        "networkId": network.vpc.id,
        "subnetIds": {role: subnet.id for role, subnet in network.subnets.items()},
        "sshTag": network.ssh_tag,
        "networkZones": network.zone_names,
    }
