"""`mlops:gcp:ProjectServices`: the Google APIs the platform's resources are created through."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline

COMPUTE_API = "compute.googleapis.com"
KMS_API = "cloudkms.googleapis.com"
STORAGE_API = "storage.googleapis.com"
ARTIFACT_REGISTRY_API = "artifactregistry.googleapis.com"
# Artifact Registry scans pushed images only where this API is on (scanning "INHERITED").
CONTAINER_SCANNING_API = "containerscanning.googleapis.com"
# Serving: Vertex AI endpoints, their request-response logs in BigQuery, and the
# service connection policy that gives them private addresses.
AIPLATFORM_API = "aiplatform.googleapis.com"
BIGQUERY_API = "bigquery.googleapis.com"
NETWORK_CONNECTIVITY_API = "networkconnectivity.googleapis.com"
MONITORING_API = "monitoring.googleapis.com"
IAM_API = "iam.googleapis.com"
LOGGING_API = "logging.googleapis.com"
PUBSUB_API = "pubsub.googleapis.com"
TPU_API = "tpu.googleapis.com"
# CI: workload identity federation exchanges GitHub's token (STS) for a service
# account's (IAM credentials).
IAM_CREDENTIALS_API = "iamcredentials.googleapis.com"
STS_API = "sts.googleapis.com"
CI_APIS = (IAM_API, IAM_CREDENTIALS_API, STS_API)
# Accelerator pools: GPU groups scale on a Pub/Sub job queue; TPUs have their own API.
POOL_APIS = {
    "gpu": (PUBSUB_API, MONITORING_API, IAM_API),
    "tpu": (TPU_API, MONITORING_API, IAM_API),
}
SERVING_APIS = (AIPLATFORM_API, BIGQUERY_API, NETWORK_CONNECTIVITY_API, MONITORING_API, IAM_API)


@dataclass(frozen=True)
class ProjectServicesArgs:
    baseline: Baseline
    container_scanning: bool
    serving: bool = False
    # The kinds of the stack's accelerator pools (gpu, tpu).
    pool_kinds: frozenset[str] = frozenset()
    # With `mlops:ci`: GitHub workflows federate into the project.
    ci: bool = False


class ProjectServices(pulumi.ComponentResource):
    """Enables Cloud KMS, Cloud Storage, Artifact Registry, Compute Engine (the network),
    Cloud Logging (the audit trail),
    Container Scanning (when images are scanned) and, for a stack with endpoints,
    Vertex AI, BigQuery, Network Connectivity, Cloud Monitoring and IAM, for pools
    Pub/Sub (GPU job queues) and Cloud TPU, and with `mlops:ci` IAM credentials and
    STS (GitHub's workload identity federation), in the stack's
    project, so a fresh project deploys in one run.
    Destroying the stack leaves the APIs on: other workloads in the project may use them."""

    def __init__(
        self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:ProjectServices", name, {}, opts)
        apis = [KMS_API, STORAGE_API, ARTIFACT_REGISTRY_API, COMPUTE_API, LOGGING_API]
        if args.container_scanning:
            apis.append(CONTAINER_SCANNING_API)
        if args.serving:
            apis.extend(SERVING_APIS)
        if args.ci:
            apis.extend(CI_APIS)
        for kind in sorted(args.pool_kinds):
            apis.extend(POOL_APIS.get(kind, ()))
        apis = list(dict.fromkeys(apis))
        self.services = {
            api: gcp.projects.Service(
                f"{name}-{api.split('.', 1)[0]}",
                service=api,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=args.baseline.child(self),
            )
            for api in apis
        }
        self.register_outputs({"services": sorted(self.services)})
