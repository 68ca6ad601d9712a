"""The pack's rules: one name per control, with each cloud's checks merged under it.

A cloud module contributes `RESOURCE_CHECKS` and/or `STACK_CHECKS`, dicts from
rule name to checks; a check for a name not defined here is an error at import.
"""

from __future__ import annotations

from types import ModuleType

from mlops_policies.catalog import REQUIRED_TAGS
from mlops_policies.model import Level, Rule
from mlops_policies.rules import (
    aws_iam,
    aws_keys,
    aws_network,
    aws_registry,
    aws_storage,
    azure,
    gcp,
    operations,
    pools,
    protection,
    serving,
    serving_azure,
    serving_gcp,
    tags,
)

MODULES: tuple[ModuleType, ...] = (
    aws_storage,
    aws_registry,
    aws_keys,
    aws_iam,
    aws_network,
    gcp,
    azure,
    serving,
    serving_gcp,
    serving_azure,
    operations,
    pools,
    tags,
    protection,
)

# name -> (description, default level, remediation)
DEFINITIONS: dict[str, tuple[str, Level, str]] = {
    "storage-cmek": (
        "Data at rest is encrypted with a customer-managed key.",
        "mandatory",
        "Encrypt with the platform key: SSE-KMS with a bucket key on S3, CMEK on GCP, "
        "a Key Vault key through a user-assigned identity on Azure.",
    ),
    "storage-versioning": (
        "Object versioning or soft delete is on, so overwrites and deletes can be undone.",
        "mandatory",
        "",
    ),
    "storage-no-public-access": (
        "Storage cannot be made public: public access blocked, no ACLs, no anonymous access.",
        "mandatory",
        "",
    ),
    "storage-access-logging": (
        "Every access to stored data is logged to a dedicated log store.",
        "mandatory",
        "",
    ),
    "storage-tls-only": (
        "Storage refuses requests that are not made over TLS.",
        "mandatory",
        "",
    ),
    "registry-scanning": (
        "Container images are scanned for vulnerabilities when pushed.",
        "mandatory",
        "",
    ),
    "registry-immutable-tags": (
        "Image tags are immutable, so a deployed tag always names the same image.",
        "mandatory",
        "",
    ),
    "registry-cleanup": (
        "Registries expire untagged and old images by policy.",
        "mandatory",
        "",
    ),
    "key-rotation": (
        "Customer-managed keys rotate at least yearly and have an explicit policy.",
        "mandatory",
        "",
    ),
    "iam-least-privilege": (
        "Policy documents grant no wildcard principal and no wildcard action; a VPC endpoint "
        "policy (a perimeter, not a grant) opens a service to every principal only under a "
        "condition or for named resources.",
        "mandatory",
        "",
    ),
    "role-trust": (
        "Role trust policies name who may assume the role exactly: no account root, no "
        "wildcard principal, and a GitHub OIDC trust pins the token's subject.",
        "mandatory",
        "Trust a service (with aws:SourceAccount) or a federated identity with aud and sub "
        "conditions; mlops:ci gives the GitHub repositories.",
    ),
    "required-tags": (
        f"Taggable resources carry the tags {', '.join(REQUIRED_TAGS)}.",
        "mandatory",
        "",
    ),
    "network-flow-logs": (
        "Every network records its traffic in flow logs.",
        "mandatory",
        "VPC flow logs (ALL traffic) on AWS, subnet flow logs on GCP, VNet flow logs on Azure.",
    ),
    "network-no-open-ingress": (
        "No security group, firewall rule or NSG rule admits ingress from anywhere "
        "(0.0.0.0/0, ::/0, the Internet tag).",
        "mandatory",
        "Admit named ranges only (the VPC, IAP's range), or reach nodes through SSM or IAP.",
    ),
    "network-private-access": (
        "The network reaches storage, keys and registries privately; in prod, Azure's "
        "have no public endpoint.",
        "mandatory",
        "S3 gateway and interface endpoints on AWS, Private Google Access on GCP, private "
        "endpoints and publicNetworkAccess Disabled on Azure.",
    ),
    "serving-encryption": (
        "Model endpoints encrypt their serving volumes (where the instance type's storage is "
        "not encrypted in hardware) and their captured traffic with the platform key.",
        "mandatory",
        "",
    ),
    "serving-private": (
        "Prod model endpoints run in the stack's private network.",
        "mandatory",
        "",
    ),
    "serving-data-capture": (
        "Prod model endpoints capture a share of their traffic, so drift can be watched.",
        "mandatory",
        "",
    ),
    "serving-replicas": (
        "Prod model endpoints run at least two replicas, and never scale in below two.",
        "mandatory",
        "",
    ),
    "serving-autoscaling": (
        "Every model endpoint is autoscaled by target tracking, with max >= min.",
        "mandatory",
        "",
    ),
    "serving-alarms": (
        "Every model endpoint has error and latency alarms on its own dimensions.",
        "mandatory",
        "",
    ),
    "serving-accelerators": (
        "Model endpoints and accelerator pools use only the accelerator classes the "
        "environment allows "
        "(allowedAcceleratorClasses in policies/config/<env>.json), on every cloud.",
        "mandatory",
        "Choose an instance type with an allowed accelerator, or change the environment's "
        "list on purpose.",
    ),
    "serving-drift-monitor": (
        "Prod model endpoints that capture traffic have it checked for drift on a schedule.",
        "mandatory",
        "Keep endpoints.<name>.monitoring.enabled, with a baseline in the lake.",
    ),
    "alerts-routed": (
        "Every alarm, alert policy and metric alert notifies someone.",
        "mandatory",
        "Route it to the stack's alert route (mlops:alerts).",
    ),
    "audit-trail": (
        "The stack keeps an encrypted trail of who read or changed its data, registries, "
        "keys and models.",
        "mandatory",
        "A CloudTrail trail with log file validation on AWS, Data Access logs kept in a "
        "CMEK log bucket on GCP, audit diagnostic settings on Azure.",
    ),
    "node-no-public-ip": (
        "Accelerator pool nodes have no public IP address.",
        "mandatory",
        "Nodes reach the platform's services privately; reach them through SSM or IAP.",
    ),
    "node-imdsv2": (
        "AWS pool nodes answer only IMDSv2 (session tokens) on the instance metadata service.",
        "mandatory",
        "",
    ),
    "pool-scale-to-zero": (
        "Dev accelerator pools keep no node running when idle (minNodes 0).",
        "mandatory",
        "",
    ),
    "pool-spot-in-dev": (
        "Dev accelerator pools run on spot (low-priority) capacity.",
        "advisory",
        "",
    ),
    "stateful-protected": (
        "Resources that hold data or keys are protected from deletion.",
        "mandatory",
        "Deploy prod stacks, where the platform sets protect and retainOnDelete.",
    ),
}


def _collect(attribute: str, name: str) -> tuple:
    return tuple(c for m in MODULES for c in getattr(m, attribute, {}).get(name, ()))


def _validate_names() -> None:
    for module in MODULES:
        for attribute in ("RESOURCE_CHECKS", "STACK_CHECKS", "CONFIGURED_CHECKS"):
            unknown = set(getattr(module, attribute, {})) - set(DEFINITIONS)
            if unknown:
                raise KeyError(f"{module.__name__}.{attribute} names unknown rules {unknown}")


_validate_names()

RULES: tuple[Rule, ...] = tuple(
    Rule(
        name=name,
        description=description,
        level=level,
        resource_checks=_collect("RESOURCE_CHECKS", name),
        stack_checks=_collect("STACK_CHECKS", name),
        remediation=remediation,
        configured_checks=_collect("CONFIGURED_CHECKS", name),
        config_properties={
            key: schema
            for module in MODULES
            for key, schema in getattr(module, "CONFIG_PROPERTIES", {}).get(name, {}).items()
        },
    )
    for name, (description, level, remediation) in DEFINITIONS.items()
)
