"""`mlops:azure:DataLake`: one ADLS Gen2 account, one private filesystem per zone.

The lake is an account of its own, never an Azure ML workspace's default
storage: a workspace cannot use an account with a hierarchical namespace, and
the lake needs one (directories, POSIX ACLs, atomic renames for Spark).

ADLS Gen2 accounts cannot keep blob versions: Azure does not support blob
versioning on accounts with a hierarchical namespace. Recovery of overwritten
or deleted data therefore rests on blob soft delete and container soft delete,
both kept for `lake.retention.softDeleteDays`, plus snapshots that expire after
`lake.retention.noncurrentVersionDays`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import authorization, operationalinsights, storage

from infra.azure.context import AzureContext
from infra.azure.key import KeyAccess
from infra.azure.storage import BLOB_SERVICE, AccountSpec, log_access, secure_account
from infra.common import Baseline
from infra.settings import LakeSettings


@dataclass(frozen=True)
class DataLakeArgs:
    baseline: Baseline
    context: AzureContext
    lake: LakeSettings
    key: KeyAccess


def lifecycle_rules(lake: LakeSettings) -> list[dict[str, Any]]:
    """Blobs move to Cool after `coolAfterDays` and to Cold after `archiveAfterDays`.

    Cold, not Archive: Archive is offline (hours to rehydrate) and not offered on
    zone-redundant accounts, while Cold stays online, as S3 Glacier Instant
    Retrieval does for the same setting on AWS. Uncommitted blocks need no rule:
    Azure discards them after seven days.
    """
    tiers: dict[str, Any] = {
        "tier_to_cool": {"days_after_modification_greater_than": lake.tiering.cool_after_days}
    }
    if lake.tiering.archive_after_days is not None:
        tiers["tier_to_cold"] = {
            "days_after_modification_greater_than": lake.tiering.archive_after_days
        }
    block_blobs = {"blob_types": ["blockBlob"]}
    return [
        {
            "name": "tiering",
            "type": "Lifecycle",
            "enabled": True,
            "definition": {"filters": block_blobs, "actions": {"base_blob": tiers}},
        },
        {
            "name": "expire-snapshots",
            "type": "Lifecycle",
            "enabled": True,
            "definition": {
                "filters": block_blobs,
                "actions": {
                    "snapshot": {
                        "delete": {
                            "days_after_creation_greater_than": (
                                lake.retention.noncurrent_version_days
                            )
                        }
                    }
                },
            },
        },
    ]


class DataLake(pulumi.ComponentResource):
    """An ADLS Gen2 storage account (StorageV2, hierarchical namespace; ZRS in
    prod, LRS elsewhere) that:

    - accepts HTTPS with TLS 1.2 or later only;
    - authorizes with Microsoft Entra ID only: shared keys, and the SAS tokens
      signed with them, are refused; blobs can never be made public;
    - denies every network by default (trusted Azure services excepted), and in
      prod has no public endpoint at all;
    - is encrypted twice: by the infrastructure, and with the platform key in
      Key Vault through the platform's encryption identity, for every service;
    - keeps deleted blobs and containers recoverable for `softDeleteDays`;
    - tiers and expires data by a lifecycle policy;
    - logs every read, write and delete to its own Log Analytics workspace
      (unless `lake.accessLogs.enabled` is false, which the pack allows in dev
      only, as an advisory finding).

    One private filesystem (container) per zone. The account, filesystems and
    workspace are protected and retained in prod, where a CanNotDelete lock on
    the account also stops deletion from outside Pulumi.
    """

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:DataLake", name, {}, opts)
        self._args = args
        baseline, context = args.baseline, args.context
        self.account = self._account(name)
        account_name = self.account.name
        self.blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account_name,
            resource_group_name=context.resource_group_name,
            blob_services_name=BLOB_SERVICE,
            delete_retention_policy={
                "enabled": True,
                "days": args.lake.retention.soft_delete_days,
            },
            container_delete_retention_policy={
                "enabled": True,
                "days": args.lake.retention.soft_delete_days,
            },
            opts=baseline.child(self),
        )
        self.filesystems = {zone: self._filesystem(name, zone) for zone in args.lake.zones}
        self.lifecycle = storage.ManagementPolicy(
            f"{name}-lifecycle",
            account_name=account_name,
            resource_group_name=context.resource_group_name,
            management_policy_name="default",
            policy={"rules": lifecycle_rules(args.lake)},
            opts=baseline.child(self),
        )
        self.logs: operationalinsights.Workspace | None = None
        if args.lake.access_logs.enabled:
            self.logs = self._access_logs(name)
        self.lock: authorization.ManagementLockByScope | None = None
        if context.production:
            self.lock = authorization.ManagementLockByScope(
                f"{name}-lock",
                scope=self.account.id,
                lock_name=f"{name}-cannot-delete",
                level="CanNotDelete",
                notes="The data lake is deleted only by lifting this lock on purpose.",
                opts=baseline.child(self),
            )
        self.filesystem_names = {z: fs.name for z, fs in self.filesystems.items()}
        self.filesystem_ids = {z: fs.id for z, fs in self.filesystems.items()}
        self.register_outputs(
            {
                "accountName": account_name,
                "filesystemNames": self.filesystem_names,
                "filesystemIds": self.filesystem_ids,
                "logWorkspaceId": self.logs.id if self.logs else None,
            }
        )

    def _account(self, name: str) -> storage.StorageAccount:
        args = self._args
        return secure_account(
            self,
            f"{name}-account",
            AccountSpec(role="lake", hierarchical=True, tags={"purpose": "lake"}),
            context=args.context,
            key=args.key,
            baseline=args.baseline,
        )

    def _filesystem(self, name: str, zone: str) -> storage.BlobContainer:
        args = self._args
        return storage.BlobContainer(
            f"{name}-{zone}",
            account_name=self.account.name,
            resource_group_name=args.context.resource_group_name,
            container_name=zone,
            public_access="None",
            metadata={"zone": zone},
            opts=args.baseline.stateful(self),
        )

    def _access_logs(self, name: str) -> operationalinsights.Workspace:
        args = self._args
        baseline, context = args.baseline, args.context
        workspace = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "PerGB2018"},
            # The settings keep this within the workspace's 30 to 730 days.
            retention_in_days=args.lake.access_logs.retention_days,
            features={
                # Queries need Entra ID and read only what the caller may read.
                "disable_local_auth": True,
                "enable_log_access_using_only_resource_permissions": True,
            },
            tags={**baseline.tags, "purpose": "access-logs"},
            opts=baseline.stateful(self),
        )
        log_access(self, f"{name}-access-logs", self.account, workspace.id, baseline)
        return workspace
