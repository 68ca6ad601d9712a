"""`mlops:azure:AcceleratorPool`: an Azure Machine Learning compute cluster of GPU
nodes on the stack's workspace, idle at `minNodes` (0 by default).

The workspace's managed network holds the cluster's nodes: a workspace with a
managed network refuses a subnet of the stack's own for its compute, and the
managed network allows only the approved outbound traffic (the lake, the
registry), which is what the `workload` subnet would otherwise enforce. Nodes
get no public IP and no SSH port, authenticate to Azure by the cluster's
managed identity (no local keys), and scale in after `idleMinutes` idle.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import machinelearningservices

from infra.azure.context import AzureContext
from infra.azure.ml import MlWorkspace
from infra.common import Baseline
from infra.settings import AcceleratorPoolSettings

# Compute names: 2 to 16 letters, digits and hyphens, a letter first.
COMPUTE_NAME_LENGTH = 16


@dataclass(frozen=True)
class AcceleratorPoolArgs:
    baseline: Baseline
    context: AzureContext
    pool: str
    settings: AcceleratorPoolSettings
    workspace: MlWorkspace


class AcceleratorPool(pulumi.ComponentResource):
    """A compute cluster of `type` VMs between `minNodes` and `maxNodes`, low
    priority when `spot`, no public IPs, no SSH, Entra ID only, a system-assigned
    identity."""

    def __init__(
        self, name: str, args: AcceleratorPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:AcceleratorPool", name, {}, opts)
        baseline, context, settings = args.baseline, args.context, args.settings
        ml = machinelearningservices
        self.cluster = ml.Compute(
            name,
            compute_name=args.pool[:COMPUTE_NAME_LENGTH],
            workspace_name=args.workspace.workspace.name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            identity={"type": "SystemAssigned"},
            # Typed: `properties` is a union of compute kinds.
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                description=f"Accelerator pool {args.pool} of {baseline.namer.prefix}",
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=settings.type,
                    vm_priority="LowPriority" if settings.spot else "Dedicated",
                    os_type="Linux",
                    enable_node_public_ip=False,
                    remote_login_port_public_access="Disabled",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=settings.min_nodes,
                        max_node_count=settings.max_nodes,
                        node_idle_time_before_scale_down=_minutes(settings.idle_minutes),
                    ),
                ),
            ),
            tags={**baseline.tags, "pool": args.pool},
            opts=baseline.child(self),
        )
        self.register_outputs({"computeName": self.cluster.name})


def _minutes(minutes: int) -> str:
    """ISO 8601 as Azure writes it back (PT1H, not PT60M)."""
    return f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"
