"""Watch a Vertex AI endpoint's live traffic for skew from its training data and
for drift over time: `VertexModelMonitor`, the endpoint's model monitoring job.

Why a dynamic resource: neither the Pulumi nor the Terraform google provider has a
resource for Vertex AI model monitoring.

Which API. Vertex AI has two, and this resource uses Model Monitoring v1, the
ModelDeploymentMonitoringJob (`projects.locations.modelDeploymentMonitoringJobs`,
REST v1), not v2's ModelMonitor (`projects.locations.modelMonitors` with its
monitoring schedules, REST v1beta1):
- v1 is generally available, v2 is in Preview, and Google's guidance is to use v1
  "if you need production-level support and want to monitor a model that's
  deployed on a Vertex AI endpoint" (Model Monitoring overview).
- v1 is configured on the endpoint and reads its live traffic from the BigQuery
  table the endpoint's request-response logging already writes: the two share that
  table. v2 monitors one model version (`modelMonitoringTarget`), so each version a
  rollout deploys would need a monitor of its own; and all of v2 is v1beta1.
- Both take a customer-managed key (`encryptionSpec`) and both alert by email and
  through Cloud Monitoring notification channels, so neither of these decided it.
- v1 runs every `monitorInterval`, rounded up to whole hours (one hour at least):
  that is `scheduleHours`, and hourly is as often as drift statistics are useful.
  v2 needs a monitoring schedule managed beside the monitor.
- An endpoint has one v1 job (the Endpoint resource names a single
  `modelDeploymentMonitoringJob`), so this resource is the endpoint's only monitor
  and a replacement deletes the old job before it creates the new one.

References:
- https://cloud.google.com/vertex-ai/docs/model-monitoring (v1 and v2, guidance)
- https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.modelDeploymentMonitoringJobs
- https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/projects.locations.modelMonitors
- https://cloud.google.com/vertex-ai/docs/model-monitoring/using-model-monitoring
- https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging#model-monitoring

What it guarantees:
- The job is encrypted with `kmsKeyName`, a key in the endpoint's region.
- Every deployed model it watches is compared with the baseline in the lake (skew)
  and with its own previous window (drift), against the same thresholds: a
  default for every feature and optional per-feature ones. Vertex measures a
  numeric feature by Jensen-Shannon divergence and a categorical one by the
  L-infinity distance, both from 0 to 1.
- Anomalies reach at least one email address or notification channel, and are
  written to Cloud Logging too.
- Thresholds, baseline, watched models, schedule, sampling, notifications, labels
  and display name change in place (a PATCH whose updateMask names only what
  changed); a new endpoint or key is a new job (the API cannot change either).
- Deleting pauses a running job first (Vertex deletes only a paused one); a job
  already gone is fine.

While the job exists, Vertex refuses changes to the endpoint's request-response
logging configuration: to change the endpoint's data capture, remove the monitor
first and add it back after.

Credentials are Application Default Credentials, looked up only when a request is
made, so a preview never needs them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.runtime import rpc

from infra.gcp.vertex_api import (
    ENDPOINT_NAME,
    EndpointName,
    VertexApiProvider,
    parse_endpoint,
)

JOBS = "modelDeploymentMonitoringJobs"
OBJECTIVES = "modelDeploymentMonitoringObjectiveConfigs"
# The baseline's formats, as TrainingDataset.dataFormat spells those in Cloud
# Storage; a BigQuery table has none.
BASELINE_FORMATS = {"csv": "csv", "jsonl": "jsonl", "tfrecord": "tf-record", "bigquery": None}
DEFAULT_THRESHOLD = 0.3
RUNNING = "JOB_STATE_RUNNING"
HOUR_SECONDS = 3600

# Inputs a job cannot change (neither is an updatable field of
# modelDeploymentMonitoringJobs.patch): a new job.
REPLACING = ("endpoint", "kmsKeyName")
# Inputs patched in place, by the job field each one sets (the patch's updateMask).
UPDATING = {
    "displayName": "displayName",
    "scheduleHours": "modelDeploymentMonitoringScheduleConfig",
    "samplingPercent": "loggingSamplingStrategy",
    "notificationEmails": "modelMonitoringAlertConfig",
    "notificationChannels": "modelMonitoringAlertConfig",
    "labels": "labels",
    "deployedModelIds": OBJECTIVES,
    "baselineUri": OBJECTIVES,
    "baselineFormat": OBJECTIVES,
    "targetField": OBJECTIVES,
    "driftThresholds": OBJECTIVES,
}
_UNORDERED = ("notificationEmails", "notificationChannels", "deployedModelIds")

_KEY = re.compile(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")
_CHANNEL = re.compile(r"^projects/[^/]+/notificationChannels/[^/]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _known(value: Any) -> bool:
    """Whether `value` is there and known (a preview passes unknowns as a marker)."""
    return value is not None and value != rpc.UNKNOWN


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def thresholds(value: dict[str, Any] | None) -> dict[str, Any]:
    """`{"default": d, "features": {feature: t}}` with the default filled in."""
    value = value or {}
    features = value.get("features") or {}
    return {
        "default": value.get("default", DEFAULT_THRESHOLD),
        "features": dict(features) if isinstance(features, dict) else features,
    }


# --- Validation -------------------------------------------------------------------


def _threshold_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    value = props.get("driftThresholds")
    if not isinstance(value, dict):
        return []
    found = []
    if unknown := sorted(set(value) - {"default", "features"}):
        found.append(("driftThresholds", f"takes `default` and `features`, not {unknown}"))
    limits = thresholds(value)
    named = {"driftThresholds.default": limits["default"]}
    features = limits["features"]
    if isinstance(features, dict):
        named |= {f"driftThresholds.features.{key}": v for key, v in features.items()}
    elif _known(features):
        found.append(("driftThresholds.features", "must map feature names to thresholds"))
    for path, limit in named.items():
        if _known(limit) and not (_is_number(limit) and 0 < limit <= 1):
            found.append((path, f"must be a distance above 0 and at most 1, not {limit!r}"))
    return found


def _baseline_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    kind, uri = props.get("baselineFormat"), props.get("baselineUri")
    if not _known(kind):
        return []
    if kind not in BASELINE_FORMATS:
        return [("baselineFormat", f"is none of {sorted(BASELINE_FORMATS)}")]
    scheme = "bq://" if kind == "bigquery" else "gs://"
    if _known(uri) and not str(uri).startswith(scheme):
        return [("baselineUri", f"a {kind} baseline is a {scheme} URI, not {uri!r}")]
    return []


def _notification_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    emails = props.get("notificationEmails") or []
    channels = props.get("notificationChannels") or []
    if not isinstance(emails, list) or not isinstance(channels, list):
        return []
    found = [
        (f"notificationEmails[{index}]", f"{email!r} is not an email address")
        for index, email in enumerate(emails)
        if _known(email) and not _EMAIL.match(str(email))
    ]
    found += [
        (f"notificationChannels[{index}]", "is not projects/P/notificationChannels/ID")
        for index, channel in enumerate(channels)
        if _known(channel) and not _CHANNEL.match(str(channel))
    ]
    if not emails and not channels:
        found.append(
            ("notificationEmails", "give notificationEmails, notificationChannels or both")
        )
    return found


def _schedule_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    hours, percent = props.get("scheduleHours"), props.get("samplingPercent")
    if _known(hours) and not (_is_number(hours) and hours == int(hours) >= 1):
        found.append(
            ("scheduleHours", f"must be a whole number of hours, 1 or more, not {hours!r}")
        )
    if _known(percent) and not (_is_number(percent) and 0 < percent <= 100):
        found.append(("samplingPercent", f"must be above 0 and at most 100, not {percent!r}"))
    return found


def _placement_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    endpoint, key = props.get("endpoint"), props.get("kmsKeyName")
    if _known(endpoint) and not ENDPOINT_NAME.match(str(endpoint)):
        found.append(("endpoint", "is not projects/P/locations/R/endpoints/ID"))
    key_match = _KEY.match(str(key)) if _known(key) else None
    if _known(key) and not key_match:
        found.append(("kmsKeyName", "is not projects/P/locations/L/keyRings/K/cryptoKeys/C"))
    endpoint_match = ENDPOINT_NAME.match(str(endpoint)) if _known(endpoint) else None
    if key_match and endpoint_match and key_match.group(1) != endpoint_match.group(2):
        found.append(
            (
                "kmsKeyName",
                f"is in {key_match.group(1)}, but the endpoint is in {endpoint_match.group(2)}:"
                " the key must be in the endpoint's region",
            )
        )
    return found


def _target_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    ids = props.get("deployedModelIds")
    if ids is not None and ids != rpc.UNKNOWN and not ids:
        found.append(("deployedModelIds", "leave it out to watch every model, or name some"))
    name = props.get("displayName")
    if _known(name) and not 1 <= len(str(name)) <= 128:
        found.append(("displayName", "must be 1 to 128 characters"))
    return found


def problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with the monitor's inputs, by property path. Values not known
    yet (during a preview) are skipped."""
    return (
        _placement_problems(props)
        + _target_problems(props)
        + _baseline_problems(props)
        + _threshold_problems(props)
        + _schedule_problems(props)
        + _notification_problems(props)
    )


def _refuse(props: dict[str, Any]) -> None:
    if found := problems(props):
        raise ValueError("; ".join(f"{path}: {reason}" for path, reason in found))


# --- The job ---------------------------------------------------------------------


def training_dataset(props: dict[str, Any]) -> dict[str, Any]:
    uri, kind = props["baselineUri"], props["baselineFormat"]
    if kind == "bigquery":
        dataset: dict[str, Any] = {"bigquerySource": {"inputUri": uri}}
    else:
        dataset = {"gcsSource": {"uris": [uri]}, "dataFormat": BASELINE_FORMATS[kind]}
    if props.get("targetField"):
        # The label the model predicts: not an input, so not compared.
        dataset["targetField"] = props["targetField"]
    return dataset


def objective(props: dict[str, Any]) -> dict[str, Any]:
    """Skew from the baseline and drift between windows, against the same limits."""
    limits = thresholds(props.get("driftThresholds"))
    default = {"value": float(limits["default"])}
    features = {key: {"value": float(v)} for key, v in sorted(limits["features"].items())}
    skew: dict[str, Any] = {"defaultSkewThreshold": default}
    drift: dict[str, Any] = {"defaultDriftThreshold": default}
    if features:
        skew["skewThresholds"] = features
        drift["driftThresholds"] = features
    return {
        "trainingDataset": training_dataset(props),
        "trainingPredictionSkewDetectionConfig": skew,
        "predictionDriftDetectionConfig": drift,
    }


def alert_config(props: dict[str, Any]) -> dict[str, Any]:
    # Anomalies go to Cloud Logging as well, where they can be routed and kept.
    alert: dict[str, Any] = {"enableLogging": True}
    if emails := props.get("notificationEmails"):
        alert["emailAlertConfig"] = {"userEmails": list(emails)}
    if channels := props.get("notificationChannels"):
        alert["notificationChannels"] = list(channels)
    return alert


def job_body(props: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """The ModelDeploymentMonitoringJob for `props`, watching deployed `models`."""
    watched = objective(props)
    return {
        "displayName": props["displayName"],
        "endpoint": props["endpoint"],
        OBJECTIVES: [{"deployedModelId": model, "objectiveConfig": watched} for model in models],
        "modelDeploymentMonitoringScheduleConfig": {
            "monitorInterval": f"{int(props['scheduleHours']) * HOUR_SECONDS}s"
        },
        "loggingSamplingStrategy": {
            "randomSampleConfig": {"sampleRate": float(props["samplingPercent"]) / 100}
        },
        "modelMonitoringAlertConfig": alert_config(props),
        "encryptionSpec": {"kmsKeyName": props["kmsKeyName"]},
        "labels": dict(props.get("labels") or {}),
    }


def _comparable(key: str, value: Any) -> Any:
    """`value` as the job sees it: lists of names in any order, no labels as
    empty labels, thresholds with their default filled in."""
    if value == rpc.UNKNOWN:
        return value
    if key in _UNORDERED:
        return None if value is None else sorted(map(str, value))
    if key == "labels":
        return dict(value or {})
    if key == "driftThresholds":
        return thresholds(value)
    return value


def changed(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    return [
        key
        for key in (*REPLACING, *UPDATING)
        if _comparable(key, olds.get(key)) != _comparable(key, news.get(key))
    ]


class VertexMonitorProvider(VertexApiProvider):
    """Pulumi stores this provider by reference to this module and runs it in its
    own process. Requests, retries and operations are `VertexApiProvider`'s."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [dynamic.CheckFailure(path, reason) for path, reason in problems(news)]
        return dynamic.CheckResult(news, failures)

    def settle(
        self, root: str, reply: dict[str, Any], what: str, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """The job a call answered: the reply itself, or the response of the
        long-running operation it answered with, once that has ended."""
        if "/operations/" in str(reply.get("name", "")):
            return self.wait(root, reply, what, missing_ok=missing_ok)
        return reply

    def watched(self, endpoint: EndpointName, props: dict[str, Any]) -> list[str]:
        """The deployed models to watch: those named, or all on the endpoint now."""
        if props.get("deployedModelIds"):
            return sorted(str(model) for model in props["deployedModelIds"])
        current = self.request("GET", f"{self.root(endpoint)}/{endpoint.name}") or {}
        models = sorted(str(model["id"]) for model in current.get("deployedModels", []))
        if not models:
            raise RuntimeError(f"{endpoint.name} serves no deployed model to monitor")
        return models

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        _refuse(props)
        endpoint = parse_endpoint(props["endpoint"])
        models = self.watched(endpoint, props)
        root = self.root(endpoint)
        url = f"{root}/{endpoint.parent}/{JOBS}"
        reply = self.request("POST", url, job_body(props, models)) or {}
        job = self.settle(root, reply, f"creating a monitoring job on {endpoint.name}") or {}
        outs = {**props, "job_name": job["name"], "monitored_models": models}
        return dynamic.CreateResult(id_=job["name"], outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        keys = changed(olds, news)
        replaces = [key for key in keys if key in REPLACING]
        # One job per endpoint: the old one goes before its replacement comes.
        return dynamic.DiffResult(
            changes=bool(keys), replaces=replaces, delete_before_replace=bool(replaces)
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """PATCH only the job fields whose inputs changed, named in the updateMask."""
        _refuse(news)
        endpoint = parse_endpoint(news["endpoint"])
        mask = list(dict.fromkeys(UPDATING[key] for key in changed(olds, news) if key in UPDATING))
        models = olds["monitored_models"]
        if OBJECTIVES in mask:
            models = self.watched(endpoint, news)
        if mask:
            whole = job_body(news, models)
            root, name = self.root(endpoint), olds["job_name"]
            params = {"updateMask": ",".join(mask)}
            reply = self.request(
                "PATCH", f"{root}/{name}", {key: whole[key] for key in mask}, params=params
            )
            self.settle(root, reply or {}, f"updating {name}")
        outs = {**news, "job_name": olds["job_name"], "monitored_models": models}
        return dynamic.UpdateResult(outs=outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Pause a running job, then delete it; a job already gone is fine."""
        root = self.root(parse_endpoint(props["endpoint"]))
        name = props["job_name"]
        url = f"{root}/{name}"
        job = self.request("GET", url, missing_ok=True)
        if job is None:
            return
        if job.get("state") == RUNNING:
            if self.request("POST", f"{url}:pause", missing_ok=True) is None:
                return
            if not self.paused(url):
                return
        reply = self.request("DELETE", url, missing_ok=True)
        if reply is not None:
            self.settle(root, reply, f"deleting {name}", missing_ok=True)

    def paused(self, url: str) -> bool:
        """Wait for a pause to take hold; False if the job went meanwhile."""
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            job = self.request("GET", url, missing_ok=True, deadline=deadline)
            if job is None:
                return False
            if job.get("state") != RUNNING:
                return True
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{url} still running {self.timeout_seconds} s after a pause")
            time.sleep(max(0.0, min(self.poll_seconds, deadline - time.monotonic())))


@dataclass(frozen=True, kw_only=True)
class VertexModelMonitorArgs:
    """One endpoint's model monitoring job.

    `endpoint` is the endpoint's resource name (`gcp.vertex.AiEndpoint.id`).
    `baseline_uri` is the training or baseline data: a `gs://` URI (wildcards
    allowed) with `baseline_format` "csv", "jsonl" or "tfrecord", or a
    `bq://project.dataset.table` with "bigquery"; `target_field` is its label
    column, left out of the comparison. `schedule_hours` is how often the job runs;
    `sampling_percent` the share of prediction requests it samples for analysis
    (the job's loggingSamplingStrategy).
    `drift_thresholds` is `{"default": 0.3, "features": {feature: threshold}}`,
    distances above 0 and at most 1. Alerts go to `notification_emails` and/or
    `notification_channels` (`projects/P/notificationChannels/ID`), at least one.
    `kms_key_name` encrypts the job (a key in the endpoint's region).
    `deployed_model_ids` names the deployed models to watch; left out, every model
    deployed when the job is created or its objectives updated; pass
    `VertexModelDeployment.deployed_model_id` so that a new deployment is watched."""

    endpoint: pulumi.Input[str]
    display_name: pulumi.Input[str]
    baseline_uri: pulumi.Input[str]
    baseline_format: pulumi.Input[str]
    sampling_percent: pulumi.Input[float]
    kms_key_name: pulumi.Input[str]
    target_field: pulumi.Input[str] | None = None
    schedule_hours: pulumi.Input[int] = 24
    drift_thresholds: pulumi.Input[dict[str, Any]] = field(
        default_factory=lambda: {"default": DEFAULT_THRESHOLD}
    )
    notification_emails: pulumi.Input[list[str]] = field(default_factory=list)
    notification_channels: pulumi.Input[list[str]] = field(default_factory=list)
    deployed_model_ids: pulumi.Input[list[str]] | None = None
    labels: pulumi.Input[dict[str, str]] = field(default_factory=dict)

    def props(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "displayName": self.display_name,
            "baselineUri": self.baseline_uri,
            "baselineFormat": self.baseline_format,
            "targetField": self.target_field,
            "scheduleHours": self.schedule_hours,
            "samplingPercent": self.sampling_percent,
            "driftThresholds": self.drift_thresholds,
            "notificationEmails": self.notification_emails,
            "notificationChannels": self.notification_channels,
            "kmsKeyName": self.kms_key_name,
            "deployedModelIds": self.deployed_model_ids,
            "labels": self.labels,
        }


class VertexModelMonitor(dynamic.Resource, module="gcp", name="VertexModelMonitor"):
    """A Vertex AI endpoint's model monitoring job, as `args` says, managed by the
    provider above. `job_name` is the job's resource name
    (`projects/P/locations/R/modelDeploymentMonitoringJobs/ID`), also its id;
    `monitored_models` the deployed model IDs it watches."""

    job_name: pulumi.Output[str]
    monitored_models: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: VertexModelMonitorArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {**args.props(), "job_name": None, "monitored_models": None}
        super().__init__(VertexMonitorProvider(), name, props, opts)
