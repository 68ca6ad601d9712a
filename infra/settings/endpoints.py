"""The `mlops:endpoints` block: one managed inference endpoint per entry, its
model, scaling, captured traffic, rollout, alarms and drift monitoring."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from infra.settings.fields import Model, RepositoryName, ZoneName, matching

IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_DIGEST = r"^sha256:[a-f0-9]{64}$"
# A relative object path: no leading '/', no '..' segment, no empty segment.
ARTIFACT_PATH = r"^(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$"


class ImageRef(Model):
    """A serving image in the stack's own container registry, pinned by tag or digest."""

    repository: RepositoryName
    tag: Annotated[str, matching("image tag", IMAGE_TAG, "letters, digits, _ . -")] | None = None
    digest: Annotated[str, matching("image digest", IMAGE_DIGEST, "sha256:<64 hex>")] | None = None

    @model_validator(mode="after")
    def _pinned(self) -> ImageRef:
        if (self.tag is None) == (self.digest is None):
            raise ValueError("give the image exactly one of tag or digest")
        return self


class ArtifactRef(Model):
    """Where the model's artifact lies in the lake: a zone and a path inside it."""

    zone: ZoneName
    path: Annotated[
        str,
        matching(
            "artifact path", ARTIFACT_PATH, "a relative path like models/churn/3/model.tar.gz"
        ),
    ]


class ServedModel(Model):
    """The image (and its artifact from the lake), or a version of the stack's model registry."""

    image: ImageRef | None = None
    artifact: ArtifactRef | None = None
    registry_version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ServedModel:
        if self.registry_version is not None and (self.image or self.artifact):
            raise ValueError(
                "registryVersion names image and artifact itself; give one or the other"
            )
        if self.registry_version is None and self.image is None:
            raise ValueError("give an image (with its artifact) or a registryVersion")
        return self


UTILIZATION_METRICS = ("cpuUtilization", "gpuUtilization")


class Autoscaling(Model):
    """Target tracking between minReplicas and maxReplicas."""

    metric: Literal["invocationsPerReplica", "cpuUtilization", "gpuUtilization"] = (
        "invocationsPerReplica"
    )
    # Invocations per replica per minute, or a utilization percentage.
    target: Annotated[int, Field(ge=1, le=100_000)] = 100
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @model_validator(mode="after")
    def _percent(self) -> Autoscaling:
        if self.metric in UTILIZATION_METRICS and self.target > 100:
            raise ValueError(f"target {self.target} is not a percentage for {self.metric}")
        return self


class DataCapture(Model):
    """The share of requests and responses kept in the lake, encrypted with the platform key,
    under `capture/<endpoint>/` in `zone` (the lake's first zone unless named)."""

    percent: Annotated[int, Field(ge=0, le=100)] = 10
    zone: ZoneName | None = None


class Alarms(Model):
    """When the endpoint is unhealthy: these alarms also roll a rollout back."""

    errors_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 5
    latency_p99_ms: Annotated[int, Field(ge=1, le=600_000)] = 1000
    evaluation_minutes: Annotated[int, Field(ge=1, le=60)] = 3


class Rollout(Model):
    """How a new model version takes the traffic; any alarm of the endpoint rolls it back."""

    strategy: Literal["allAtOnce", "canary", "linear"] = "allAtOnce"
    canary_percent: Annotated[int, Field(ge=1, le=50)] = 10
    linear_step_percent: Annotated[int, Field(ge=5, le=50)] = 20
    # The bake time: how long each step waits, watching the alarms, before the next.
    # SageMaker takes at most an hour per step (WaitIntervalInSeconds <= 3600).
    wait_minutes: Annotated[int, Field(ge=1, le=60)] = 10

    @model_validator(mode="after")
    def _applies(self) -> Rollout:
        for key, strategy in (("canaryPercent", "canary"), ("linearStepPercent", "linear")):
            name = "canary_percent" if strategy == "canary" else "linear_step_percent"
            if name in self.model_fields_set and self.strategy != strategy:
                raise ValueError(f"{key} applies to strategy {strategy}, not {self.strategy}")
        return self


# A feature name as the model's inputs name it (a column, a JSON key).
FEATURE = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
DriftScore = Annotated[float, Field(gt=0, le=1)]


class BaselineRef(Model):
    """A folder in a lake zone holding what the endpoint's inputs are compared with:
    the training data (GCP, Azure) and Model Monitor's statistics.json and
    constraints.json (AWS; from a baselining job)."""

    zone: ZoneName
    path: Annotated[
        str, matching("baseline path", ARTIFACT_PATH, "a relative folder like baselines/churn")
    ]


class Monitoring(Model):
    """Drift checks of the endpoint's captured inputs against its baseline. On by
    default wherever traffic is captured; the baseline defaults to
    `baselines/<endpoint>` in the artifact's zone (the lake's first without one)."""

    enabled: bool = True
    baseline: BaselineRef | None = None
    # How often captured traffic is checked: every hour, every 6, 12 or 24 hours.
    schedule_hours: Literal[1, 6, 12, 24] = 24
    # Distance of a feature's distribution from the baseline that counts as drift:
    # Jensen-Shannon divergence or L-infinity distance, 0 to 1.
    drift_threshold: DriftScore = 0.3
    feature_thresholds: Annotated[dict[str, DriftScore], Field(max_length=200)] = {}
    # The share of captured requests each check reads.
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 100

    @model_validator(mode="after")
    def _features(self) -> Monitoring:
        pattern = re.compile(FEATURE)
        for feature in self.feature_thresholds:
            if not pattern.match(feature):
                raise ValueError(f"{feature!r} is not a feature name (letters, digits, _ . -)")
        return self


class EndpointAccelerator(Model):
    """Accelerators attached to a machine type, where the cloud separates them (GCP)."""

    type: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=1, le=16)] = 1


class EndpointSettings(Model):
    """A private, autoscaled model endpoint that captures its traffic and rolls out safely."""

    model: ServedModel
    instance_type: Annotated[str, Field(min_length=1)]
    accelerator: EndpointAccelerator | None = None
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    autoscaling: Autoscaling = Autoscaling()
    data_capture: DataCapture = DataCapture()
    rollout: Rollout = Rollout()
    alarms: Alarms = Alarms()
    monitoring: Monitoring = Monitoring()
    # The container makes no outbound call (models that download at start-up cannot).
    network_isolation: bool = True

    @property
    def monitored(self) -> bool:
        """Drift is checked wherever traffic is captured, unless turned off."""
        return self.monitoring.enabled and self.data_capture.percent > 0

    def capture_zone(self, lake_zones: list[str]) -> str:
        """The lake zone captured requests go to: the configured one, else the first."""
        return self.data_capture.zone or lake_zones[0]

    def drift_baseline(self, endpoint: str, lake_zones: list[str]) -> BaselineRef | None:
        """What drift is measured against: none when the endpoint is not monitored,
        else the configured baseline, or `baselines/<endpoint>` beside the artifact."""
        if not self.monitored:
            return None
        if self.monitoring.baseline is not None:
            return self.monitoring.baseline
        zone = self.model.artifact.zone if self.model.artifact else lake_zones[0]
        return BaselineRef(zone=zone, path=f"baselines/{endpoint}")

    @model_validator(mode="after")
    def _bounds(self) -> EndpointSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})"
            )
        return self
