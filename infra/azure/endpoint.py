"""`mlops:azure:ModelEndpoint`: an Azure Machine Learning managed online endpoint
and the deployment that serves its model.

A deployment is named by a digest of what it serves (model, image, instance
type), so a new model version is a new deployment, created next to the old
one. `OnlineEndpointTraffic` then moves the endpoint's traffic to it as the
rollout says (a canary share, baked, then all of it), and the old deployment is
deleted last. The endpoint itself only ever updates.

A managed deployment's own scale settings take only the default type
(target-utilization scaling is for Kubernetes deployments), so Azure Monitor
autoscale moves its instance count between the replica bounds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import machinelearningservices, monitor

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.azure.ml import MlWorkspace, datastore_name
from infra.azure.online_traffic import OnlineEndpointTraffic, OnlineEndpointTrafficArgs
from infra.common import Baseline
from infra.settings import BaselineRef, EndpointSettings

# The serving container's contract, the same on every cloud (SageMaker's).
SERVING_PORT = 8080
PREDICT_ROUTE = "/invocations"
HEALTH_ROUTE = "/ping"
ENDPOINT_METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
UTILIZATION_METRICS = {
    "cpuUtilization": "CpuUtilizationPercentage",
    "gpuUtilization": "GpuUtilizationPercentage",
}
# Scale in only well below the target, so one replica more or less never flaps.
SCALE_IN_FRACTION = 0.5
DIGEST_LENGTH = 10
# Drift monitors run on serverless Spark: this size and runtime (Azure ML's defaults).
MONITOR_INSTANCE = "standard_e4s_v3"
MONITOR_SPARK = "3.4"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:DIGEST_LENGTH]


def _duration(seconds: int) -> str:
    """ISO 8601 as Azure writes it back (PT5M, not PT300S), so a refresh sees no change."""
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    if seconds % 60 == 0:
        return f"PT{seconds // 60}M"
    return f"PT{seconds}S"


# The windows a metric alert takes, in minutes.
ALERT_WINDOWS = {1: "PT1M", 5: "PT5M", 15: "PT15M", 30: "PT30M", 60: "PT1H"}
# Azure ML answers a request within 180 s at most.
MAX_REQUEST_SECONDS = 180


def alert_window(minutes: int) -> str:
    """The shortest window Azure Monitor offers that covers `minutes`."""
    return next(w for m, w in sorted(ALERT_WINDOWS.items()) if m >= minutes)


@dataclass(frozen=True)
class ModelEndpointArgs:
    baseline: Baseline
    context: AzureContext
    endpoint: str
    settings: EndpointSettings
    workspace: MlWorkspace
    repository_urls: Mapping[str, pulumi.Output[str]]
    filesystem_ids: Mapping[str, pulumi.Output[str]]
    # The Azure ML registry's name, when the stack has one.
    model_registry: str | None
    capture_zone: str
    # What a metric alert notifies (the alert route's action group).
    alert_actions: Sequence[Mapping[str, pulumi.Input[str]]] = ()
    # Who a drift finding is emailed to (Azure ML monitors notify by email only).
    alert_emails: Sequence[str] = ()
    # The drift baseline's folder in the lake; None when drift is not checked.
    drift_baseline: BaselineRef | None = None


class ModelEndpoint(pulumi.ComponentResource):
    """A managed online endpoint that takes Microsoft Entra tokens only (no keys)
    and has no public endpoint in prod; a managed deployment of the model (image
    from the stack's registry, artifact from the lake) with health probes,
    request limits, Application Insights and a data collector writing the capture
    share of inputs and outputs into the lake; the endpoint's identity may pull
    from the registry, read the model's zone and write the capture zone, nothing
    more; autoscale between the replica bounds; metric alerts on 5xx responses
    and p99 latency, which also roll a rollout back."""

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:ModelEndpoint", name, {}, opts)
        self._args = args
        baseline, context, settings = args.baseline, args.context, args.settings
        workspace = args.workspace.workspace
        self._scope = {
            "resource_group_name": context.resource_group_name,
            "workspace_name": workspace.name,
        }
        endpoint_properties = {
            "auth_mode": "AADToken",
            "public_network_access": context.public_network_access,
            "description": f"Model endpoint {args.endpoint} of {baseline.namer.prefix}",
        }
        self.endpoint = machinelearningservices.OnlineEndpoint(
            f"{name}-endpoint",
            endpoint_name=context.global_name(
                baseline.namer, args.endpoint, kind="azure-ml-endpoint"
            ),
            location=context.location,
            identity={"type": "SystemAssigned"},
            properties=endpoint_properties,
            tags=self._tags(),
            opts=baseline.child(self),
            **self._scope,
        )
        grants = self._grants(name)
        self.deployment = machinelearningservices.OnlineDeployment(
            f"{name}-deployment",
            deployment_name=self._deployment_name(),
            endpoint_name=self.endpoint.name,
            location=context.location,
            sku={"name": "Default", "capacity": settings.min_replicas},
            properties=self._deployment_properties(name),
            tags=self._tags(),
            # Named by what it serves: a new model is a new deployment, made first.
            # Autoscale owns the instance count once it exists.
            opts=baseline.child(self, depends_on=grants, ignore_changes=["sku.capacity"]),
            **self._scope,
        )
        self.alerts = self._alerts(name)
        self.traffic = OnlineEndpointTraffic(
            f"{name}-traffic",
            OnlineEndpointTrafficArgs(
                endpoint_id=self.endpoint.id,
                deployment=self.deployment.name,
                rollout=settings.rollout.model_dump(by_alias=True),
                alarms={
                    "errorsPerMinute": settings.alarms.errors_per_minute,
                    "latencyP99Ms": settings.alarms.latency_p99_ms,
                },
                # A PUT of the endpoint may reset its traffic: re-apply it after one.
                endpoint_revision=_digest({**endpoint_properties, "tags": self._tags()}),
            ),
            opts=baseline.child(self, depends_on=[self.deployment, *self.alerts]),
        )
        self._autoscale(name)
        self.monitor: machinelearningservices.Schedule | None = None
        if args.drift_baseline is not None and self._inputs is not None:
            self.monitor = self._drift_monitor(name, args.drift_baseline, self._inputs)
        self.register_outputs(
            {"endpointName": self.endpoint.name, "deploymentName": self.deployment.name}
        )

    def _tags(self) -> dict[str, str]:
        return {**self._args.baseline.tags, "endpoint": self._args.endpoint}

    def _served(self) -> dict[str, Any]:
        """What a deployment serves: any change is a new deployment."""
        settings = self._args.settings
        return {
            "model": settings.model.model_dump(by_alias=True, exclude_none=True),
            "instanceType": settings.instance_type,
        }

    def _deployment_name(self) -> str:
        """3 to 32 characters, a letter first: the endpoint's name and the digest."""
        return f"{self._args.endpoint[:20]}-{_digest(self._served())}"

    def _model_id(self, name: str) -> pulumi.Input[str] | None:
        args = self._args
        model = args.settings.model
        if model.registry_version is not None:
            assert args.model_registry is not None  # settings require the registry
            return (
                f"azureml://registries/{args.model_registry}/models/{args.endpoint}"
                f"/versions/{model.registry_version}"
            )
        if model.artifact is None:  # an image that carries its model
            return None
        version = machinelearningservices.ModelVersion(
            f"{name}-model",
            name=args.endpoint,
            version=_digest(model.artifact.model_dump()),
            properties={
                "model_type": "custom_model",
                "model_uri": f"azureml://datastores/{datastore_name(model.artifact.zone)}"
                f"/paths/{model.artifact.path}",
                "description": f"Model of endpoint {args.endpoint}",
            },
            opts=args.baseline.child(
                self, depends_on=[args.workspace.datastores[model.artifact.zone]]
            ),
            **self._scope,
        )
        return version.id

    def _environment_id(self, name: str) -> pulumi.Input[str] | None:
        args = self._args
        image = args.settings.model.image
        if image is None:
            return None
        pin = f":{image.tag}" if image.tag else f"@{image.digest}"
        route = {"port": SERVING_PORT}
        inference = {
            "liveness_route": {"path": HEALTH_ROUTE, **route},
            "readiness_route": {"path": HEALTH_ROUTE, **route},
            "scoring_route": {"path": PREDICT_ROUTE, **route},
        }
        environment = machinelearningservices.EnvironmentVersion(
            f"{name}-image",
            name=f"{args.endpoint}-image",
            # Versions are immutable: a new image or new routes is a new version.
            version=_digest({**image.model_dump(exclude_none=True), **inference}),
            properties={
                "image": pulumi.Output.concat(args.repository_urls[image.repository], pin),
                "os_type": "Linux",
                "inference_config": inference,
                "description": f"Serving image of endpoint {args.endpoint}",
            },
            opts=args.baseline.child(self),
            **self._scope,
        )
        return environment.id

    def _capture(self, name: str) -> dict[str, Any] | None:
        args = self._args
        percent = args.settings.data_capture.percent
        self._inputs: str | None = None
        if percent == 0:
            return None
        collections = {}
        # Payload logging: `request` and `response` capture what the endpoint
        # receives and answers, with no change to the serving container (the
        # `model_inputs`/`model_outputs` collections need the collector SDK in it).
        for kind, collection in (("inputs", "request"), ("outputs", "response")):
            path = f"capture/{args.endpoint}/{kind}/"
            uri = f"azureml://datastores/{datastore_name(args.capture_zone)}/paths/{path}"
            asset = machinelearningservices.DataVersion(
                f"{name}-capture-{kind}",
                name=f"{args.endpoint}-{kind}",
                version=_digest(uri),
                properties=machinelearningservices.UriFolderDataVersionArgs(
                    data_type="uri_folder",
                    data_uri=uri,
                    description=f"Captured model {kind} of endpoint {args.endpoint}",
                ),
                opts=args.baseline.child(
                    self, depends_on=[args.workspace.datastores[args.capture_zone]]
                ),
                **self._scope,
            )
            if kind == "inputs":
                # What drift monitoring reads: the data asset, as Azure ML names it.
                self._inputs = f"azureml:{args.endpoint}-{kind}:{_digest(uri)}"
            collections[collection] = {
                "data_collection_mode": "Enabled",
                "sampling_rate": percent / 100,
                "data_id": asset.id,
            }
        return {"collections": collections, "rolling_rate": "Hour"}

    def _drift_monitor(
        self, name: str, baseline: BaselineRef, inputs: str
    ) -> machinelearningservices.Schedule:
        """An Azure ML schedule running a data drift monitor: the endpoint's collected
        requests of the last period against the baseline folder in the lake, every
        feature, Jensen-Shannon distance over `driftThreshold` (per feature where
        set), on serverless Spark as the workspace's identity, emailing the alert
        addresses. Typed args throughout: nearly every level is a union."""
        args = self._args
        monitoring = args.settings.monitoring
        hours = monitoring.schedule_hours
        ml = machinelearningservices
        thresholds: list[Any] = [
            ml.NumericalDataDriftMetricThresholdArgs(
                data_type="Numerical",
                metric="JensenShannonDistance",
                threshold=ml.MonitoringThresholdArgs(value=monitoring.drift_threshold),
            ),
            ml.CategoricalDataDriftMetricThresholdArgs(
                data_type="Categorical",
                metric="JensenShannonDistance",
                threshold=ml.MonitoringThresholdArgs(value=monitoring.drift_threshold),
            ),
        ]
        signals: dict[str, Any] = {
            "data-drift": ml.DataDriftMonitoringSignalArgs(
                signal_type="DataDrift",
                production_data=ml.RollingInputDataArgs(
                    input_data_type="Rolling",
                    job_input_type="uri_folder",
                    uri=inputs,
                    window_size=f"PT{hours}H",
                    window_offset="P0D",
                ),
                reference_data=ml.FixedInputDataArgs(
                    input_data_type="Fixed",
                    job_input_type="uri_folder",
                    uri=f"azureml://datastores/{datastore_name(baseline.zone)}"
                    f"/paths/{baseline.path}/",
                ),
                features=ml.AllFeaturesArgs(filter_type="AllFeatures"),
                metric_thresholds=thresholds,
                notification_types=["AmlNotification"],
            )
        }
        for feature, value in sorted(monitoring.feature_thresholds.items()):
            signals[f"drift-{feature}"[:64]] = ml.DataDriftMonitoringSignalArgs(
                signal_type="DataDrift",
                production_data=signals["data-drift"].production_data,
                reference_data=signals["data-drift"].reference_data,
                features=ml.FeatureSubsetArgs(filter_type="FeatureSubset", features=[feature]),
                metric_thresholds=[
                    ml.NumericalDataDriftMetricThresholdArgs(
                        data_type="Numerical",
                        metric="JensenShannonDistance",
                        threshold=ml.MonitoringThresholdArgs(value=value),
                    )
                ],
                notification_types=["AmlNotification"],
            )
        definition = ml.MonitorDefinitionArgs(
            compute_configuration=ml.MonitorServerlessSparkComputeArgs(
                compute_type="ServerlessSpark",
                compute_identity=ml.ManagedComputeIdentityArgs(
                    compute_identity_type="ManagedIdentity"
                ),
                instance_type=MONITOR_INSTANCE,
                runtime_version=MONITOR_SPARK,
            ),
            signals=signals,
            alert_notification_settings=ml.MonitorNotificationSettingsArgs(
                email_notification_settings=ml.MonitorEmailNotificationSettingsArgs(
                    emails=list(args.alert_emails)
                )
            ),
        )
        trigger = ml.RecurrenceTriggerArgs(
            trigger_type="Recurrence",
            frequency="Day" if hours == 24 else "Hour",
            interval=1 if hours == 24 else hours,
            time_zone="UTC",
        )
        return ml.Schedule(
            f"{name}-drift",
            name=f"{args.endpoint}-drift",
            properties=ml.SchedulePropertiesArgs(
                action=ml.CreateMonitorActionArgs(
                    action_type="CreateMonitor", monitor_definition=definition
                ),
                trigger=trigger,
                display_name=f"Drift of {args.endpoint}",
                is_enabled=True,
                tags=self._tags(),
            ),
            opts=args.baseline.child(self, depends_on=[self.deployment]),
            **self._scope,
        )

    def _deployment_properties(
        self, name: str
    ) -> machinelearningservices.ManagedOnlineDeploymentArgs:
        """A typed args object, not a dict: `properties` is a union (managed or
        Kubernetes), and the SDK names a dict's keys for the engine only when it
        knows the type."""
        settings = self._args.settings
        probe = {
            "initial_delay": _duration(30),
            "period": _duration(10),
            "timeout": _duration(2),
            "failure_threshold": 30,
            "success_threshold": 1,
        }
        return machinelearningservices.ManagedOnlineDeploymentArgs(
            endpoint_compute_type="Managed",
            instance_type=settings.instance_type,
            model=self._model_id(name),
            environment_id=self._environment_id(name),
            scale_settings=machinelearningservices.DefaultScaleSettingsArgs(scale_type="Default"),
            liveness_probe=probe,
            readiness_probe={**probe, "failure_threshold": 3},
            request_settings={
                "request_timeout": _duration(
                    min(settings.alarms.latency_p99_ms // 1000 + 5, MAX_REQUEST_SECONDS)
                ),
                "max_concurrent_requests_per_instance": 1,
            },
            app_insights_enabled=True,
            data_collector=self._capture(name),
            description=f"Serves {json.dumps(self._served(), sort_keys=True)}",
        )

    def _grants(self, name: str) -> list[pulumi.Resource]:
        args = self._args
        model = args.settings.model
        principal = self.endpoint.identity.apply(lambda i: i.principal_id)
        # (AcrPull on the workspace's registry is assigned by Azure ML itself to a
        # system-assigned endpoint identity; a second, identical one is refused.)
        wanted = [
            (
                "capture",
                rbac.STORAGE_BLOB_DATA_CONTRIBUTOR,
                args.filesystem_ids[args.capture_zone],
                "Write captured requests and responses",
            ),
        ]
        if model.artifact is not None:
            wanted.append(
                (
                    "read-model",
                    rbac.STORAGE_BLOB_DATA_READER,
                    args.filesystem_ids[model.artifact.zone],
                    "Read the model's artifact",
                )
            )
        return [
            rbac.assign(
                f"{name}-{role}",
                rbac.Grant(
                    principal_id=principal,
                    role_id=role_id,
                    scope=pulumi.Output.from_input(scope),
                    description=f"Endpoint {args.endpoint}: {description}",
                ),
                args.context,
                args.baseline.child(self),
            )
            for role, role_id, scope, description in wanted
        ]

    def _autoscale(self, name: str) -> monitor.AutoscaleSetting:
        args = self._args
        settings = args.settings
        scaling = settings.autoscaling
        if scaling.metric in UTILIZATION_METRICS:
            trigger: dict[str, Any] = {
                "metric_name": UTILIZATION_METRICS[scaling.metric],
                "metric_namespace": DEPLOYMENT_METRICS,
                "metric_resource_uri": self.deployment.id,
            }
        else:
            # Requests per minute of this deployment, per instance.
            trigger = {
                "metric_name": "RequestsPerMinute",
                "metric_namespace": ENDPOINT_METRICS,
                "metric_resource_uri": self.endpoint.id,
                "dimensions": [
                    {
                        "dimension_name": "deployment",
                        "operator": "Equals",
                        "values": [self.deployment.name],
                    }
                ],
                "divide_per_instance": True,
            }
        trigger |= {
            "time_grain": "PT1M",
            "statistic": "Average",
            "time_window": "PT5M",
            "time_aggregation": "Average",
        }

        def rule(direction: str, operator: str, threshold: float, cooldown: int) -> dict[str, Any]:
            return {
                "metric_trigger": {**trigger, "operator": operator, "threshold": threshold},
                "scale_action": {
                    "direction": direction,
                    "type": "ChangeCount",
                    "value": "1",
                    "cooldown": _duration(cooldown),
                },
            }

        return monitor.AutoscaleSetting(
            f"{name}-autoscale",
            resource_group_name=args.context.resource_group_name,
            location=args.context.location,
            target_resource_uri=self.deployment.id,
            enabled=True,
            profiles=[
                {
                    "name": "replicas",
                    "capacity": {
                        "minimum": str(settings.min_replicas),
                        "maximum": str(settings.max_replicas),
                        "default": str(settings.min_replicas),
                    },
                    "rules": [
                        rule(
                            "Increase",
                            "GreaterThan",
                            scaling.target,
                            scaling.scale_out_cooldown_seconds,
                        ),
                        rule(
                            "Decrease",
                            "LessThan",
                            scaling.target * SCALE_IN_FRACTION,
                            scaling.scale_in_cooldown_seconds,
                        ),
                    ],
                }
            ],
            tags=self._tags(),
            # A setting follows one deployment: a new deployment gets a new setting
            # (made first, autonamed), as ARM may refuse to re-point one in place.
            opts=args.baseline.child(self, replace_on_changes=["targetResourceUri"]),
        )

    def _alerts(self, name: str) -> list[monitor.MetricAlert]:
        args = self._args
        alarms = args.settings.alarms
        window = alert_window(alarms.evaluation_minutes)

        def alert(kind: str, description: str, criterion: dict[str, Any]) -> monitor.MetricAlert:
            return monitor.MetricAlert(
                f"{name}-{kind}",
                resource_group_name=args.context.resource_group_name,
                location="global",
                description=f"Endpoint {args.endpoint}: {description}",
                scopes=[self.endpoint.id],
                severity=2,
                enabled=True,
                evaluation_frequency="PT1M",
                window_size=window,
                auto_mitigate=True,
                actions=list(args.alert_actions),
                # Typed: `criteria` is a union, whose dict keys the SDK would not rename.
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                    all_of=[
                        monitor.MetricCriteriaArgs(
                            criterion_type="StaticThresholdCriterion",
                            name=kind,
                            metric_namespace=ENDPOINT_METRICS,
                            operator="GreaterThan",
                            **criterion,
                        )
                    ],
                ),
                tags=self._tags(),
                opts=args.baseline.child(self),
            )

        errors = alert(
            "errors",
            "5xx responses per minute",
            {
                "metric_name": "RequestsPerMinute",
                # The only aggregation the metric offers: requests per minute, averaged.
                "time_aggregation": "Average",
                "threshold": alarms.errors_per_minute,
                "dimensions": [
                    {"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}
                ],
            },
        )
        latency = alert(
            "latency",
            "p99 request latency (ms)",
            {
                "metric_name": "RequestLatency_P99",
                "time_aggregation": "Average",
                "threshold": alarms.latency_p99_ms,
            },
        )
        return [errors, latency]
