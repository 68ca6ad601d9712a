"""The inputs of a Vertex AI model deployment (infra/gcp/vertex_deployment.py):
what is wrong with them, which of them replace the deployed model, and the
deterministic IDs and labels derived from them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

from infra.engine_values import whole
from infra.gcp.vertex_api import ENDPOINT_NAME

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
# The label on an uploaded model version naming what was uploaded (`upload_key`).
UPLOAD_LABEL = "mlops_upload"


_MODEL = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/]+$")
# UploadModelRequest.modelId: up to 63 of [a-z0-9_-], not starting with a digit or hyphen.
_MODEL_ID = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")


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
