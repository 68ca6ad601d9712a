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

import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pulumi
from pulumi import dynamic

from infra.engine_values import whole
from infra.gcp.vertex_api import (
    ALREADY_EXISTS,
    ApiError,
    EndpointName,
    OperationError,
    OperationTimeoutError,
    UnansweredError,
    VertexApiProvider,
    parse_endpoint,
)
from infra.gcp.vertex_deployment_inputs import (
    REPLACING,
    SCALING,
    UPDATING,
    UPLOAD_LABEL,
    VertexModelDeploymentArgs,
    autoscaling_specs,
    deployed_model_id,
    merged_labels,
    model_identity,
    problems,
    upload_key,
    version_labels,
)
from infra.gcp.vertex_traffic import (
    apportion,
    deployed_ids,
    serving,
    serving_besides,
    shifted,
    stages,
)

# How many minutes of metrics a bake reads when `alarms` does not say: the alert
# policies' default `evaluationMinutes` (infra/settings).
EVALUATION_MINUTES = 3


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


class AlarmError(RuntimeError):
    """A baking deployed model crossed one of its alarms."""


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
