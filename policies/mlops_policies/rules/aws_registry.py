"""ECR repositories: scanned on push, immutable tags, KMS-encrypted, expired by policy."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from mlops_policies.model import Resource, by_type, configuring

ECR_REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def ecr_scanning(resource: Resource) -> Iterator[str]:
    if resource.type != ECR_REPOSITORY:
        return
    scanning = resource.props.get("imageScanningConfiguration") or {}
    if scanning.get("scanOnPush") is not True:
        yield "ECR repository does not scan images on push"


def ecr_immutable_tags(resource: Resource) -> Iterator[str]:
    if resource.type == ECR_REPOSITORY and resource.props.get("imageTagMutability") not in (
        "IMMUTABLE",
        "IMMUTABLE_WITH_EXCLUSION",
    ):
        yield "ECR repository lets tags be overwritten (imageTagMutability is not IMMUTABLE)"


def ecr_cmek(resource: Resource) -> Iterator[str]:
    if resource.type != ECR_REPOSITORY:
        return
    configs = resource.props.get("encryptionConfigurations") or [{}]
    if configs[0].get("encryptionType") != "KMS" or not configs[0].get("kmsKey"):
        yield "ECR repository is not encrypted with a customer-managed KMS key"


def _expires_untagged(policy: object) -> bool:
    try:
        document = json.loads(policy) if isinstance(policy, str) else policy
        rules = (document or {}).get("rules", [])
    except (json.JSONDecodeError, AttributeError):
        return False
    return any(
        (r.get("selection") or {}).get("tagStatus") == "untagged"
        and (r.get("action") or {}).get("type") == "expire"
        for r in rules
    )


def ecr_cleanup(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    for repo in by_type(resources, ECR_REPOSITORY):
        policies = configuring(resources, repo, ECR_LIFECYCLE, prop="repository")
        if not any(_expires_untagged(p.props.get("policy")) for p in policies):
            yield repo.urn, "ECR repository has no lifecycle policy expiring untagged images"


RESOURCE_CHECKS = {
    "registry-scanning": (ecr_scanning,),
    "registry-immutable-tags": (ecr_immutable_tags,),
    "storage-cmek": (ecr_cmek,),
}
STACK_CHECKS = {"registry-cleanup": (ecr_cleanup,)}
