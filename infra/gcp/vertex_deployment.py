"""Deploy a model to an existing Vertex AI endpoint, baked behind a share of the
traffic and rolled back when its alarms fire.

Why a dynamic resource: the google provider creates endpoints but has no resource
that deploys a registry model onto an existing one (a `DeployedModel`), let alone
one that shifts traffic in steps while watching the new model's errors and
latency. This resource uploads the model to the Vertex AI Model Registry (or takes
one already there), deploys it onto the endpoint and moves traffic to it as its
rollout says.

What it guarantees:
- The endpoint's traffic split always adds up to 100 and is keyed by deployed
  model IDs.
- During a canary or linear rollout, each step is baked for `waitMinutes` while
  Cloud Monitoring is read for the new deployed model alone, over the alarms'
  `evaluationMinutes` (the alert policies' window); if its errors per minute or
  its p99 latency cross an alarm, traffic goes back to the split the endpoint had
  before and the new deployed model is undeployed.
- Whatever fails once the deployment was asked for (a deployment that fails or
  outlasts its timeout, an alarm, a refused traffic change, unreadable metrics)
  is undone the same way: a deployment Pulumi does not record would otherwise
  keep serving traffic with nothing to remove it.
- A deployed model's ID is derived from the inputs that make it (endpoint, model,
  machine, accelerator, identity, name), so a deployment is never made twice: a
  retried deployModel is refused as already there and the one deployment is
  awaited, and a deployment an interrupted run left on the endpoint is adopted
  (and rolled out) rather than joined by a second.
- An uploaded model with a `modelId` is a version of that registry model
  (`.../models/<modelId>@<version>`), and carries a label derived from what was
  uploaded: a retried or repeated upload finds that version and uses it.
- A new model, machine, accelerator, identity, endpoint or name is a new
  deployment, deployed and baked before the old one is undeployed.
- Replica counts and autoscaling change in place, and so do the uploaded model's
  labels (wherever they are given); rollout and alarm changes only steer the next
  deployment and call no API.

Numbers arrive from the engine as floats (10 as 10.0): whole numbers are accepted
as such and sent to the API as integers.

Credentials are Application Default Credentials, looked up only when a request is
made, so a preview never needs them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pulumi
from pulumi import dynamic
from pulumi.runtime import rpc

from infra.engine_values import whole
from infra.gcp.vertex_api import (
    ALREADY_EXISTS,
    ENDPOINT_NAME,
    ApiError,
    EndpointName,
    OperationError,
    OperationTimeoutError,
    UnansweredError,
    VertexApiProvider,
    parse_endpoint,
)

# Vertex AI's autoscaling metrics (DedicatedResources.autoscalingMetricSpecs in v1).
# CPU utilisation and accelerator duty cycle take a percentage. Requests per
# replica is `prediction/online/request_count`: the v1 AutoscalingMetricSpec
# reference lists it among the online-prediction metrics, and the autoscaling
# guide gives its unit as requests per minute per replica, an integer target.
AUTOSCALING_METRICS = {
    "cpuUtilization": "aiplatform.googleapis.com/prediction/online/cpu/utilization",
    "gpuUtilization": "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle",
    "invocationsPerReplica": "aiplatform.googleapis.com/prediction/online/request_count",
}
PERCENT_METRICS = {"cpuUtilization", "gpuUtilization"}
STRATEGIES = ("allAtOnce", "canary", "linear")
UPLOAD_KEYS = (
    "imageUri",
    "artifactUri",
    "kmsKeyName",
    "predictRoute",
    "healthRoute",
    "port",
    "labels",
    "modelId",
)
# Inputs that must be whole numbers, by path (rollout percents are checked with
# their strategy).
WHOLE_NUMBERS = (
    ("minReplicas",),
    ("maxReplicas",),
    ("acceleratorCount",),
    ("autoscaling", "target"),
    ("alarms", "evaluationMinutes"),
    ("model", "upload", "port"),
)
# How many minutes of metrics a bake reads when `alarms` does not say: the alert
# policies' default `evaluationMinutes` (infra/settings).
EVALUATION_MINUTES = 3
# The label on an uploaded model version naming what was uploaded (`upload_key`).
UPLOAD_LABEL = "mlops_upload"


class Alarm(NamedTuple):
    """One bake alarm: the metric read, how one minute of it is reduced to a
    number across the deployed model's series, and the unit it is read in."""

    metric: str
    aligner: str
    reducer: str
    unit: str
    extra_filter: str = ""


# Both are reported on the `aiplatform.googleapis.com/Endpoint` monitored resource
# (label `endpoint_id`) with the serving deployed model in the metric label
# `deployed_model_id`; latency is a distribution in milliseconds, split by
# `latency_type`, of which `total` is what a caller waits.
ALARMS = {
    "errorsPerMinute": Alarm(
        "aiplatform.googleapis.com/prediction/online/error_count",
        "ALIGN_SUM",
        "REDUCE_SUM",
        "errors per minute",
    ),
    "latencyP99Ms": Alarm(
        "aiplatform.googleapis.com/prediction/online/prediction_latencies",
        "ALIGN_DELTA",
        "REDUCE_PERCENTILE_99",
        "ms at p99",
        ' AND metric.labels.latency_type="total"',
    ),
}

_MODEL = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/]+$")
# UploadModelRequest.modelId: up to 63 of [a-z0-9_-], not starting with a digit or hyphen.
_MODEL_ID = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")


class AlarmError(RuntimeError):
    """A baking deployed model crossed one of its alarms."""


def apportion(weights: dict[str, int], total: int) -> dict[str, int]:
    """`total` percent shared among `weights`' keys in proportion to their weights
    (equally when all are zero), as whole percents that add up to `total`: each
    gets its share rounded down, and the largest remainders one percent more."""
    if not weights:
        return {}
    if not any(weights.values()):
        weights = dict.fromkeys(weights, 1)
    whole_ = sum(weights.values())
    shares = {key: divmod(total * weight, whole_) for key, weight in weights.items()}
    short = total - sum(share for share, _rest in shares.values())
    lucky = sorted(shares, key=lambda key: (-shares[key][1], key))[:short]
    return {key: share + (key in lucky) for key, (share, _rest) in shares.items()}


def shifted(before: dict[str, int], newcomer: str, percent: int) -> dict[str, int]:
    """The split giving `newcomer` `percent` of the traffic while the models that
    served before keep the rest in their old proportions."""
    split = {newcomer: percent, **apportion(before, 100 - percent)}
    return {key: share for key, share in split.items() if share > 0}


def serving(endpoint: dict[str, Any]) -> dict[str, int]:
    """The deployed models that take traffic now, with their shares."""
    split = endpoint.get("trafficSplit") or {}
    return {key: int(share) for key, share in split.items() if int(share) > 0}


def deployed_ids(endpoint: dict[str, Any]) -> set[str]:
    return {str(model.get("id")) for model in endpoint.get("deployedModels", [])}


def serving_besides(endpoint: dict[str, Any], deployed_id: str) -> dict[str, int]:
    """The split among the models serving now other than `deployed_id`, made up
    to 100 in their proportions: what to go back to if `deployed_id` fails."""
    split = serving(endpoint)
    split.pop(deployed_id, None)
    return apportion(split, 100)


def stages(rollout: dict[str, Any] | None, has_traffic: bool) -> list[int]:
    """The new model's share of traffic at each step, ending at 100. An endpoint
    that serves nothing yet has nothing to compare against: all at once."""
    rollout = rollout or {}
    strategy = rollout.get("strategy", "allAtOnce")
    if not has_traffic or strategy == "allAtOnce":
        return [100]
    if strategy == "canary":
        return [int(rollout["canaryPercent"]), 100]
    step = int(rollout["linearStepPercent"])
    return [*range(step, 100, step), 100]


def _upload(props: dict[str, Any]) -> dict[str, Any]:
    model = props.get("model")
    upload = model.get("upload") if isinstance(model, dict) else None
    return upload if isinstance(upload, dict) else {}


def merged_labels(props: dict[str, Any]) -> dict[str, str]:
    """The uploaded model's labels: the deployment's, then the upload's own."""
    return {**(props.get("labels") or {}), **(_upload(props).get("labels") or {})}


def model_identity(model: Any) -> Any:
    """`model` less the upload's labels: what makes the deployed model, which a
    label edit must never replace."""
    if not isinstance(model, dict) or not isinstance(model.get("upload"), dict):
        return model
    upload = {key: value for key, value in model["upload"].items() if key != "labels"}
    return {**model, "upload": upload}


def _canonical(value: Any) -> Any:
    """`value` with whole floats as ints, so that 1 and the engine's 1.0 digest alike."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    number = whole(value) if isinstance(value, float) else None
    return value if number is None else number


def _digest(value: Any) -> int:
    text = json.dumps(_canonical(value), sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def deployed_model_id(props: dict[str, Any]) -> str:
    """The deployed model's ID, from the inputs that replace it: the same
    deployment asked for twice (a retry, a rerun after an interruption) is the
    same deployed model. DeployedModel.id takes 1-10 digits; this is always 10."""
    made_of = {key: props.get(key) for key in REPLACING}
    made_of["model"] = model_identity(made_of["model"])
    return str(10**9 + _digest(made_of) % (9 * 10**9))


def upload_key(props: dict[str, Any]) -> str:
    """A label value naming what this deployment uploads (endpoint, name and the
    upload less its labels), by which a retried or repeated upload finds the
    version it made rather than make another."""
    made_of = [props.get("endpoint"), props.get("displayName"), model_identity(props["model"])]
    return f"{_digest(made_of):064x}"[:32]


def version_labels(props: dict[str, Any]) -> dict[str, str]:
    return {**merged_labels(props), UPLOAD_LABEL: upload_key(props)}


def autoscaling_specs(autoscaling: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not autoscaling:
        return []
    metric = autoscaling.get("metric")
    if metric not in AUTOSCALING_METRICS:
        raise ValueError(f"autoscaling.metric: {metric!r} is none of {sorted(AUTOSCALING_METRICS)}")
    return [{"metricName": AUTOSCALING_METRICS[metric], "target": int(autoscaling["target"])}]


def _known(value: Any) -> bool:
    """Whether `value` is there and known (a preview passes unknowns as a marker)."""
    return value is not None and value != rpc.UNKNOWN


def _at(props: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = props
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _whole_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (".".join(path), "must be a whole number")
        for path in WHOLE_NUMBERS
        if _known(value := _at(props, path)) and whole(value) is None
    ]


def _upload_problems(upload: Any) -> list[tuple[str, str]]:
    if not isinstance(upload, dict):
        return []
    found = []
    if unknown := sorted(upload.keys() - set(UPLOAD_KEYS)):
        found.append(("model.upload", f"takes none of {unknown}; it takes {list(UPLOAD_KEYS)}"))
    if not upload.get("imageUri"):
        found.append(("model.upload.imageUri", "is required"))
    model_id = upload.get("modelId")
    if _known(model_id) and not _MODEL_ID.match(str(model_id)):
        reason = "must be 1-63 of a-z, 0-9, _ and -, starting with a letter or _"
        found.append(("model.upload.modelId", reason))
    return found


def _model_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    model = props.get("model")
    if not isinstance(model, dict):
        return []
    if len(model.keys() & {"upload", "name"}) != 1:
        return [("model", "give exactly one of `upload` and `name`")]
    if "name" in model:
        found = []
        name = model["name"]
        if _known(name) and not _MODEL.match(str(name).split("@")[0]):
            found.append(("model.name", "is not projects/P/locations/R/models/ID[@VERSION]"))
        if props.get("labels"):
            # The deployed model itself takes no labels; a registry model given by
            # name is not this deployment's to relabel (others may deploy it).
            found.append(("labels", "label a registry model where it is uploaded"))
        return found
    return _upload_problems(model["upload"])


def _scaling_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    low, high = whole(props.get("minReplicas")), whole(props.get("maxReplicas"))
    if low is not None and high is not None and not 1 <= low <= high:
        found.append(("minReplicas", f"needs 1 <= minReplicas ({low}) <= maxReplicas ({high})"))
    kind, count = props.get("acceleratorType"), whole(props.get("acceleratorCount") or 0)
    if kind != rpc.UNKNOWN and count is not None and bool(kind) != (count > 0):
        found.append(("acceleratorCount", "goes with acceleratorType: both or neither"))
    autoscaling = props.get("autoscaling")
    if not isinstance(autoscaling, dict):
        return found
    metric, target = autoscaling.get("metric"), whole(autoscaling.get("target"))
    if metric not in AUTOSCALING_METRICS:
        found.append(("autoscaling.metric", f"is none of {sorted(AUTOSCALING_METRICS)}"))
    elif metric == "gpuUtilization" and not kind:
        found.append(("autoscaling.metric", "gpuUtilization needs an accelerator"))
    percent = metric in PERCENT_METRICS
    if target is not None and not (1 <= target <= 100 if percent else target >= 1):
        bounds = "a percent from 1 to 100" if percent else "at least 1 request a minute"
        found.append(("autoscaling.target", f"must be {bounds}"))
    return found


def _rollout_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    rollout = props.get("rollout")
    if not isinstance(rollout, dict):
        return []
    strategy = rollout.get("strategy", "allAtOnce")
    if strategy not in STRATEGIES:
        return [("rollout.strategy", f"is none of {list(STRATEGIES)}")]
    key = {"canary": "canaryPercent", "linear": "linearStepPercent"}.get(strategy)
    found = []
    percent = rollout.get(key) if key else rpc.UNKNOWN
    if percent != rpc.UNKNOWN and not 1 <= (whole(percent) or 0) <= 99:
        found.append((f"rollout.{key}", f"{strategy} needs a whole percent from 1 to 99"))
    wait = rollout.get("waitMinutes") or 0
    if isinstance(wait, int | float) and wait < 0:
        found.append(("rollout.waitMinutes", "cannot be negative"))
    return found


def _alarm_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    minutes = whole(_at(props, ("alarms", "evaluationMinutes")))
    if minutes is not None and not 1 <= minutes <= 60:
        return [("alarms.evaluationMinutes", "must be from 1 to 60 minutes")]
    return []


def problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with the deployment's inputs, by property path. Values not
    known yet (during a preview) are skipped."""
    found = [
        *_whole_problems(props),
        *_model_problems(props),
        *_scaling_problems(props),
        *_rollout_problems(props),
        *_alarm_problems(props),
    ]
    endpoint = props.get("endpoint")
    if _known(endpoint) and not ENDPOINT_NAME.match(str(endpoint)):
        found.append(("endpoint", "is not projects/P/locations/R/endpoints/ID"))
    return found


# Inputs that make a new deployed model, and inputs a deployed model takes in place.
REPLACING = (
    "endpoint",
    "displayName",
    "model",
    "machineType",
    "acceleratorType",
    "acceleratorCount",
    "serviceAccount",
)
SCALING = ("minReplicas", "maxReplicas", "autoscaling")
UPDATING = (*SCALING, "rollout", "alarms", "labels")


class VertexDeploymentProvider(VertexApiProvider):
    """Pulumi stores this provider by reference to this module and runs it in its
    own process; every helper it calls is importable from here. Requests, retries
    and operations are `VertexApiProvider`'s."""

    # Global Cloud Monitoring REST root (tests point it at a local fake).
    monitoring_root = "https://monitoring.googleapis.com/v3"
    # One long-running operation, start to end: a GPU deployment takes 15-30 minutes.
    timeout_seconds = 1800.0
    # A rollout's waitMinutes, in seconds (tests shorten the minute).
    minute_seconds = 60.0
    # How often a bake reads the alarms' metrics.
    bake_poll_seconds = 60.0

    # --- Model Registry ---------------------------------------------------------

    def model_for(self, endpoint: EndpointName, props: dict[str, Any]) -> str:
        """The registry model to deploy, `projects/.../models/ID@VERSION`: the one
        given by name, or the one uploaded into the endpoint's region."""
        model = props["model"]
        if "name" in model:
            return model["name"]
        spec = self.upload_spec(props)
        if model["upload"].get("modelId"):
            return self.model_version(endpoint, props, spec)
        # Without a model ID there is nothing to find a lost upload by: an upload
        # whose answer was lost fails rather than risk a second model.
        response = self.upload(endpoint, {"model": spec})
        version = response.get("modelVersionId")
        return f"{response['model']}@{version}" if version else response["model"]

    def upload_spec(self, props: dict[str, Any]) -> dict[str, Any]:
        upload = props["model"]["upload"]
        container: dict[str, Any] = {"imageUri": upload["imageUri"]}
        # The serving contract of the image: where it answers predictions and health.
        for key in ("predictRoute", "healthRoute"):
            if upload.get(key):
                container[key] = upload[key]
        if upload.get("port"):
            container["ports"] = [{"containerPort": int(upload["port"])}]
        spec: dict[str, Any] = {
            "displayName": props["displayName"],
            "containerSpec": container,
            "labels": version_labels(props),
        }
        if upload.get("artifactUri"):
            spec["artifactUri"] = upload["artifactUri"]
        if upload.get("kmsKeyName"):
            spec["encryptionSpec"] = {"kmsKeyName": upload["kmsKeyName"]}
        return spec

    def upload(self, endpoint: EndpointName, body: dict[str, Any]) -> dict[str, Any]:
        """One models:upload and its operation's response. Sent once: a second
        upload would be a second version (`UnansweredError` when the answer is lost)."""
        # No request-level serviceAccount: the upload is read by the Vertex AI
        # service agent, so the serving identity needs no grants for it and the
        # deployer no actAs on that identity just to upload.
        root = self.root(endpoint)
        url = f"{root}/{endpoint.parent}/models:upload"
        operation = self.request("POST", url, body, repeatable=False) or {}
        return self.wait(root, operation, "model upload") or {}

    def model_version(
        self, endpoint: EndpointName, props: dict[str, Any], spec: dict[str, Any]
    ) -> str:
        """`.../models/<modelId>@<version>` holding `spec`: the version labelled
        with this upload's key if there is one (uploaded by an earlier try), else
        one uploaded now, as the model's first version (`modelId`) or a new version
        of it (`parentModel`).

        An upload whose answer is lost is not sent again blindly: the registry is
        looked up for it first, until `retry_seconds` have passed. One still
        running when looked for is not found yet, so the next try can add a second,
        identical version: a spare registry entry, never a second deployment."""
        model_id = props["model"]["upload"]["modelId"]
        parent_model = f"{endpoint.parent}/models/{model_id}"
        url = f"{self.root(endpoint)}/{parent_model}"
        deadline = time.monotonic() + self.retry_seconds
        while True:
            if found := self.uploaded_version(endpoint, parent_model, upload_key(props)):
                return found
            exists = self.request("GET", url, missing_ok=True) is not None
            target = {"parentModel": parent_model} if exists else {"modelId": model_id}
            try:
                response = self.upload(endpoint, {**target, "model": spec})
            except (UnansweredError, ApiError) as error:
                # Lost, or the ID taken meanwhile (409), perhaps by the lost try.
                again = isinstance(error, UnansweredError) or error.status == 409
                if not again or time.monotonic() >= deadline:
                    raise
                self.pause(None, deadline)
                continue
            return f"{parent_model}@{response['modelVersionId']}"

    def uploaded_version(self, endpoint: EndpointName, parent_model: str, key: str) -> str | None:
        url = f"{self.root(endpoint)}/{parent_model}:listVersions"
        params = {"filter": f'labels.{UPLOAD_LABEL}="{key}"'}
        reply = self.request("GET", url, params=params, missing_ok=True) or {}
        versions = [str(m["versionId"]) for m in reply.get("models", []) if m.get("versionId")]
        if not versions:
            return None
        return f"{parent_model}@{max(versions, key=lambda version: (len(version), version))}"

    # --- Endpoint ---------------------------------------------------------------

    def endpoint(self, endpoint: EndpointName, missing_ok: bool = False) -> dict[str, Any] | None:
        return self.request("GET", f"{self.root(endpoint)}/{endpoint.name}", missing_ok=missing_ok)

    def deploy(
        self,
        endpoint: EndpointName,
        props: dict[str, Any],
        model: str,
        deployed_id: str,
        split: dict[str, int],
    ) -> None:
        """Deploy `model` as `deployed_id` with `split` ("0" standing for it). A
        retried call whose first try got through is refused as already there: that
        deployment is awaited, not made again. One that outlasts its timeout is
        cancelled, lest it finish after the rollback and serve untracked."""
        machine: dict[str, Any] = {"machineType": props["machineType"]}
        if props.get("acceleratorType"):
            machine["acceleratorType"] = props["acceleratorType"]
            machine["acceleratorCount"] = int(props["acceleratorCount"])
        resources: dict[str, Any] = {
            "machineSpec": machine,
            "minReplicaCount": int(props["minReplicas"]),
            "maxReplicaCount": int(props["maxReplicas"]),
        }
        if specs := autoscaling_specs(props.get("autoscaling")):
            resources["autoscalingMetricSpecs"] = specs
        deployed = {
            "id": deployed_id,
            "model": model,
            "displayName": props["displayName"],
            "serviceAccount": props["serviceAccount"],
            "dedicatedResources": resources,
            # Container logs stay on (the API's default); access logs are turned on.
            "enableAccessLogging": True,
        }
        root = self.root(endpoint)
        url = f"{root}/{endpoint.name}:deployModel"
        try:
            operation = self.request(
                "POST", url, {"deployedModel": deployed, "trafficSplit": split}
            )
            self.wait(root, operation or {}, f"deploying {model}")
        except (ApiError, OperationError) as error:
            code = error.status if isinstance(error, ApiError) else error.code
            if code not in (409, ALREADY_EXISTS):
                raise
            self.await_deployed(endpoint, deployed_id)
        except OperationTimeoutError as error:
            self.cancel(root, error)
            raise

    def await_deployed(self, endpoint: EndpointName, deployed_id: str) -> None:
        """Until the endpoint lists `deployed_id` (deployed by an earlier try)."""
        deadline = time.monotonic() + self.timeout_seconds
        while deployed_id not in deployed_ids(self.endpoint(endpoint) or {}):
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"deployed model {deployed_id} was already being deployed, and is still "
                    f"not on {endpoint.name} after {self.timeout_seconds} s"
                )
            time.sleep(max(0.0, min(self.poll_seconds, deadline - time.monotonic())))

    def cancel(self, root: str, timeout: OperationTimeoutError) -> None:
        try:
            self.request("POST", f"{root}/{timeout.operation}:cancel", {}, missing_ok=True)
        except RuntimeError as error:
            raise RuntimeError(f"{timeout}; cancelling it failed: {error}") from timeout

    def set_split(self, endpoint: EndpointName, split: dict[str, int]) -> None:
        url = f"{self.root(endpoint)}/{endpoint.name}"
        self.request("PATCH", url, {"trafficSplit": split}, params={"updateMask": "trafficSplit"})

    def undeploy(
        self, endpoint: EndpointName, deployed_id: str, split: dict[str, int] | None
    ) -> None:
        """Undeploy `deployed_id`, handing its traffic over as `split` says; one
        already gone is fine."""
        body: dict[str, Any] = {"deployedModelId": deployed_id}
        if split:
            body["trafficSplit"] = split
        root = self.root(endpoint)
        url = f"{root}/{endpoint.name}:undeployModel"
        operation = self.request("POST", url, body, missing_ok=True)
        if operation is not None:
            self.wait(root, operation, f"undeploying {deployed_id}", missing_ok=True)

    # --- Rollout ----------------------------------------------------------------

    def worst(
        self, endpoint: EndpointName, deployed_id: str, alarm: Alarm, minutes: int
    ) -> float | None:
        """The deployed model's worst minute of `alarm`'s metric over the last
        `minutes` (the alert policies' window), or None before it has any data."""
        now = datetime.now(UTC)
        start = now - timedelta(minutes=minutes)
        params = {
            "filter": (
                f'metric.type="{alarm.metric}"'
                ' AND resource.type="aiplatform.googleapis.com/Endpoint"'
                f' AND resource.labels.endpoint_id="{endpoint.endpoint_id}"'
                f' AND metric.labels.deployed_model_id="{deployed_id}"{alarm.extra_filter}'
            ),
            "interval.startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval.endTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aggregation.alignmentPeriod": "60s",
            "aggregation.perSeriesAligner": alarm.aligner,
            "aggregation.crossSeriesReducer": alarm.reducer,
        }
        url = f"{self.monitoring_root}/projects/{endpoint.project}/timeSeries"
        reply = self.request("GET", url, params=params) or {}
        values = [
            float(point["value"].get("int64Value", point["value"].get("doubleValue", 0)))
            for series in reply.get("timeSeries", [])
            for point in series.get("points", [])
        ]
        return max(values, default=None)

    def check_alarms(
        self, endpoint: EndpointName, deployed_id: str, alarms: dict[str, Any]
    ) -> None:
        minutes = whole(alarms.get("evaluationMinutes")) or EVALUATION_MINUTES
        for key, alarm in ALARMS.items():
            threshold = alarms.get(key)
            if threshold is None:
                continue
            value = self.worst(endpoint, deployed_id, alarm, minutes)
            if value is not None and value > threshold:
                raise AlarmError(
                    f"{alarm.metric} for deployed model {deployed_id} was {value:g} "
                    f"{alarm.unit}, above the {key} alarm of {threshold}"
                )

    def bake(self, endpoint: EndpointName, deployed_id: str, props: dict[str, Any]) -> None:
        """Serve the current split for the rollout's waitMinutes, reading the new
        deployed model's alarm metrics every `bake_poll_seconds`."""
        rollout = props.get("rollout") or {}
        end = time.monotonic() + float(rollout.get("waitMinutes") or 0) * self.minute_seconds
        while True:
            self.check_alarms(endpoint, deployed_id, props.get("alarms") or {})
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(self.bake_poll_seconds, left))

    def roll_out(
        self,
        endpoint: EndpointName,
        deployed_id: str,
        before: dict[str, int],
        steps: list[int],
        props: dict[str, Any],
    ) -> None:
        """Bake each step short of 100 % and move on to the next; the first
        step's split was set when the model was deployed."""
        for index, percent in enumerate(steps):
            if index:
                self.set_split(endpoint, shifted(before, deployed_id, percent))
            if percent < 100:
                self.bake(endpoint, deployed_id, props)

    def roll_back(self, endpoint: EndpointName, deployed_id: str, before: dict[str, int]) -> bool:
        """Traffic back to `before` first (at once), then the new model undeployed
        if it is there; whether it was."""
        if before:
            self.set_split(endpoint, before)
        if deployed_id not in deployed_ids(self.endpoint(endpoint) or {}):
            return False
        self.undeploy(endpoint, deployed_id, None)
        return True

    def rolled_back(
        self, error: Exception, endpoint: EndpointName, deployed_id: str, before: dict[str, int]
    ) -> RuntimeError:
        """The error to fail with once `error` has been undone as far as can be."""
        try:
            undeployed = self.roll_back(endpoint, deployed_id, before)
        except Exception as undo:
            return RuntimeError(
                f"{error}; rolling back failed too, so deployed model {deployed_id} may be "
                f"left on {endpoint.name} (the next run adopts it): {undo}"
            )
        traffic = f"traffic restored to {before}" if before else "no traffic to restore"
        gone = "undeployed" if undeployed else "not on the endpoint"
        return RuntimeError(
            f"{error}; rolled back: {traffic} and deployed model {deployed_id} {gone}"
        )

    # --- Pulumi -----------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [dynamic.CheckFailure(path, reason) for path, reason in problems(news)]
        return dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Upload (or find) the model, deploy it under its derived ID (or adopt the
        deployment an interrupted run left under that ID) and roll it out. From the
        deployment on, any failure rolls back before it is raised."""
        if found := problems(props):
            raise ValueError("; ".join(f"{path}: {reason}" for path, reason in found))
        endpoint = parse_endpoint(props["endpoint"])
        model = self.model_for(endpoint, props)
        deployed_id = deployed_model_id(props)
        current = self.endpoint(endpoint) or {}
        before = serving_besides(current, deployed_id)
        steps = stages(props.get("rollout"), has_traffic=bool(before))
        first = shifted(before, deployed_id, steps[0])
        try:
            if deployed_id not in deployed_ids(current):
                self.deploy(endpoint, props, model, deployed_id, shifted(before, "0", steps[0]))
            elif serving(current) != first:
                self.set_split(endpoint, first)
            self.roll_out(endpoint, deployed_id, before, steps, props)
        except Exception as error:
            raise self.rolled_back(error, endpoint, deployed_id, before) from error
        outs = {**props, "deployed_model_id": deployed_id, "model_name": model}
        return dynamic.CreateResult(id_=f"{endpoint.name}/deployedModels/{deployed_id}", outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """What `pulumi refresh` finds: nothing once the deployed model is off its
        endpoint (so the state drops it), else its replica counts as they are."""
        name, _, deployed_id = id_.rpartition("/deployedModels/")
        current = self.endpoint(parse_endpoint(name), missing_ok=True) or {}
        deployed = next(
            (m for m in current.get("deployedModels", []) if str(m.get("id")) == deployed_id),
            None,
        )
        if deployed is None:
            return dynamic.ReadResult(None, {})
        resources = deployed.get("dedicatedResources") or {}
        outs = {**props, "deployed_model_id": deployed_id}
        for key, count in (("minReplicas", "minReplicaCount"), ("maxReplicas", "maxReplicaCount")):
            if count in resources:
                outs[key] = int(resources[count])
        return dynamic.ReadResult(id_, outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """Replaced when what makes the deployed model changes; labels, wherever
        given (the upload's own too), scaling, rollout and alarms change in place."""
        changed = [key for key in (*REPLACING, *UPDATING) if olds.get(key) != news.get(key)]
        replaces = [
            key
            for key in changed
            if key in REPLACING
            and (key != "model" or model_identity(olds.get(key)) != model_identity(news.get(key)))
        ]
        return dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=False
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Replica counts and autoscaling through mutateDeployedModel; the uploaded
        model's labels through its registry entry. Rollout and alarms only steer
        the next deployment."""
        if found := problems(news):
            raise ValueError("; ".join(f"{path}: {reason}" for path, reason in found))
        endpoint = parse_endpoint(news["endpoint"])
        deployed_id = olds["deployed_model_id"]
        if any(olds.get(key) != news.get(key) for key in SCALING):
            self.rescale(endpoint, deployed_id, news)
        if "upload" in news["model"] and merged_labels(olds) != merged_labels(news):
            url = f"{self.root(endpoint)}/{olds['model_name']}"
            body = {"labels": version_labels(news)}
            self.request("PATCH", url, body, params={"updateMask": "labels"})
        outs = {**news, "deployed_model_id": deployed_id, "model_name": olds["model_name"]}
        return dynamic.UpdateResult(outs=outs)

    def rescale(self, endpoint: EndpointName, deployed_id: str, props: dict[str, Any]) -> None:
        resources = {
            "minReplicaCount": int(props["minReplicas"]),
            "maxReplicaCount": int(props["maxReplicas"]),
            "autoscalingMetricSpecs": autoscaling_specs(props.get("autoscaling")),
        }
        mask = ",".join(f"dedicatedResources.{field_}" for field_ in resources)
        body = {
            "deployedModel": {"id": deployed_id, "dedicatedResources": resources},
            "updateMask": mask,
        }
        root = self.root(endpoint)
        operation = self.request("POST", f"{root}/{endpoint.name}:mutateDeployedModel", body)
        self.wait(root, operation or {}, f"rescaling {deployed_id}")

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Undeploy the model; when others stay on the endpoint, its traffic goes
        to them in proportion to theirs. An endpoint or deployment already gone is
        fine.

        The uploaded model stays in the Model Registry: it is the record of what
        was served, a rollback redeploys it by name without rebuilding it, and it
        may be deployed on other endpoints (the registry refuses to delete a model
        that is). Pruning old versions is the registry's lifecycle, not this
        deployment's."""
        endpoint = parse_endpoint(props["endpoint"])
        deployed_id = props["deployed_model_id"]
        current = self.endpoint(endpoint, missing_ok=True)
        if current is None:
            return
        deployed = {str(model.get("id")) for model in current.get("deployedModels", [])}
        if deployed_id not in deployed:
            return
        split = {key: int(share) for key, share in (current.get("trafficSplit") or {}).items()}
        others = {key: split.get(key, 0) for key in deployed - {deployed_id}}
        handover = apportion(others, 100) if split.get(deployed_id) and others else None
        self.undeploy(endpoint, deployed_id, handover)


@dataclass(frozen=True, kw_only=True)
class VertexModelDeploymentArgs:
    """One model deployed onto one Vertex AI endpoint.

    `endpoint` is the endpoint's resource name (`gcp.vertex.AiEndpoint.id`).
    `model` is `{"upload": {"imageUri", "artifactUri", "kmsKeyName", "predictRoute",
    "healthRoute", "port", "labels", "modelId"}}` or
    `{"name": "projects/.../models/ID@VERSION"}`; with `modelId` (e.g. the
    endpoint's name) the upload is a version of `.../models/<modelId>`, so that
    `{"name": ".../models/<modelId>@<version>"}` later names what it uploaded.
    `autoscaling` is `{"metric": "cpuUtilization" | "gpuUtilization" |
    "invocationsPerReplica", "target": int}`: a percentage for the first two,
    requests per minute per replica for the third. `rollout` is `{"strategy":
    "allAtOnce" | "canary" | "linear", "canaryPercent", "linearStepPercent",
    "waitMinutes"}`; `alarms` is `{"errorsPerMinute", "latencyP99Ms",
    "evaluationMinutes"}`, read during a bake over the last `evaluationMinutes`
    (default 3, the alert policies' window). `labels` label the uploaded model
    (refused with a model given by name: the deployed model itself takes none)."""

    endpoint: pulumi.Input[str]
    display_name: pulumi.Input[str]
    model: pulumi.Input[dict[str, Any]]
    machine_type: pulumi.Input[str]
    service_account: pulumi.Input[str]
    accelerator_type: pulumi.Input[str] | None = None
    accelerator_count: pulumi.Input[int] = 0
    min_replicas: pulumi.Input[int] = 1
    max_replicas: pulumi.Input[int] = 1
    autoscaling: pulumi.Input[dict[str, Any]] | None = None
    rollout: pulumi.Input[dict[str, Any]] = field(
        default_factory=lambda: {"strategy": "allAtOnce", "waitMinutes": 0}
    )
    alarms: pulumi.Input[dict[str, Any]] | None = None
    labels: pulumi.Input[dict[str, str]] = field(default_factory=dict)

    def props(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "displayName": self.display_name,
            "model": self.model,
            "machineType": self.machine_type,
            "acceleratorType": self.accelerator_type,
            "acceleratorCount": self.accelerator_count,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "autoscaling": self.autoscaling,
            "serviceAccount": self.service_account,
            "rollout": self.rollout,
            "alarms": self.alarms,
            "labels": self.labels,
        }


class VertexModelDeployment(dynamic.Resource, module="gcp", name="VertexModelDeployment"):
    """A model served from a Vertex AI endpoint as `args` says, rolled out and
    rolled back by the provider above."""

    deployed_model_id: pulumi.Output[str]
    model_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: VertexModelDeploymentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {**args.props(), "deployed_model_id": None, "model_name": None}
        super().__init__(VertexDeploymentProvider(), name, props, opts)
