"""GCP's checks for the pack's controls: Cloud Storage buckets, Cloud KMS keys,
Artifact Registry repositories and every IAM grant. A GCP bucket carries its
whole configuration in its own inputs, so every check here looks at one resource."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlops_policies.model import Resource, as_list, section

BUCKET = "gcp:storage/bucket:Bucket"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
ANYWHERE = ("0.0.0.0/0", "::/0")
# Anyone on the internet, and anyone with any Google account.
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# Legacy ACL resources: the entity (or "ROLE:entity" pairs) they grant to.
ACL_ENTITY_PROPERTY: dict[str, str] = {
    "gcp:storage/bucketAccessControl:BucketAccessControl": "entity",
    "gcp:storage/objectAccessControl:ObjectAccessControl": "entity",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl": "entity",
    "gcp:storage/bucketACL:BucketACL": "roleEntities",
    "gcp:storage/objectACL:ObjectACL": "roleEntities",
    "gcp:storage/defaultObjectACL:DefaultObjectACL": "roleEntities",
}
MAX_ROTATION_SECONDS = 90 * 24 * 3600
_DURATION = re.compile(r"^(\d+)(\.\d{1,9})?s$")


def _is_standard_repository(resource: Resource) -> bool:
    """A repository that stores artifacts itself (remote and virtual ones only proxy)."""
    return (
        resource.type == REPOSITORY
        and resource.props.get("mode", "STANDARD_REPOSITORY") == "STANDARD_REPOSITORY"
    )


def _is_docker_repository(resource: Resource) -> bool:
    return _is_standard_repository(resource) and resource.props.get("format") == "DOCKER"


def cmek(resource: Resource) -> Iterator[str]:
    if resource.type == BUCKET:
        if not section(resource.props, "encryption").get("defaultKmsKeyName"):
            yield "bucket has no default customer-managed key (encryption.defaultKmsKeyName)"
    elif resource.type == REPOSITORY and not resource.props.get("kmsKeyName"):
        yield "Artifact Registry repository is not encrypted with a customer-managed key"


def versioning(resource: Resource) -> Iterator[str]:
    if resource.type != BUCKET:
        return
    if section(resource.props, "versioning").get("enabled") is not True:
        yield "bucket versioning is off"
    seconds = section(resource.props, "softDeletePolicy").get("retentionDurationSeconds")
    if not seconds:
        yield "bucket has no soft delete policy (softDeletePolicy.retentionDurationSeconds)"


def _members(resource: Resource) -> list[str]:
    """The principals an IAM member, binding or policy resource grants to."""
    kind = resource.type.rsplit(":", 1)[-1].lower()
    props = resource.props
    if kind.endswith("iammember"):
        return [str(props.get("member", ""))]
    if kind.endswith("iambinding"):
        return [str(m) for m in props.get("members") or []]
    if kind.endswith("iampolicy"):
        data = props.get("policyData") or "{}"
        try:
            policy = json.loads(data) if isinstance(data, str) else data
        except json.JSONDecodeError:
            return []
        return [str(m) for b in policy.get("bindings") or [] for m in b.get("members") or []]
    prop = ACL_ENTITY_PROPERTY.get(resource.type)
    if prop is not None:
        value = props.get(prop)
        return [str(e).rsplit(":", 1)[-1] for e in as_list(value) if e]
    return []


def no_public_access(resource: Resource) -> Iterator[str]:
    if resource.type == BUCKET:
        props = resource.props
        if props.get("uniformBucketLevelAccess") is not True:
            yield "bucket honours object ACLs (uniformBucketLevelAccess is not true)"
        if props.get("publicAccessPrevention") != "enforced":
            yield (
                f"bucket public access prevention is {props.get('publicAccessPrevention')!r}, "
                "not 'enforced'"
            )
        return
    if not resource.type.startswith("gcp:"):
        return
    public = sorted({m for m in _members(resource) if m in PUBLIC_MEMBERS})
    if public:
        yield f"grants access to {', '.join(public)}"


def access_logging(resource: Resource) -> Iterator[str]:
    if resource.type == BUCKET and not section(resource.props, "logging").get("logBucket"):
        yield "bucket writes no access logs (logging.logBucket)"


def _seconds(duration: Any) -> float | None:
    match = _DURATION.match(str(duration or ""))
    return float(match.group(1) + (match.group(2) or "")) if match else None


def key_rotation(resource: Resource) -> Iterator[str]:
    if resource.type != CRYPTO_KEY:
        return
    period = resource.props.get("rotationPeriod")
    seconds = _seconds(period)
    if period is None:
        yield "Cloud KMS key does not rotate (no rotationPeriod)"
    elif seconds is None:
        yield f"Cloud KMS key rotationPeriod {period!r} is not a duration in seconds"
    elif seconds > MAX_ROTATION_SECONDS:
        yield f"Cloud KMS key rotates every {period}, less often than every {MAX_ROTATION_SECONDS}s"


def registry_scanning(resource: Resource) -> Iterator[str]:
    if not _is_docker_repository(resource):
        return
    config = section(resource.props, "vulnerabilityScanningConfig")
    if config.get("enablementConfig") == "DISABLED":
        yield "Artifact Registry repository has vulnerability scanning disabled"


def registry_immutable_tags(resource: Resource) -> Iterator[str]:
    if not _is_docker_repository(resource):
        return
    if section(resource.props, "dockerConfig").get("immutableTags") is not True:
        yield "Artifact Registry repository lets tags move (dockerConfig.immutableTags)"


def registry_cleanup(resource: Resource) -> Iterator[str]:
    if not _is_standard_repository(resource):
        return
    policies = resource.props.get("cleanupPolicies") or []
    if not any(p.get("action") == "DELETE" for p in policies if isinstance(p, Mapping)):
        yield "Artifact Registry repository has no cleanup policy that deletes old versions"
    elif resource.props.get("cleanupPolicyDryRun") is True:
        yield "Artifact Registry cleanup policies run as a dry run and delete nothing"


def subnet_flow_logs(resource: Resource) -> Iterator[str]:
    if resource.type != SUBNETWORK:
        return
    config = section(resource.props, "logConfig")
    if not config:
        yield "subnet records no flow logs (logConfig)"
    elif float(config.get("flowSampling", 0.5)) <= 0:
        yield "subnet flow logs sample nothing (logConfig.flowSampling is 0)"


def firewall_open_ingress(resource: Resource) -> Iterator[str]:
    props = resource.props
    if resource.type != FIREWALL or props.get("disabled") is True:
        return
    if props.get("direction", "INGRESS") != "INGRESS" or not props.get("allows"):
        return
    anywhere = sorted({r for r in props.get("sourceRanges") or [] if r in ANYWHERE})
    if anywhere:
        yield f"firewall rule allows ingress from {', '.join(anywhere)}"


def subnet_private_access(resource: Resource) -> Iterator[str]:
    if resource.type == SUBNETWORK and resource.props.get("privateIpGoogleAccess") is not True:
        yield "subnet reaches Google APIs only through external addresses (privateIpGoogleAccess)"


RESOURCE_CHECKS = {
    "network-flow-logs": (subnet_flow_logs,),
    "network-no-open-ingress": (firewall_open_ingress,),
    "network-private-access": (subnet_private_access,),
    "storage-cmek": (cmek,),
    "storage-versioning": (versioning,),
    "storage-no-public-access": (no_public_access,),
    "storage-access-logging": (access_logging,),
    "key-rotation": (key_rotation,),
    "registry-scanning": (registry_scanning,),
    "registry-immutable-tags": (registry_immutable_tags,),
    "registry-cleanup": (registry_cleanup,),
}
