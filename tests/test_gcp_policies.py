"""Each GCP check: one resource that passes and one that fails, then the same rules
through the CrossGuard objects the pack serves, on the shipped GCP plans."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from conftest import planned
from mlops_policies.exemptions import exemption_for
from mlops_policies.model import Resource
from mlops_policies.rules import RULES
from mlops_policies.rules.gcp import (
    access_logging,
    cmek,
    key_rotation,
    no_public_access,
    registry_cleanup,
    registry_immutable_tags,
    registry_scanning,
    versioning,
)

from tools.policy_run import evaluate

BUCKET = "gcp:storage/bucket:Bucket"
KEY = "gcp:kms/cryptoKey:CryptoKey"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
KEY_ID = "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/k"
SECURE_BUCKET: dict[str, Any] = {
    "encryption": {"defaultKmsKeyName": KEY_ID},
    "versioning": {"enabled": True},
    "softDeletePolicy": {"retentionDurationSeconds": 604800},
    "uniformBucketLevelAccess": True,
    "publicAccessPrevention": "enforced",
    "logging": {"logBucket": "logs"},
    "labels": {"purpose": "lake"},
}
SECURE_REPOSITORY: dict[str, Any] = {
    "format": "DOCKER",
    "mode": "STANDARD_REPOSITORY",
    "kmsKeyName": KEY_ID,
    "dockerConfig": {"immutableTags": True},
    "vulnerabilityScanningConfig": {"enablementConfig": "INHERITED"},
    "cleanupPolicies": [
        {"id": "delete-untagged", "action": "DELETE", "condition": {"tagState": "UNTAGGED"}},
        {"id": "keep", "action": "KEEP", "mostRecentVersions": {"keepCount": 3}},
    ],
    "cleanupPolicyDryRun": False,
}


def res(type_: str, props: dict[str, Any], name: str = "r") -> Resource:
    return Resource(type_, f"urn:pulumi:t::mlops::{type_}::{name}", name, props)


def bucket(**changes: Any) -> Resource:
    return res(BUCKET, {**SECURE_BUCKET, **changes})


def repository(**changes: Any) -> Resource:
    return res(REPOSITORY, {**SECURE_REPOSITORY, **changes})


def without(props: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != key}


def test_cmek() -> None:
    assert list(cmek(bucket())) == []
    assert list(cmek(res(BUCKET, without(SECURE_BUCKET, "encryption")))) == [
        "bucket has no default customer-managed key (encryption.defaultKmsKeyName)"
    ]
    assert list(cmek(repository())) == []
    assert list(cmek(res(REPOSITORY, without(SECURE_REPOSITORY, "kmsKeyName")))) == [
        "Artifact Registry repository is not encrypted with a customer-managed key"
    ]


def test_versioning_and_soft_delete() -> None:
    assert list(versioning(bucket())) == []
    assert list(versioning(bucket(versioning={"enabled": False}))) == ["bucket versioning is off"]
    assert list(versioning(bucket(softDeletePolicy={"retentionDurationSeconds": 0}))) == [
        "bucket has no soft delete policy (softDeletePolicy.retentionDurationSeconds)"
    ]


def test_no_public_access_on_buckets() -> None:
    assert list(no_public_access(bucket())) == []
    assert list(
        no_public_access(bucket(uniformBucketLevelAccess=False, publicAccessPrevention="inherited"))
    ) == [
        "bucket honours object ACLs (uniformBucketLevelAccess is not true)",
        "bucket public access prevention is 'inherited', not 'enforced'",
    ]


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        ("gcp:storage/bucketIAMMember:BucketIAMMember", {"member": "allUsers"}),
        ("gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding", {"members": ["allUsers"]}),
        (
            "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
            {"member": "allAuthenticatedUsers"},
        ),
        ("gcp:projects/iAMMember:IAMMember", {"member": "allUsers"}),
        (
            "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
            {"policyData": json.dumps({"bindings": [{"role": "r", "members": ["allUsers"]}]})},
        ),
        ("gcp:storage/bucketACL:BucketACL", {"roleEntities": ["READER:allUsers"]}),
    ],
)
def test_no_public_access_through_any_gcp_grant(type_: str, props: dict[str, Any]) -> None:
    public = "allAuthenticatedUsers" if "allAuthenticatedUsers" in str(props) else "allUsers"
    assert list(no_public_access(res(type_, props))) == [f"grants access to {public}"]
    private = json.loads(json.dumps(props).replace(public, "group:team@example.com"))
    assert list(no_public_access(res(type_, private))) == []


def test_access_logging_and_the_log_bucket_exemption() -> None:
    assert list(access_logging(bucket())) == []
    log_bucket = res(
        BUCKET, {**without(SECURE_BUCKET, "logging"), "labels": {"purpose": "access-logs"}}
    )
    assert list(access_logging(log_bucket)) == ["bucket writes no access logs (logging.logBucket)"]
    assert exemption_for("storage-access-logging", log_bucket).id == "EX-101"
    # Only the log store is exempt, and only from logging itself.
    assert exemption_for("storage-access-logging", bucket(logging=None)) is None
    assert exemption_for("storage-cmek", log_bucket) is None


def test_key_rotation() -> None:
    assert list(key_rotation(res(KEY, {"rotationPeriod": "7776000s"}))) == []
    assert list(key_rotation(res(KEY, {"rotationPeriod": "86400.5s"}))) == []
    assert list(key_rotation(res(KEY, {"rotationPeriod": "31536000s"}))) == [
        "Cloud KMS key rotates every 31536000s, less often than every 7776000s"
    ]
    assert list(key_rotation(res(KEY, {}))) == ["Cloud KMS key does not rotate (no rotationPeriod)"]
    assert list(key_rotation(res(KEY, {"rotationPeriod": "90d"}))) == [
        "Cloud KMS key rotationPeriod '90d' is not a duration in seconds"
    ]


def test_registry_scanning() -> None:
    assert list(registry_scanning(repository())) == []
    disabled = repository(vulnerabilityScanningConfig={"enablementConfig": "DISABLED"})
    assert list(registry_scanning(disabled)) == [
        "Artifact Registry repository has vulnerability scanning disabled"
    ]


def test_registry_immutable_tags() -> None:
    assert list(registry_immutable_tags(repository())) == []
    assert list(registry_immutable_tags(repository(dockerConfig={"immutableTags": False}))) == [
        "Artifact Registry repository lets tags move (dockerConfig.immutableTags)"
    ]
    # Tags are a Docker notion; a Python package repository is not held to it.
    assert list(registry_immutable_tags(repository(format="PYTHON", dockerConfig=None))) == []


def test_registry_cleanup() -> None:
    assert list(registry_cleanup(repository())) == []
    keep_only = repository(cleanupPolicies=[SECURE_REPOSITORY["cleanupPolicies"][1]])
    assert list(registry_cleanup(keep_only)) == [
        "Artifact Registry repository has no cleanup policy that deletes old versions"
    ]
    assert list(registry_cleanup(repository(cleanupPolicyDryRun=True))) == [
        "Artifact Registry cleanup policies run as a dry run and delete nothing"
    ]


def test_gcp_checks_are_merged_into_the_shared_rules() -> None:
    by_name = {r.name: r for r in RULES}
    expected = {
        "storage-cmek": cmek,
        "storage-versioning": versioning,
        "storage-no-public-access": no_public_access,
        "storage-access-logging": access_logging,
        "key-rotation": key_rotation,
        "registry-scanning": registry_scanning,
        "registry-immutable-tags": registry_immutable_tags,
        "registry-cleanup": registry_cleanup,
    }
    for name, check in expected.items():
        assert check in by_name[name].resource_checks, name


def _broken(stack: str) -> list:
    """The shipped plan with the raw bucket made public and the key rotating yearly."""
    regs = []
    for reg in planned(stack).registrations:
        inputs = reg.inputs
        if reg.type == BUCKET and reg.name.endswith("-lake-raw"):
            inputs = {**inputs, "publicAccessPrevention": "inherited"}
        if reg.type == KEY:
            inputs = {**inputs, "rotationPeriod": "31536000s"}
        regs.append(dataclasses.replace(reg, inputs=inputs))
    return regs


def test_offline_run_reports_broken_gcp_resources_through_crossguard() -> None:
    findings = evaluate(_broken("gcp-prod"), "prod")
    assert [(f.policy, f.level, f.urn.rsplit("::", 1)[1]) for f in findings] == [
        ("key-rotation", "mandatory", "mlops-gcp-prod-key"),
        ("storage-no-public-access", "mandatory", "mlops-gcp-prod-lake-raw"),
    ]


def test_offline_run_holds_prod_protection_to_account() -> None:
    regs = [
        dataclasses.replace(r, protect=False) if r.type == REPOSITORY else r
        for r in planned("gcp-prod").registrations
    ]
    findings = evaluate(regs, "prod")
    assert {(f.policy, f.level) for f in findings} == {("stateful-protected", "mandatory")}
    assert len(findings) == 2
    # The log bucket has no logging block, yet EX-101 keeps the shipped plans clean.
    assert evaluate(list(planned("gcp-dev").registrations), "dev") == []
