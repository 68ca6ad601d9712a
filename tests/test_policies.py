"""Each AWS and cross-cloud rule: one resource that passes and one that fails,
through the same CrossGuard objects the pack serves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import plan_with, planned
from mlops_policies.exemptions import EXEMPTIONS, exemption_for
from mlops_policies.model import Resource
from mlops_policies.pack import LEVELS, crossguard_policies, environment_levels
from mlops_policies.rules import RULES
from mlops_policies.rules.aws_iam import least_privilege
from mlops_policies.rules.aws_keys import key_rotation
from mlops_policies.rules.aws_registry import (
    ecr_cleanup,
    ecr_cmek,
    ecr_immutable_tags,
    ecr_scanning,
)
from mlops_policies.rules.aws_storage import (
    s3_access_logging,
    s3_cmek,
    s3_public_access,
    s3_tls_only,
    s3_versioning,
)
from mlops_policies.rules.protection import stateful_protected
from mlops_policies.rules.tags import required_tags

from tools.mockcloud import Registration
from tools.policy_run import evaluate

BUCKET_URN = "urn:pulumi:t::mlops::aws:s3/bucket:Bucket::b"
TAGS = {
    "project": "mlops",
    "stack": "t",
    "environment": "dev",
    "owner": "o",
    "cost-center": "c",
    "managed-by": "pulumi",
}


def res(
    type_: str, props: dict[str, Any], *, protect: bool = False, deps=None, name="r"
) -> Resource:
    urn = BUCKET_URN if type_ == "aws:s3/bucket:Bucket" else f"urn:pulumi:t::mlops::{type_}::{name}"
    return Resource(type_, urn, name, props, protect, deps or {})


def bucket(**tags: str) -> Resource:
    return res("aws:s3/bucket:Bucket", {"bucket": "b", "tags": {**TAGS, **tags}})


def config(type_: str, props: dict[str, Any]) -> Resource:
    return res(type_, {"bucket": "b", **props}, deps={"bucket": [BUCKET_URN]}, name=type_)


def stack_findings(check, *resources: Resource) -> list[str]:
    return [message for _urn, message in check(list(resources))]


SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


def sse(algorithm: str, key: str | None = "arn:k", bucket_key: bool = True) -> Resource:
    default = {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key else {})}
    return config(
        SSE,
        {
            "rules": [
                {"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": bucket_key}
            ]
        },
    )


def test_s3_cmek() -> None:
    assert stack_findings(s3_cmek, bucket(), sse("aws:kms")) == []
    assert stack_findings(s3_cmek, bucket(), sse("AES256", None)) == [
        "S3 bucket is encrypted with 'AES256', not a customer-managed KMS key"
    ]
    assert stack_findings(s3_cmek, bucket(), sse("aws:kms", None)) == [
        "S3 bucket uses the AWS-managed KMS key, not a customer-managed one"
    ]
    assert stack_findings(s3_cmek, bucket(), sse("aws:kms", bucket_key=False)) == [
        "S3 bucket encrypts with KMS but without an S3 bucket key"
    ]
    assert stack_findings(s3_cmek, bucket()) == [
        "S3 bucket has no default encryption configuration"
    ]


def test_s3_versioning() -> None:
    on = config(
        "aws:s3/bucketVersioning:BucketVersioning",
        {"versioningConfiguration": {"status": "Enabled"}},
    )
    off = config(
        "aws:s3/bucketVersioning:BucketVersioning",
        {"versioningConfiguration": {"status": "Suspended"}},
    )
    assert stack_findings(s3_versioning, bucket(), on) == []
    assert stack_findings(s3_versioning, bucket(), off) == ["S3 bucket versioning is Suspended"]
    assert stack_findings(s3_versioning, bucket()) == ["S3 bucket versioning is not configured"]


def _pab(**overrides: bool) -> Resource:
    names = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    flags = dict.fromkeys(names, True)
    return config("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {**flags, **overrides})


def _ownership(value: str = "BucketOwnerEnforced") -> Resource:
    return config(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        {"rule": {"objectOwnership": value}},
    )


def test_s3_public_access() -> None:
    assert stack_findings(s3_public_access, bucket(), _pab(), _ownership()) == []
    assert stack_findings(
        s3_public_access, bucket(), _pab(restrictPublicBuckets=False), _ownership()
    ) == ["S3 public access block leaves restrictPublicBuckets off"]
    assert stack_findings(s3_public_access, bucket(), _pab(), _ownership("ObjectWriter")) == [
        "S3 bucket still honours ACLs (object ownership not BucketOwnerEnforced)"
    ]
    assert stack_findings(s3_public_access, bucket()) == ["S3 bucket has no public access block"]


def test_s3_access_logging() -> None:
    logging = config("aws:s3/bucketLogging:BucketLogging", {"targetBucket": "logs"})
    assert stack_findings(s3_access_logging, bucket(), logging) == []
    assert stack_findings(s3_access_logging, bucket()) == ["S3 bucket writes no server access logs"]


def _policy(statements: list[dict[str, Any]]) -> Resource:
    return config(
        "aws:s3/bucketPolicy:BucketPolicy", {"policy": json.dumps({"Statement": statements})}
    )


TLS_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_s3_tls_only() -> None:
    assert stack_findings(s3_tls_only, bucket(), _policy([TLS_DENY])) == []
    allow_http = {**TLS_DENY, "Effect": "Allow"}
    assert stack_findings(s3_tls_only, bucket(), _policy([allow_http])) == [
        "S3 bucket policy does not deny requests made without TLS"
    ]


def test_configuration_is_matched_to_its_own_bucket_only() -> None:
    other_bucket_sse = res(SSE, {"bucket": "other", "rules": []}, deps={"bucket": ["urn:other"]})
    assert stack_findings(s3_cmek, bucket(), other_bucket_sse) == [
        "S3 bucket has no default encryption configuration"
    ]


def test_key_rotation() -> None:
    good = {"enableKeyRotation": True, "rotationPeriodInDays": 365, "policy": "{}"}
    assert list(key_rotation(res("aws:kms/key:Key", good))) == []
    assert list(key_rotation(res("aws:kms/key:Key", {**good, "enableKeyRotation": False}))) == [
        "KMS key rotation is off"
    ]
    assert list(key_rotation(res("aws:kms/key:Key", {**good, "rotationPeriodInDays": 730}))) == [
        "KMS key rotates less often than every 365 days"
    ]
    assert list(key_rotation(res("aws:kms/key:Key", {**good, "policy": None}))) == [
        "KMS key has no explicit key policy (the default grants the whole account)"
    ]


def test_least_privilege() -> None:
    def doc(statement: dict[str, Any]) -> Resource:
        return res(
            "aws:ecr/repositoryPolicy:RepositoryPolicy",
            {"policy": json.dumps({"Statement": [statement]})},
        )

    grant = {
        "Sid": "Pull",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::1:role/r"},
        "Action": ["ecr:BatchGetImage"],
    }
    assert list(least_privilege(doc(grant))) == []
    assert list(least_privilege(doc({**grant, "Principal": "*"}))) == [
        "Pull allows every principal ('*')"
    ]
    assert list(least_privilege(doc({**grant, "Principal": {"AWS": ["*"]}}))) == [
        "Pull allows every principal ('*')"
    ]
    assert list(least_privilege(doc({**grant, "Action": ["ecr:*"]}))) == [
        "Pull allows wildcard actions ['ecr:*']"
    ]
    # A Deny naming every principal restricts access and is allowed.
    assert list(least_privilege(doc({**TLS_DENY, "Sid": "Deny"}))) == []


def test_required_tags() -> None:
    assert list(required_tags(res("aws:s3/bucket:Bucket", {"tags": TAGS}))) == []
    missing = {k: v for k, v in TAGS.items() if k not in ("owner", "cost-center")}
    assert list(required_tags(res("aws:s3/bucket:Bucket", {"tags": missing}))) == [
        "tags missing: owner, cost-center"
    ]
    # Types that take no tags are not judged.
    assert list(required_tags(res("aws:kms/alias:Alias", {}))) == []


def test_stateful_protected() -> None:
    assert list(stateful_protected(res("aws:kms/key:Key", {}, protect=True))) == []
    assert list(stateful_protected(res("aws:kms/key:Key", {}))) == [
        "stateful resource is not protected from deletion (protect: true)"
    ]
    assert list(stateful_protected(res("aws:kms/alias:Alias", {}))) == []


def _repo(**props: Any) -> Resource:
    base = {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": "arn:k"}],
        "name": "repo",
    }
    return res("aws:ecr/repository:Repository", {**base, **props}, name="repo")


def test_ecr_checks() -> None:
    assert list(ecr_scanning(_repo())) == []
    assert list(ecr_scanning(_repo(imageScanningConfiguration={"scanOnPush": False}))) == [
        "ECR repository does not scan images on push"
    ]
    assert list(ecr_immutable_tags(_repo())) == []
    assert list(ecr_immutable_tags(_repo(imageTagMutability="MUTABLE"))) == [
        "ECR repository lets tags be overwritten (imageTagMutability is not IMMUTABLE)"
    ]
    assert list(ecr_cmek(_repo())) == []
    assert list(ecr_cmek(_repo(encryptionConfigurations=[{"encryptionType": "AES256"}]))) == [
        "ECR repository is not encrypted with a customer-managed KMS key"
    ]


def test_ecr_cleanup() -> None:
    repo = _repo()
    policy = {"rules": [{"selection": {"tagStatus": "untagged"}, "action": {"type": "expire"}}]}
    lifecycle = res(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        {"repository": "repo", "policy": json.dumps(policy)},
        deps={"repository": [repo.urn]},
        name="lc",
    )
    assert stack_findings(ecr_cleanup, repo, lifecycle) == []
    assert stack_findings(ecr_cleanup, repo) == [
        "ECR repository has no lifecycle policy expiring untagged images"
    ]


def test_exemptions_have_ids_reasons_and_select_narrowly() -> None:
    ids = [e.id for e in EXEMPTIONS]
    assert len(ids) == len(set(ids))
    assert all(e.reason and e.policy in {r.name for r in RULES} for e in EXEMPTIONS)
    log_bucket = bucket(purpose="access-logs")
    assert exemption_for("storage-cmek", log_bucket).id == "EX-001"
    assert exemption_for("storage-cmek", bucket(purpose="lake")) is None
    assert exemption_for("storage-versioning", log_bucket) is None


def test_rule_names_are_unique_and_every_rule_checks_something() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(r.resource_checks or r.stack_checks or r.configured_checks for r in RULES)
    assert [p.name for p in crossguard_policies()] == names


def test_access_logging_is_an_environment_decision() -> None:
    # Dev may save the log store's cost; staging and prod may not.
    assert environment_levels("dev")["storage-access-logging"] == "advisory"
    assert environment_levels("staging")["storage-access-logging"] == "mandatory"
    assert environment_levels("prod")["storage-access-logging"] == "mandatory"
    unlogged = plan_with("aws-dev", lake={"accessLogs": {"enabled": False}}, endpoints={})
    assert unlogged.mandatory == []
    assert {(f.policy, f.level) for f in unlogged.advisory} == {
        ("storage-access-logging", "advisory")
    }
    assert {
        f.policy for f in evaluate(unlogged.registrations, "prod") if f.level == "mandatory"
    } >= {"storage-access-logging"}


def test_environment_levels_come_from_pack_config() -> None:
    assert environment_levels("prod")["stateful-protected"] == "mandatory"
    assert environment_levels("dev")["stateful-protected"] == "disabled"
    assert environment_levels("staging")["stateful-protected"] == "advisory"
    assert set(environment_levels("dev").values()) <= set(LEVELS)


def _registrations(stack: str) -> list[Registration]:
    return list(planned(stack).registrations)


def test_offline_run_reports_a_broken_bucket_through_crossguard() -> None:
    regs = _registrations("aws-prod")
    suspended = {"versioningConfiguration": {"status": "Suspended"}}
    broken = []
    for reg in regs:
        changed = reg
        if reg.type == "aws:s3/bucketVersioning:BucketVersioning" and reg.name.endswith(
            "-raw-versioning"
        ):
            changed = Registration(**{**reg.__dict__, "inputs": {**reg.inputs, **suspended}})
        if reg.type == "aws:kms/key:Key":
            changed = Registration(**{**reg.__dict__, "protect": False})
        broken.append(changed)
    findings = evaluate(broken, "prod")
    assert [(f.policy, f.level, f.urn.rsplit("::", 1)[1]) for f in findings] == [
        ("stateful-protected", "mandatory", "mlops-aws-prod-key"),
        ("storage-versioning", "mandatory", "mlops-aws-prod-lake-raw"),
    ]
    # The same unprotected key is not a finding in dev, where the rule is disabled.
    # (Prod's Trainium pool is an accelerator class dev does not allow.)
    assert [f.policy for f in evaluate(broken, "dev")] == [
        "serving-accelerators",
        "storage-versioning",
    ]


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_shipped_aws_stacks_pass_every_rule(stack: str) -> None:
    assert planned(stack).findings == []


def _extra(type_: str, name: str, inputs: dict[str, Any]) -> Registration:
    return Registration(
        type=type_,
        name=name,
        urn=f"urn:pulumi:t::mlops::{type_}::{name}",
        custom=True,
        parent="",
        protect=False,
        retain_on_delete=False,
        provider="",
        dependencies=[],
        property_dependencies={},
        inputs=inputs,
    )


def test_lists_and_mappings_are_read_as_the_engine_hands_them() -> None:
    """Under CrossGuard (and the offline run) nested lists and mappings arrive
    as proxies, not `list` and `dict`: the rules still see every grant in them."""
    open_policy = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:*"]},
    }
    extras = [
        _extra("aws:iam/policy:Policy", "object-document", {"policy": open_policy}),
        _extra(
            "gcp:storage/bucketACL:BucketACL", "public-acl", {"roleEntities": ["READER:allUsers"]}
        ),
    ]
    found = {
        (f.policy, f.urn.rsplit("::", 1)[1], f.message)
        for f in evaluate(extras, "prod")
        if f.urn.rsplit("::", 1)[1] in {"object-document", "public-acl"}
    }
    assert (
        "iam-least-privilege",
        "object-document",
        "statement 0 allows every principal ('*')",
    ) in found
    assert (
        "iam-least-privilege",
        "object-document",
        "statement 0 allows wildcard actions ['s3:*']",
    ) in found
    assert any(
        p == "storage-no-public-access" and "allUsers" in m
        for p, n, m in found
        if n == "public-acl"
    )
