"""Data at rest: customer-managed encryption, versioning, no public access,
access logging and TLS-only access, with one rule name per control whatever
the cloud."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_policies.model import Resource, as_list, by_type, configuring

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
S3_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_LOGGING = "aws:s3/bucketLogging:BucketLogging"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)

Findings = Iterator[tuple[str, str]]


def _single(resources: Sequence[Resource], bucket: Resource, kind: str) -> Resource | None:
    found = configuring(resources, bucket, kind)
    return found[0] if found else None


def s3_cmek(resources: Sequence[Resource]) -> Findings:
    for bucket in by_type(resources, S3_BUCKET):
        config = _single(resources, bucket, S3_ENCRYPTION)
        if config is None:
            yield bucket.urn, "S3 bucket has no default encryption configuration"
            continue
        rules: list[dict[str, Any]] = list(config.props.get("rules") or [{}])
        default = rules[0].get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") not in ("aws:kms", "aws:kms:dsse"):
            yield (
                bucket.urn,
                (
                    f"S3 bucket is encrypted with {default.get('sseAlgorithm')!r}, "
                    "not a customer-managed KMS key"
                ),
            )
        elif not default.get("kmsMasterKeyId"):
            yield bucket.urn, "S3 bucket uses the AWS-managed KMS key, not a customer-managed one"
        elif not rules[0].get("bucketKeyEnabled"):
            yield bucket.urn, "S3 bucket encrypts with KMS but without an S3 bucket key"


def s3_versioning(resources: Sequence[Resource]) -> Findings:
    for bucket in by_type(resources, S3_BUCKET):
        config = _single(resources, bucket, S3_VERSIONING)
        status = ((config.props.get("versioningConfiguration") or {}) if config else {}).get(
            "status"
        )
        if status != "Enabled":
            yield bucket.urn, f"S3 bucket versioning is {status or 'not configured'}"


def s3_public_access(resources: Sequence[Resource]) -> Findings:
    for bucket in by_type(resources, S3_BUCKET):
        block = _single(resources, bucket, S3_PUBLIC_ACCESS)
        if block is None:
            yield bucket.urn, "S3 bucket has no public access block"
            continue
        missing = [flag for flag in PUBLIC_ACCESS_FLAGS if block.props.get(flag) is not True]
        if missing:
            yield bucket.urn, f"S3 public access block leaves {', '.join(missing)} off"
        ownership = _single(resources, bucket, S3_OWNERSHIP)
        rule = (ownership.props.get("rule") or {}) if ownership else {}
        if rule.get("objectOwnership") != "BucketOwnerEnforced":
            yield (
                bucket.urn,
                "S3 bucket still honours ACLs (object ownership not BucketOwnerEnforced)",
            )


def s3_access_logging(resources: Sequence[Resource]) -> Findings:
    for bucket in by_type(resources, S3_BUCKET):
        logging = _single(resources, bucket, S3_LOGGING)
        if logging is None or not logging.props.get("targetBucket"):
            yield bucket.urn, "S3 bucket writes no server access logs"


def statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    found = document.get("Statement")
    found = [found] if isinstance(found, Mapping) else as_list(found)
    return [statement for statement in found if isinstance(statement, Mapping)]


def denies_plain_http(document: Any) -> bool:
    for statement in statements(document):
        condition = (statement.get("Condition") or {}).get("Bool") or {}
        if (
            statement.get("Effect") == "Deny"
            and str(condition.get("aws:SecureTransport")).lower() == "false"
        ):
            return True
    return False


def s3_tls_only(resources: Sequence[Resource]) -> Findings:
    for bucket in by_type(resources, S3_BUCKET):
        policy = _single(resources, bucket, S3_POLICY)
        if policy is None or not denies_plain_http(policy.props.get("policy")):
            yield bucket.urn, "S3 bucket policy does not deny requests made without TLS"


STACK_CHECKS = {
    "storage-cmek": (s3_cmek,),
    "storage-versioning": (s3_versioning,),
    "storage-no-public-access": (s3_public_access,),
    "storage-access-logging": (s3_access_logging,),
    "storage-tls-only": (s3_tls_only,),
}
