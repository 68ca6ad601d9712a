"""`mlops:gcp:AuditLogs`: who read or changed the lake, the registries, the keys
and the models.

Data Access audit logs (admin reads, data reads and data writes) are turned on
for Cloud Storage, Artifact Registry, Cloud KMS and Vertex AI: Google records
admin writes always, data access only when asked. A project IAM audit config is
authoritative per service, so another tool setting one for the same service in
this project would fight over it. A log sink copies every audit log entry of the
project into a log bucket of the stack, in its region, encrypted with the
platform key, kept `audit.retentionDays`; locked in prod (its retention can then
never be shortened, nor the bucket deleted before its entries expire).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.context import GcpProject
from infra.gcp.key import grant_key_use
from infra.settings import AuditSettings

AUDITED_SERVICES = (
    "storage.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudkms.googleapis.com",
    "aiplatform.googleapis.com",
)
DATA_ACCESS = ("ADMIN_READ", "DATA_READ", "DATA_WRITE")
AUDIT_FILTER = 'logName:"/logs/cloudaudit.googleapis.com"'


@dataclass(frozen=True)
class AuditLogsArgs:
    baseline: Baseline
    project: GcpProject
    settings: AuditSettings
    encryption: EncryptionKey
    production: bool
    # Resources the audit trail waits for (the Logging and KMS APIs).
    requires: Sequence[pulumi.Resource] = ()


class AuditLogs(pulumi.ComponentResource):
    """Data Access audit logs for the platform's services, and a locked,
    CMEK-encrypted log bucket with a sink of every audit entry into it."""

    def __init__(
        self, name: str, args: AuditLogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:AuditLogs", name, {}, opts)
        baseline, project = args.baseline, args.project
        for service in AUDITED_SERVICES:
            gcp.projects.IAMAuditConfig(
                f"{name}-{service.split('.', 1)[0]}",
                project=project.project_id,
                service=service,
                audit_log_configs=[{"log_type": kind} for kind in DATA_ACCESS],
                opts=baseline.child(self, depends_on=list(args.requires)),
            )
        logging_agent = gcp.logging.get_project_cmek_settings_output(
            project=project.project_id,
            opts=pulumi.InvokeOutputOptions(depends_on=list(args.requires)),
        )
        grant = grant_key_use(
            self,
            f"{name}-key-user",
            args.encryption,
            pulumi.Output.concat("serviceAccount:", logging_agent.service_account_id),
            baseline,
        )
        self.bucket = gcp.logging.ProjectBucketConfig(
            name,
            project=project.project_id,
            location=baseline.region,
            bucket_id=baseline.namer.name("audit", kind="gcp-id"),
            description=f"Audit logs of {baseline.namer.prefix}",
            retention_days=args.settings.retention_days,
            locked=args.production,
            cmek_settings={"kms_key_name": args.encryption.id},
            opts=baseline.stateful(self, depends_on=[grant]),
        )
        self.sink = gcp.logging.ProjectSink(
            f"{name}-sink",
            name=baseline.namer.name("audit", kind="gcp-id"),
            project=project.project_id,
            destination=pulumi.Output.concat("logging.googleapis.com/", self.bucket.id),
            filter=AUDIT_FILTER,
            description="Every audit log entry of the project, into the stack's audit bucket",
            unique_writer_identity=True,
            opts=baseline.child(self),
        )
        self.register_outputs({"auditBucket": self.bucket.id, "auditSink": self.sink.id})
