"""The CrossGuard pack. The rules live in mlops_policies; constructing the pack
starts the analyzer's gRPC server and never returns, so nothing imports this."""

from mlops_policies.pack import PACK_NAME, crossguard_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=crossguard_policies(),
)
