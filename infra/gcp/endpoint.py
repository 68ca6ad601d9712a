"""Vertex AI online endpoints: `mlops:gcp:Serving` (what every endpoint of a
stack shares) and `mlops:gcp:ModelEndpoint` (one endpoint and its model).

An endpoint is reached privately through Private Service Connect (see the
network's docstring): the endpoint allows only the stack's project, and a
service connection policy for Vertex AI's service class lets Vertex create the
consumer forwarding rule in the network's `endpoints` subnet by itself, so the
endpoint's private address survives every model version.

A new model version is a new deployed model: `VertexModelDeployment` deploys
it next to the old one, shifts the traffic as the rollout says, and only then
undeploys the old one. The endpoint itself only ever updates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.context import GcpProject, labels
from infra.gcp.key import grant_key_use
from infra.gcp.model_monitor import VertexModelMonitor, VertexModelMonitorArgs
from infra.gcp.services import AIPLATFORM_API
from infra.gcp.vertex_deployment import VertexModelDeployment, VertexModelDeploymentArgs
from infra.settings import BaselineRef, EndpointSettings

# Vertex AI's service class in service connection policies (PSC automation).
VERTEX_SERVICE_CLASS = "gcp-vertexai"
# The serving container's contract, the same on every cloud (SageMaker's).
SERVING_PORT = 8080
PREDICT_ROUTE = "/invocations"
HEALTH_ROUTE = "/ping"
ERROR_METRIC = "aiplatform.googleapis.com/prediction/online/error_count"
LATENCY_METRIC = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
ENDPOINT_RESOURCE = "aiplatform.googleapis.com/Endpoint"
# What the model's own service account may do in the project: write its logs and metrics.
RUNTIME_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
OBJECT_VIEWER = "roles/storage.objectViewer"
OBJECT_CREATOR = "roles/storage.objectCreator"


def _folder(path: str) -> str:
    """The folder an artifact lies in (settings refuse one at a bucket's root on GCP)."""
    return path.rsplit("/", 1)[0]


def endpoint_id(stack_prefix: str, endpoint: str) -> str:
    """Vertex AI takes a caller-chosen endpoint id only if it is numeric, at most
    ten digits, with no leading zero. A digest of the stack and the endpoint's name
    is that, the same on every run, and distinct between stacks of one project."""
    digest = int(hashlib.sha256(f"{stack_prefix}/{endpoint}".encode()).hexdigest(), 16)
    return str(1_000_000_000 + digest % 9_000_000_000)


@dataclass(frozen=True)
class ServingArgs:
    baseline: Baseline
    project: GcpProject
    network_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    encryption: EncryptionKey
    # Resources serving waits for (the Vertex AI, BigQuery and connectivity APIs).
    requires: Sequence[pulumi.Resource] = ()


class Serving(pulumi.ComponentResource):
    """What every endpoint of the stack shares: the Vertex AI service agent, allowed
    to use the platform key (endpoints and uploaded models are encrypted with it);
    a BigQuery dataset for request-response logs, encrypted with the platform key
    (its service agent allowed first), kept like the lake; and the service
    connection policy that places Vertex AI's Private Service Connect forwarding
    rules in the `endpoints` subnet."""

    def __init__(
        self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:Serving", name, {}, opts)
        self._args = args
        baseline = args.baseline
        self.agent = gcp.projects.ServiceIdentity(
            f"{name}-vertex-agent",
            service=AIPLATFORM_API,
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        self.key_grant = grant_key_use(
            self, f"{name}-vertex-key-user", args.encryption, self.agent.member, baseline
        )
        bigquery = gcp.bigquery.get_default_service_account_output(
            project=args.project.project_id,
            opts=pulumi.InvokeOutputOptions(depends_on=list(args.requires)),
        )
        logs_key = grant_key_use(
            self, f"{name}-logs-key-user", args.encryption, bigquery.member, baseline
        )
        self.dataset = gcp.bigquery.Dataset(
            f"{name}-logs",
            dataset_id=baseline.namer.name("serving", "logs", kind="gcp-id").replace("-", "_"),
            location=baseline.region,
            description=f"Request-response logs of {baseline.namer.prefix}'s endpoints",
            default_encryption_configuration={"kms_key_name": args.encryption.id},
            # Captured traffic is data: destroying the stack never drops its tables.
            delete_contents_on_destroy=False,
            labels=labels(baseline, {"purpose": "serving-logs"}),
            opts=baseline.stateful(self, depends_on=[logs_key, *args.requires]),
        )
        self.connection_policy = gcp.networkconnectivity.ServiceConnectionPolicy(
            f"{name}-psc",
            name=baseline.namer.name("vertex", "psc", kind="gcp-id"),
            location=baseline.region,
            service_class=VERTEX_SERVICE_CLASS,
            network=args.network_id,
            description="Vertex AI endpoints' Private Service Connect addresses",
            psc_config={"subnetworks": [args.endpoints_subnet_id]},
            labels=labels(baseline),
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        self.register_outputs({"loggingDataset": self.dataset.id, "vertexAgent": self.agent.email})


@dataclass(frozen=True)
class ModelEndpointArgs:
    baseline: Baseline
    project: GcpProject
    endpoint: str
    settings: EndpointSettings
    serving: Serving
    network_name: pulumi.Input[str]
    encryption: EncryptionKey
    # The alert route's notification channels.
    notification_channels: Sequence[pulumi.Input[str]]
    bucket_names: Mapping[str, pulumi.Output[str]]
    repositories: Mapping[str, gcp.artifactregistry.Repository]
    repository_urls: Mapping[str, pulumi.Output[str]]
    # Resources the endpoint waits for (the APIs it is created through).
    requires: Sequence[pulumi.Resource] = ()
    # Who drift findings are emailed to, besides the notification channels.
    alert_emails: Sequence[str] = ()
    # The drift baseline's folder in the lake; None when drift is not checked.
    drift_baseline: BaselineRef | None = None


class ModelEndpoint(pulumi.ComponentResource):
    """A Vertex AI endpoint encrypted with the platform key, private to the stack's
    network through Private Service Connect, logging the capture share of its
    requests and responses into the stack's BigQuery dataset (a table per
    endpoint); the model deployed on it (`VertexModelDeployment`) running as its
    own service account, which may read this model's artifact, pull from the
    serving repository and write logs and metrics, nothing more; and alert
    policies on the endpoint's errors and p99 latency."""

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:ModelEndpoint", name, {}, opts)
        self._args = args
        baseline, settings = args.baseline, args.settings
        self.account = gcp.serviceaccount.Account(
            f"{name}-runtime",
            account_id=self._account_id(),
            display_name=f"Model served by {baseline.namer.name(args.endpoint)}",
            description="Runs one Vertex AI deployed model; see the endpoint's component",
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        grants = self._grants(name)
        self.id = endpoint_id(baseline.namer.prefix, args.endpoint)
        self.endpoint = gcp.vertex.AiEndpoint(
            f"{name}-endpoint",
            name=self.id,
            display_name=baseline.namer.name(args.endpoint),
            description=f"Model endpoint {args.endpoint} of {baseline.namer.prefix}",
            location=baseline.region,
            region=baseline.region,
            encryption_spec={"kms_key_name": args.encryption.id},
            private_service_connect_config={
                "enable_private_service_connect": True,
                "project_allowlists": [args.project.project_id],
                "psc_automation_configs": [
                    {
                        "project_id": args.project.project_id,
                        "network": args.project.network_path(args.network_name),
                    }
                ],
            },
            predict_request_response_logging_config=self._logging(),
            labels=labels(baseline, {"endpoint": args.endpoint}),
            # Vertex must be able to use the key, and place the address, before it
            # exists. Its id is fixed (clients and alerts name it): protected in prod.
            opts=baseline.stateful(
                self,
                depends_on=[args.serving.key_grant, args.serving.connection_policy],
            ),
        )
        self.deployment = VertexModelDeployment(
            f"{name}-model",
            VertexModelDeploymentArgs(
                endpoint=self.endpoint.id,
                display_name=baseline.namer.name(args.endpoint),
                model=self._model(),
                machine_type=settings.instance_type,
                accelerator_type=settings.accelerator.type if settings.accelerator else None,
                accelerator_count=settings.accelerator.count if settings.accelerator else 0,
                min_replicas=settings.min_replicas,
                max_replicas=settings.max_replicas,
                autoscaling={
                    "metric": settings.autoscaling.metric,
                    "target": settings.autoscaling.target,
                },
                service_account=self.account.email,
                rollout=settings.rollout.model_dump(by_alias=True),
                alarms={
                    "errorsPerMinute": settings.alarms.errors_per_minute,
                    "latencyP99Ms": settings.alarms.latency_p99_ms,
                    "evaluationMinutes": settings.alarms.evaluation_minutes,
                },
                # A registry model given by name is labelled where it was uploaded.
                labels=labels(baseline, {"endpoint": args.endpoint})
                if settings.model.registry_version is None
                else {},
            ),
            opts=baseline.child(self, depends_on=grants),
        )
        self.alerts = self._alerts(name)
        self.monitor: VertexModelMonitor | None = None
        if args.drift_baseline is not None:
            self.monitor = self._drift_monitor(name, args.drift_baseline)
        self.register_outputs(
            {"endpointId": self.endpoint.id, "serviceAccount": self.account.email}
        )

    def _drift_monitor(self, name: str, baseline: BaselineRef) -> VertexModelMonitor:
        """Vertex AI model monitoring of the logged requests: every feature's
        distribution against the baseline's CSV files in the lake (skew) and
        against the previous window (drift), over `driftThreshold` (per feature
        where set), on the schedule, under the platform key, notifying the alert
        route's channels and addresses."""
        args = self._args
        monitoring = args.settings.monitoring
        bucket = args.bucket_names[baseline.zone]
        return VertexModelMonitor(
            f"{name}-drift",
            VertexModelMonitorArgs(
                endpoint=self.endpoint.id,
                display_name=args.baseline.namer.name(args.endpoint, "drift"),
                baseline_uri=pulumi.Output.concat("gs://", bucket, f"/{baseline.path}/*.csv"),
                baseline_format="csv",
                sampling_percent=monitoring.sampling_percent,
                kms_key_name=args.encryption.id,
                schedule_hours=monitoring.schedule_hours,
                drift_thresholds={
                    "default": monitoring.drift_threshold,
                    "features": dict(monitoring.feature_thresholds),
                },
                notification_emails=list(args.alert_emails),
                notification_channels=list(args.notification_channels),
                deployed_model_ids=[self.deployment.deployed_model_id],
                labels=labels(args.baseline, {"endpoint": args.endpoint}),
            ),
            opts=args.baseline.child(self),
        )

    def _account_id(self) -> str:
        """6 to 30 characters: the endpoint's name, and a digest of the stack so two
        stacks of one project never share an account."""
        args = self._args
        digest = hashlib.sha256(args.baseline.namer.prefix.encode()).hexdigest()[:6]
        return f"srv-{args.endpoint[:19]}-{digest}"

    @property
    def _capture_table(self) -> str:
        return self._args.endpoint.replace("-", "_")

    def _logging(self) -> dict[str, Any]:
        args = self._args
        percent = args.settings.data_capture.percent
        if percent == 0:
            return {"enabled": False}
        table = pulumi.Output.concat(
            "bq://",
            args.project.project_id,
            ".",
            args.serving.dataset.dataset_id,
            f".{self._capture_table}",
        )
        return {
            "enabled": True,
            "sampling_rate": percent / 100,
            "bigquery_destination": {"output_uri": table},
        }

    def _model(self) -> dict[str, Any]:
        args = self._args
        model = args.settings.model
        if model.registry_version is not None:
            name = (
                f"projects/{args.project.project_id}/locations/{args.baseline.region}"
                f"/models/{args.endpoint}@{model.registry_version}"
            )
            return {"name": name}
        assert model.image is not None  # settings require an image without a version
        pin = f":{model.image.tag}" if model.image.tag else f"@{model.image.digest}"
        # An Artifact Registry repository holds images by name: the image is named
        # like its repository, as the README's publishing steps push it.
        repository = model.image.repository
        image = pulumi.Output.concat(args.repository_urls[repository], f"/{repository}{pin}")
        upload: dict[str, Any] = {
            # Versions of one registry model named after the endpoint, so
            # `registryVersion: N` names what this stack uploaded.
            "modelId": args.endpoint,
            "imageUri": image,
            "kmsKeyName": args.encryption.id,
            "predictRoute": PREDICT_ROUTE,
            "healthRoute": HEALTH_ROUTE,
            "port": SERVING_PORT,
            # No labels here: the deployment's own labels go on the uploaded model,
            # and change in place; a label in `model` would replace the deployment.
        }
        if model.artifact is not None:
            bucket = args.bucket_names[model.artifact.zone]
            # Vertex reads a directory: the artifact's folder.
            upload["artifactUri"] = pulumi.Output.concat(
                "gs://", bucket, "/", _folder(model.artifact.path)
            )
        return {"upload": upload}

    def _grants(self, name: str) -> list[pulumi.Resource]:
        args = self._args
        baseline, model = args.baseline, args.settings.model
        member = self.account.member
        grants: list[pulumi.Resource] = [
            gcp.projects.IAMMember(
                f"{name}-{role.split('/')[1].split('.')[0]}-{role.rsplit('.', 1)[1].lower()}",
                project=args.project.project_id,
                role=role,
                member=member,
                opts=baseline.child(self),
            )
            for role in RUNTIME_PROJECT_ROLES
        ]
        if model.artifact is not None:
            bucket = args.bucket_names[model.artifact.zone]
            # The folder and what is in it, not a sibling sharing its prefix (1.4.20).
            prefix = f"{_folder(model.artifact.path)}/"
            grants.append(
                gcp.storage.BucketIAMMember(
                    f"{name}-read-model",
                    bucket=bucket,
                    role=OBJECT_VIEWER,
                    member=member,
                    condition={
                        "title": "model-artifact",
                        "description": "This model's folder only",
                        "expression": pulumi.Output.concat(
                            'resource.name.startsWith("projects/_/buckets/',
                            bucket,
                            f'/objects/{prefix}")',
                        ),
                    },
                    opts=baseline.child(self),
                )
            )
        if model.image is not None:
            repository = args.repositories[model.image.repository]
            grants.append(
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-pull",
                    project=repository.project,
                    location=repository.location,
                    repository=repository.name,
                    role="roles/artifactregistry.reader",
                    member=member,
                    opts=baseline.child(self),
                )
            )
        return grants

    def _alerts(self, name: str) -> list[gcp.monitoring.AlertPolicy]:
        args = self._args
        alarms = args.settings.alarms
        window = f"{alarms.evaluation_minutes * 60}s"
        scope = (
            f'resource.type = "{ENDPOINT_RESOURCE}" AND resource.labels.endpoint_id = "{self.id}"'
        )
        labels_ = labels(args.baseline, {"endpoint": args.endpoint})

        def policy(kind: str, title: str, condition: dict[str, Any]) -> gcp.monitoring.AlertPolicy:
            return gcp.monitoring.AlertPolicy(
                f"{name}-{kind}",
                display_name=f"{args.baseline.namer.name(args.endpoint)}: {title}",
                combiner="OR",
                conditions=[{"display_name": title, "condition_threshold": condition}],
                documentation={
                    "content": f"Endpoint {args.endpoint} of {args.baseline.namer.prefix}: "
                    f"{title}. A rollout in progress rolls back on the same threshold.",
                    "mime_type": "text/markdown",
                },
                # Closes itself once the metric is back under the threshold for a day.
                alert_strategy={"auto_close": "86400s"},
                notification_channels=list(args.notification_channels),
                user_labels=labels_,
                opts=args.baseline.child(self),
            )

        errors = policy(
            "errors",
            "prediction errors",
            {
                "filter": f'{scope} AND metric.type = "{ERROR_METRIC}"',
                "comparison": "COMPARISON_GT",
                "threshold_value": alarms.errors_per_minute,
                "duration": window,
                "aggregations": [
                    {
                        "alignment_period": "60s",
                        "per_series_aligner": "ALIGN_SUM",
                        "cross_series_reducer": "REDUCE_SUM",
                    }
                ],
                # No traffic is not a failure.
                "evaluation_missing_data": "EVALUATION_MISSING_DATA_INACTIVE",
                "trigger": {"count": 1},
            },
        )
        latency = policy(
            "latency",
            "p99 prediction latency",
            {
                # End to end, as the rollout's bake reads it.
                "filter": f'{scope} AND metric.type = "{LATENCY_METRIC}" '
                'AND metric.labels.latency_type = "total"',
                "comparison": "COMPARISON_GT",
                # The metric is a distribution in milliseconds.
                "threshold_value": alarms.latency_p99_ms,
                "duration": window,
                "aggregations": [
                    {
                        "alignment_period": "60s",
                        "per_series_aligner": "ALIGN_PERCENTILE_99",
                        "cross_series_reducer": "REDUCE_MAX",
                    }
                ],
                "evaluation_missing_data": "EVALUATION_MISSING_DATA_INACTIVE",
                "trigger": {"count": 1},
            },
        )
        return [errors, latency]
