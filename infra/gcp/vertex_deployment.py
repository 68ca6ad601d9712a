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
  Cloud Monitoring is read for the new deployed model alone; if its errors per
  minute or its p99 latency cross an alarm, traffic goes back to the split the
  endpoint had before and the new deployed model is undeployed.
- Whatever fails after the model was deployed (an alarm, a refused traffic
  change, unreadable metrics) is undone the same way: a deployment Pulumi does
  not record would otherwise keep serving traffic with nothing to remove it.
- A new model, machine, accelerator, identity, endpoint or name is a new
  deployment, deployed and baked before the old one is undeployed.
- Replica counts and autoscaling change in place, and so do the uploaded model's
  labels; rollout and alarm changes only steer the next deployment and call no API.

Credentials are Application Default Credentials, looked up only when a request is
made, so a preview never needs them.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import pulumi
from pulumi import dynamic
from pulumi.runtime import rpc

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.auth.transport.requests import AuthorizedSession
    from requests import Response

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]

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
# google.rpc.Code of an operation that found nothing to act on.
NOT_FOUND = 5


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

_ENDPOINT = re.compile(r"^projects/([^/]+)/locations/([^/]+)/endpoints/([^/]+)$")
_MODEL = re.compile(r"^projects/[^/]+/locations/[^/]+/models/[^/]+$")


class EndpointName(NamedTuple):
    project: str
    region: str
    endpoint_id: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/endpoints/{self.endpoint_id}"

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def parse_endpoint(name: str) -> EndpointName:
    match = _ENDPOINT.match(name)
    if not match:
        raise ValueError(f"endpoint: {name!r} is not projects/P/locations/R/endpoints/ID")
    return EndpointName(*match.groups())


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
    whole = sum(weights.values())
    shares = {key: divmod(total * weight, whole) for key, weight in weights.items()}
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


def merged_labels(props: dict[str, Any]) -> dict[str, str]:
    """The uploaded model's labels: the deployment's, then the upload's own."""
    upload = (props.get("model") or {}).get("upload") or {}
    return {**(props.get("labels") or {}), **(upload.get("labels") or {})}


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
    upload = model["upload"]
    if isinstance(upload, dict) and not upload.get("imageUri"):
        return [("model.upload.imageUri", "is required")]
    return []


def _scaling_problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    low, high = props.get("minReplicas"), props.get("maxReplicas")
    if isinstance(low, int) and isinstance(high, int) and not 1 <= low <= high:
        found.append(("minReplicas", f"needs 1 <= minReplicas ({low}) <= maxReplicas ({high})"))
    kind, count = props.get("acceleratorType"), props.get("acceleratorCount") or 0
    if kind != rpc.UNKNOWN and isinstance(count, int) and bool(kind) != (count > 0):
        found.append(("acceleratorCount", "goes with acceleratorType: both or neither"))
    autoscaling = props.get("autoscaling")
    if not isinstance(autoscaling, dict):
        return found
    metric, target = autoscaling.get("metric"), autoscaling.get("target")
    if metric not in AUTOSCALING_METRICS:
        found.append(("autoscaling.metric", f"is none of {sorted(AUTOSCALING_METRICS)}"))
    elif metric == "gpuUtilization" and not kind:
        found.append(("autoscaling.metric", "gpuUtilization needs an accelerator"))
    percent = metric in PERCENT_METRICS
    if isinstance(target, int) and not (1 <= target <= 100 if percent else target >= 1):
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
    if key and not (isinstance(rollout.get(key), int) and 1 <= rollout[key] <= 99):
        found.append((f"rollout.{key}", f"{strategy} needs a whole percent from 1 to 99"))
    wait = rollout.get("waitMinutes") or 0
    if isinstance(wait, int | float) and wait < 0:
        found.append(("rollout.waitMinutes", "cannot be negative"))
    return found


def problems(props: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with the deployment's inputs, by property path. Values not
    known yet (during a preview) are skipped."""
    found = _model_problems(props) + _scaling_problems(props) + _rollout_problems(props)
    endpoint = props.get("endpoint")
    if _known(endpoint) and not _ENDPOINT.match(str(endpoint)):
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


class VertexDeploymentProvider(dynamic.ResourceProvider):
    """Pulumi stores this provider by reference to this module and runs it in its
    own process; every helper it calls is importable from here."""

    # Regional Vertex AI and global Cloud Monitoring REST roots (tests point
    # both at a local fake).
    api_root = "https://{region}-aiplatform.googleapis.com/v1"
    monitoring_root = "https://monitoring.googleapis.com/v3"
    # One long-running operation, start to end: a GPU deployment takes 15-30 minutes.
    timeout_seconds = 1800.0
    # How long one call keeps retrying throttling, server errors and lost connections.
    retry_seconds = 300.0
    request_seconds = 60.0
    poll_seconds = 10.0
    # However soon a reply asks to be retried, no sooner than this.
    min_retry_seconds = 1.0
    # A rollout's waitMinutes, in seconds (tests shorten the minute).
    minute_seconds = 60.0
    # How often a bake reads the alarms' metrics, and how far back each read looks.
    bake_poll_seconds = 60.0
    alarm_window_seconds = 300.0

    _session: AuthorizedSession | None = None

    def credentials(self) -> Credentials:
        # Imported here: only a real deployment needs credentials, never a plan.
        import google.auth

        credentials, _project = google.auth.default(scopes=SCOPES)
        return credentials

    def session(self) -> AuthorizedSession:
        if self._session is None:
            from google.auth.transport.requests import AuthorizedSession

            self._session = AuthorizedSession(self.credentials())
        return self._session

    def root(self, endpoint: EndpointName) -> str:
        return self.api_root.format(region=endpoint.region)

    # --- HTTP -----------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        deadline: float | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """One REST call and its JSON body. Throttling (429), server errors and a
        dropped connection are retried until `deadline` (default: `retry_seconds`
        from now); any other refusal fails at once with the API's own message.
        With `missing_ok`, a 404 answers None."""
        import requests
        from google.auth.exceptions import TransportError

        lost = (requests.ConnectionError, requests.Timeout, TransportError)
        if deadline is None:
            deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                response = self.session().request(
                    method, url, json=body, params=params, timeout=self.request_seconds
                )
            except lost as error:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{method} {url}: {error!r}") from None
                self.pause(None, deadline)
                continue
            code = response.status_code
            if code == 404 and missing_ok:
                return None
            if (code == 429 or code >= 500) and time.monotonic() < deadline:
                self.pause(response.headers.get("Retry-After"), deadline)
                continue
            if code >= 400:
                raise RuntimeError(f"{method} {url}: {self.refusal(response)}")
            return self.body(method, url, response)

    @staticmethod
    def refusal(response: Response) -> str:
        """The API's own account of a refusal: `{"error": {code, message, status}}`."""
        try:
            error = response.json()["error"]
            return f"HTTP {response.status_code} {error.get('status', '')}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            return f"HTTP {response.status_code}: {response.text[:300]}"

    @staticmethod
    def body(method: str, url: str, response: Response) -> dict[str, Any]:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            detail = response.text[:200]
            raise RuntimeError(
                f"{method} {url}: HTTP {response.status_code}: not JSON: {detail}"
            ) from None

    def pause(self, retry_after: str | None, deadline: float) -> None:
        """Sleep as long as Retry-After asks in seconds (at least
        `min_retry_seconds`; `poll_seconds` without one), never past `deadline`."""
        try:
            delay = float(retry_after) if retry_after is not None else self.poll_seconds
        except ValueError:  # An HTTP date instead of seconds.
            delay = self.poll_seconds
        if not math.isfinite(delay):
            delay = self.poll_seconds
        delay = max(delay, self.min_retry_seconds)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def wait(
        self, root: str, operation: dict[str, Any], what: str, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """Follow a long-running operation to its end, within `timeout_seconds`,
        and answer its response. A failed operation fails with the API's message;
        with `missing_ok`, one that found nothing to act on (NOT_FOUND) answers None."""
        deadline = time.monotonic() + self.timeout_seconds
        while not operation.get("done"):
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{what} still running after {self.timeout_seconds} s: {operation.get('name')}"
                )
            time.sleep(max(0.0, min(self.poll_seconds, deadline - time.monotonic())))
            operation = self.request("GET", f"{root}/{operation['name']}", deadline=deadline) or {}
        error = operation.get("error")
        if error and missing_ok and error.get("code") == NOT_FOUND:
            return None
        if error:
            raise RuntimeError(f"{what} failed (code {error.get('code')}): {error.get('message')}")
        return operation.get("response") or {}

    # --- Vertex AI calls --------------------------------------------------------

    def model_for(self, endpoint: EndpointName, props: dict[str, Any]) -> str:
        """The registry model to deploy, `projects/.../models/ID@VERSION`: the one
        given by name, or the one uploaded now into the endpoint's region."""
        model = props["model"]
        if "name" in model:
            return model["name"]
        upload = model["upload"]
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
            "labels": merged_labels(props),
        }
        if upload.get("artifactUri"):
            spec["artifactUri"] = upload["artifactUri"]
        if upload.get("kmsKeyName"):
            spec["encryptionSpec"] = {"kmsKeyName": upload["kmsKeyName"]}
        # No request-level serviceAccount: the upload is read by the Vertex AI
        # service agent, so the serving identity needs no grants for it and the
        # deployer no actAs on that identity just to upload.
        root = self.root(endpoint)
        url = f"{root}/{endpoint.parent}/models:upload"
        operation = self.request("POST", url, {"model": spec}) or {}
        response = self.wait(root, operation, "model upload") or {}
        version = response.get("modelVersionId")
        return f"{response['model']}@{version}" if version else response["model"]

    def endpoint(self, endpoint: EndpointName, missing_ok: bool = False) -> dict[str, Any] | None:
        return self.request("GET", f"{self.root(endpoint)}/{endpoint.name}", missing_ok=missing_ok)

    def deploy(
        self, endpoint: EndpointName, props: dict[str, Any], model: str, split: dict[str, int]
    ) -> str:
        """Deploy `model` with `split` ("0" standing for it) and answer its ID."""
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
            "model": model,
            "displayName": props["displayName"],
            "serviceAccount": props["serviceAccount"],
            "dedicatedResources": resources,
            # Container logs stay on (the API's default); access logs are turned on.
            "enableAccessLogging": True,
        }
        root = self.root(endpoint)
        url = f"{root}/{endpoint.name}:deployModel"
        operation = self.request("POST", url, {"deployedModel": deployed, "trafficSplit": split})
        response = self.wait(root, operation or {}, f"deploying {model}") or {}
        return str(response["deployedModel"]["id"])

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

    def worst(self, endpoint: EndpointName, deployed_id: str, alarm: Alarm) -> float | None:
        """The deployed model's worst minute of `alarm`'s metric over the last
        `alarm_window_seconds`, or None before it has any data."""
        now = datetime.now(UTC)
        start = now - timedelta(seconds=self.alarm_window_seconds)
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
        for key, alarm in ALARMS.items():
            threshold = alarms.get(key)
            if threshold is None:
                continue
            value = self.worst(endpoint, deployed_id, alarm)
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

    def roll_back(self, endpoint: EndpointName, deployed_id: str, before: dict[str, int]) -> None:
        """Traffic back to `before` first (at once), then the new model undeployed."""
        if before:
            self.set_split(endpoint, before)
        self.undeploy(endpoint, deployed_id, None)

    # --- Pulumi -----------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [dynamic.CheckFailure(path, reason) for path, reason in problems(news)]
        return dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        if found := problems(props):
            raise ValueError("; ".join(f"{path}: {reason}" for path, reason in found))
        endpoint = parse_endpoint(props["endpoint"])
        model = self.model_for(endpoint, props)
        before = serving(self.endpoint(endpoint) or {})
        steps = stages(props.get("rollout"), has_traffic=bool(before))
        deployed_id = self.deploy(endpoint, props, model, shifted(before, "0", steps[0]))
        try:
            self.roll_out(endpoint, deployed_id, before, steps, props)
        except Exception as error:
            try:
                self.roll_back(endpoint, deployed_id, before)
            except Exception as undo:
                raise RuntimeError(
                    f"{error}; rolling back failed too, so deployed model {deployed_id} "
                    f"is left on {endpoint.name}: {undo}"
                ) from error
            raise RuntimeError(
                f"{error}; rolled back: traffic restored to {before} and deployed model "
                f"{deployed_id} undeployed"
            ) from error
        outs = {**props, "deployed_model_id": deployed_id, "model_name": model}
        return dynamic.CreateResult(id_=f"{endpoint.name}/deployedModels/{deployed_id}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [key for key in (*REPLACING, *UPDATING) if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=[key for key in changed if key in REPLACING],
            delete_before_replace=False,
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
            body = {"labels": merged_labels(news)}
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
    "healthRoute", "port", "labels"}}` or
    `{"name": "projects/.../models/ID@VERSION"}`. `autoscaling` is
    `{"metric": "cpuUtilization" | "gpuUtilization" | "invocationsPerReplica",
    "target": int}`: a percentage for the first two, requests per minute per
    replica for the third. `rollout` is `{"strategy": "allAtOnce" | "canary" |
    "linear", "canaryPercent", "linearStepPercent", "waitMinutes"}`; `alarms` is
    `{"errorsPerMinute", "latencyP99Ms"}`, read during a bake. `labels` label the
    uploaded model (refused with a model given by name: the deployed model
    itself takes none)."""

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
