"""VertexModelDeployment's provider against a small fake of the Vertex AI and Cloud
Monitoring REST APIs, served on 127.0.0.1 by the test itself: the requests it
sends, the traffic it moves, the operations it waits for, and where it stops."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from google.auth.credentials import AnonymousCredentials
from pulumi.dynamic.dynamic import serialize_provider

from infra.gcp.vertex_deployment import (
    VertexDeploymentProvider,
    VertexModelDeploymentArgs,
    apportion,
)

PARENT = "projects/mlops-prod/locations/europe-west4"
ENDPOINT = f"{PARENT}/endpoints/4242"
SERVICE_ACCOUNT = "serving@mlops-prod.iam.gserviceaccount.com"
KEY = f"{PARENT}/keyRings/mlops/cryptoKeys/cmk"
IMAGE = "europe-west4-docker.pkg.dev/mlops-prod/serving/churn:1.4.0"
ERRORS = "aiplatform.googleapis.com/prediction/online/error_count"
LATENCY = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
GPU_DUTY = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"


class Call(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None


class FakeVertex:
    """One endpoint, its deployed models and traffic, and long-running operations
    that end after `polls` polls."""

    def __init__(self) -> None:
        self.deployed: list[str] = []
        self.split: dict[str, int] = {}
        self.requests: list[Call] = []
        # Polls an operation answers "not done" before it ends; None: it never ends.
        self.polls: int | None = 1
        # How the next operation ends, if it fails.
        self.operation_error: dict[str, Any] | None = None
        # Statuses (with headers) the next requests get instead of an answer.
        self.refuse: list[tuple[int, dict[str, str]]] = []
        # Connections closed without an answer, before answering again.
        self.drop = 0
        self.missing = False
        # The worst minute Cloud Monitoring reports, by metric type.
        self.metrics: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.next_id = 100

    def serve(self, models: dict[str, int]) -> None:
        self.deployed = list(models)
        self.split = {key: share for key, share in models.items() if share}

    def calls(self, suffix: str, method: str = "POST") -> list[Call]:
        return [c for c in self.requests if c.method == method and c.path.endswith(suffix)]

    def operation(self, done: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = f"{PARENT}/operations/{len(self.operations) + 1}"
        self.operations[name] = {"left": self.polls, "done": done}
        return {"name": name, "done": False}

    def poll(self, name: str) -> dict[str, Any]:
        operation = self.operations[name]
        if operation["left"] is None or operation["left"] > 0:
            operation["left"] = None if operation["left"] is None else operation["left"] - 1
            return {"name": name, "done": False}
        if self.operation_error:
            return {"name": name, "done": True, "error": self.operation_error}
        if "response" not in operation:
            operation["response"] = operation["done"]()
        return {"name": name, "done": True, "response": operation["response"]}

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        def done() -> dict[str, Any]:
            deployed_id, self.next_id = str(self.next_id), self.next_id + 1
            self.deployed.append(deployed_id)
            split = body.get("trafficSplit") or {}
            if split:
                self.split = {(deployed_id if k == "0" else k): v for k, v in split.items()}
            return {"deployedModel": {"id": deployed_id}}

        return self.operation(done)

    def undeploy(self, body: dict[str, Any]) -> dict[str, Any]:
        def done() -> dict[str, Any]:
            self.deployed.remove(body["deployedModelId"])
            if "trafficSplit" in body:
                self.split = dict(body["trafficSplit"])
            self.split.pop(body["deployedModelId"], None)
            return {}

        return self.operation(done)

    def endpoint(self) -> dict[str, Any]:
        models = [{"id": deployed_id} for deployed_id in self.deployed]
        return {"name": ENDPOINT, "deployedModels": models, "trafficSplit": self.split}

    def series(self, query: dict[str, str]) -> dict[str, Any]:
        metric = query["filter"].split('"')[1]
        if metric not in self.metrics:
            return {}
        return {"timeSeries": [{"points": [{"value": self.metrics[metric]}]}]}


def _handler(serving: dict[str, FakeVertex]) -> type[BaseHTTPRequestHandler]:
    """Answers as the fake in `serving["fake"]` (a fresh one per test) would."""

    def read(fake: FakeVertex, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if "/operations/" in path:
            return 200, fake.poll(path)
        if path.endswith("/timeSeries"):
            return 200, fake.series(query)
        if fake.missing:
            error = {"code": 404, "message": "Endpoint not found.", "status": "NOT_FOUND"}
            return 404, {"error": error}
        return 200, fake.endpoint()

    def write(fake: FakeVertex, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "PATCH" and path == ENDPOINT:
            fake.split = dict(body["trafficSplit"])
            return fake.endpoint()
        if method == "PATCH":
            return {"name": path, "labels": body["labels"]}
        if path.endswith("/models:upload"):
            return fake.operation(lambda: {"model": f"{PARENT}/models/77", "modelVersionId": "3"})
        if path.endswith(":deployModel"):
            return fake.deploy(body)
        if path.endswith(":undeployModel"):
            return fake.undeploy(body)
        return fake.operation(dict)  # mutateDeployedModel

    def answer(fake: FakeVertex, call: Call) -> tuple[int, dict[str, Any]]:
        path = call.path.removeprefix("/v1/").removeprefix("/v3/")
        if call.method == "GET":
            return read(fake, path, call.query)
        return 200, write(fake, call.method, path, call.body or {})

    class Handler(BaseHTTPRequestHandler):
        # Headers and body leave in two writes; without this the body waits for
        # the client's delayed acknowledgement of the headers.
        disable_nagle_algorithm = True
        # Connections kept open between requests, as Google's front ends do.
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return

        def _reply(self, code: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            call = Call(self.command, url.path, query, body)
            fake = serving["fake"]
            fake.requests.append(call)
            if fake.drop:
                fake.drop -= 1
                self.close_connection = True
                return
            if fake.refuse:
                code, headers = fake.refuse.pop(0)
                error = {"code": code, "message": f"refused with {code}", "status": "REFUSED"}
                self._reply(code, {"error": error}, headers)
                return
            code, reply = answer(fake, call)
            self._reply(code, reply, {})

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[dict[str, FakeVertex], str]]:
    """One local server for the file, answering as each test's own fake."""
    serving: dict[str, FakeVertex] = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(serving))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.daemon = True
    thread.start()
    try:
        yield serving, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def vertex(server) -> tuple[FakeVertex, VertexDeploymentProvider]:
    serving, root = server
    fake = serving["fake"] = FakeVertex()

    class Local(VertexDeploymentProvider):
        api_root = f"{root}/v1"
        monitoring_root = f"{root}/v3"
        timeout_seconds = 2.0
        retry_seconds = 1.0
        request_seconds = 2.0
        poll_seconds = 0.003
        min_retry_seconds = 0.003
        minute_seconds = 0.02
        bake_poll_seconds = 0.005

        def credentials(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    return fake, Local()


def _props(**changes: Any) -> dict[str, Any]:
    """The provider's inputs for a GPU deployment of an uploaded model, with
    `changes` to VertexModelDeploymentArgs' fields."""
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "display_name": "churn-1-4-0",
        "model": {
            "upload": {
                "imageUri": IMAGE,
                "artifactUri": "gs://mlops-prod-models/churn/1.4.0",
                "kmsKeyName": KEY,
                "predictRoute": "/invocations",
                "healthRoute": "/ping",
                "port": 8080,
                "labels": {"model": "churn"},
            }
        },
        "machine_type": "g2-standard-8",
        "accelerator_type": "NVIDIA_L4",
        "accelerator_count": 1,
        "min_replicas": 1,
        "max_replicas": 4,
        "autoscaling": {"metric": "gpuUtilization", "target": 70},
        "service_account": SERVICE_ACCOUNT,
        "labels": {"stack": "prod"},
    }
    return VertexModelDeploymentArgs(**{**fields, **changes}).props()


CANARY = {"strategy": "canary", "canaryPercent": 10, "waitMinutes": 2}
ALARMS = {"errorsPerMinute": 5, "latencyP99Ms": 800}


def test_create_uploads_the_model_and_deploys_it_onto_an_empty_endpoint(vertex) -> None:
    fake, provider = vertex
    result = provider.create(_props())

    (upload,) = fake.calls("/models:upload")
    assert upload.path == f"/v1/{PARENT}/models:upload"
    assert upload.body == {
        "model": {
            "displayName": "churn-1-4-0",
            "containerSpec": {
                "imageUri": IMAGE,
                "predictRoute": "/invocations",
                "healthRoute": "/ping",
                "ports": [{"containerPort": 8080}],
            },
            "artifactUri": "gs://mlops-prod-models/churn/1.4.0",
            "encryptionSpec": {"kmsKeyName": KEY},
            "labels": {"stack": "prod", "model": "churn"},
        }
    }
    (deploy,) = fake.calls(":deployModel")
    assert deploy.path == f"/v1/{ENDPOINT}:deployModel"
    assert deploy.body == {
        "deployedModel": {
            "model": f"{PARENT}/models/77@3",
            "displayName": "churn-1-4-0",
            "serviceAccount": SERVICE_ACCOUNT,
            "dedicatedResources": {
                "machineSpec": {
                    "machineType": "g2-standard-8",
                    "acceleratorType": "NVIDIA_L4",
                    "acceleratorCount": 1,
                },
                "minReplicaCount": 1,
                "maxReplicaCount": 4,
                "autoscalingMetricSpecs": [{"metricName": GPU_DUTY, "target": 70}],
            },
            "enableAccessLogging": True,
        },
        "trafficSplit": {"0": 100},
    }
    assert result.outs["deployed_model_id"] == "100"
    assert result.outs["model_name"] == f"{PARENT}/models/77@3"
    assert result.id == f"{ENDPOINT}/deployedModels/100"
    assert fake.split == {"100": 100}
    # Nothing served before, so nothing to bake against: no traffic moves, no metrics.
    assert fake.calls(ENDPOINT, "PATCH") == []
    assert fake.calls("/timeSeries", "GET") == []


def test_a_registry_model_given_by_name_is_deployed_without_an_upload(vertex) -> None:
    fake, provider = vertex
    name = f"{PARENT}/models/12@7"
    props = _props(model={"name": name}, labels={}, autoscaling=None)
    result = provider.create(props)
    assert fake.calls("/models:upload") == []
    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["deployedModel"]["model"] == name
    assert "autoscalingMetricSpecs" not in deploy.body["deployedModel"]["dedicatedResources"]
    assert result.outs["model_name"] == name


def test_a_canary_bakes_on_its_share_of_traffic_then_takes_it_all(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    fake.metrics = {ERRORS: {"int64Value": "2"}, LATENCY: {"doubleValue": 310.5}}
    result = provider.create(_props(rollout=CANARY, alarms=ALARMS))

    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["trafficSplit"] == {"0": 10, "7": 90}
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {"100": 100}}]
    assert fake.calls(ENDPOINT, "PATCH")[0].query == {"updateMask": "trafficSplit"}
    assert fake.split == {"100": 100}
    assert result.outs["deployed_model_id"] == "100"
    # The bake read both alarms, for the new deployed model alone, more than once.
    reads = fake.calls("/projects/mlops-prod/timeSeries", "GET")
    assert {c.query["filter"].split('"')[1] for c in reads} == {ERRORS, LATENCY}
    assert len(reads) >= 4
    for read in reads:
        assert 'resource.labels.endpoint_id="4242"' in read.query["filter"]
        assert 'metric.labels.deployed_model_id="100"' in read.query["filter"]
    latency = next(c for c in reads if LATENCY in c.query["filter"])
    assert 'metric.labels.latency_type="total"' in latency.query["filter"]
    assert latency.query["aggregation.crossSeriesReducer"] == "REDUCE_PERCENTILE_99"


def test_a_linear_rollout_moves_traffic_in_steps_keeping_the_old_proportions(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 60, "8": 40, "9": 0})
    rollout = {"strategy": "linear", "linearStepPercent": 40, "waitMinutes": 1}
    provider.create(_props(rollout=rollout))
    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["trafficSplit"] == {"0": 40, "7": 36, "8": 24}
    assert [c.body["trafficSplit"] for c in fake.calls(ENDPOINT, "PATCH")] == [
        {"100": 80, "7": 12, "8": 8},
        {"100": 100},
    ]


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        (ERRORS, {"int64Value": "12"}, r"error_count for deployed model 100 was 12 .*of 5"),
        (LATENCY, {"doubleValue": 950.0}, r"prediction_latencies .* was 950 ms at p99.* of 800"),
    ],
    ids=["errors", "latency"],
)
def test_a_canary_that_breaches_an_alarm_is_rolled_back(
    vertex, metric: str, value: dict[str, Any], message: str
) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    fake.metrics = {metric: value}
    with pytest.raises(RuntimeError, match=message) as raised:
        provider.create(_props(rollout=CANARY, alarms=ALARMS))
    assert "traffic restored to {'7': 100}" in str(raised.value)
    # Traffic back first, then the canary undeployed; it never took everything.
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {"7": 100}}]
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": "100"}
    assert fake.requests.index(undeploy) > fake.requests.index(fake.calls(ENDPOINT, "PATCH")[0])
    assert (fake.deployed, fake.split) == (["7"], {"7": 100})


def test_metrics_that_cannot_be_read_roll_the_canary_back_too(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})

    def refuse_metrics(*_args: Any) -> None:
        raise RuntimeError("GET timeSeries: HTTP 403 PERMISSION_DENIED: monitoring.timeSeries.list")

    provider.worst = refuse_metrics
    with pytest.raises(RuntimeError, match=r"PERMISSION_DENIED.*rolled back"):
        provider.create(_props(rollout=CANARY, alarms=ALARMS))
    assert (fake.deployed, fake.split) == (["7"], {"7": 100})


def test_an_operation_that_fails_fails_with_the_apis_message(vertex) -> None:
    fake, provider = vertex
    fake.operation_error = {
        "code": 9,
        "message": "Model server never became ready. Please validate the container.",
    }
    with pytest.raises(RuntimeError, match=r"model upload failed \(code 9\): Model server never"):
        provider.create(_props())
    assert fake.calls(":deployModel") == []


@pytest.mark.parametrize(
    "fault",
    [
        {"refuse": [(429, {"Retry-After": "0"})]},
        {"refuse": [(503, {}), (500, {"Retry-After": "0"})]},
        {"drop": 2},
    ],
    ids=["throttled", "server errors", "dropped connections"],
)
def test_transient_faults_are_retried(vertex, fault: dict[str, Any]) -> None:
    fake, provider = vertex
    fake.refuse = list(fault.get("refuse", []))
    fake.drop = fault.get("drop", 0)
    retried = 1 + len(fake.refuse) + fake.drop
    result = provider.create(_props())
    assert result.outs["deployed_model_id"] == "100"
    assert [c.path for c in fake.requests[:retried]] == [f"/v1/{PARENT}/models:upload"] * retried
    assert len(fake.calls("/models:upload")) == retried


def test_a_bad_request_fails_at_once_with_the_apis_message(vertex) -> None:
    fake, provider = vertex
    fake.refuse = [(400, {}), (400, {})]
    with pytest.raises(RuntimeError, match=r"models:upload: HTTP 400 REFUSED: refused with 400"):
        provider.create(_props())
    assert len(fake.requests) == 1


def test_throttling_that_outlasts_the_deadline_names_the_status(vertex) -> None:
    fake, provider = vertex
    fake.refuse = [(429, {"Retry-After": "0"})] * 1000
    provider.retry_seconds = 0.06
    provider.min_retry_seconds = 0.02
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"HTTP 429"):
        provider.create(_props())
    assert time.monotonic() - started < 0.3
    # Retry-After: 0 on every reply, yet no more often than min_retry_seconds.
    assert 2 <= len(fake.requests) <= 6


def test_an_operation_that_never_ends_times_out(vertex) -> None:
    fake, provider = vertex
    fake.polls = None
    provider.timeout_seconds = 0.05
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"model upload still running after 0\.05 s"):
        provider.create(_props())
    assert time.monotonic() - started < 0.5
    assert len(fake.calls("/operations/1", "GET")) >= 3


def test_only_a_new_deployment_replaces(vertex) -> None:
    _fake, provider = vertex
    old = _props()
    other_model = provider.diff("id", old, _props(model={"name": f"{PARENT}/models/12@8"}))
    assert (other_model.changes, other_model.replaces) == (True, ["model"])
    assert other_model.delete_before_replace is False
    other_machine = provider.diff("id", old, _props(machine_type="g2-standard-12"))
    assert other_machine.replaces == ["machineType"]
    rescaled = provider.diff("id", old, _props(min_replicas=2, max_replicas=6))
    assert (rescaled.changes, rescaled.replaces) == (True, [])
    rerolled = provider.diff("id", old, _props(rollout=CANARY, alarms=ALARMS))
    assert (rerolled.changes, rerolled.replaces) == (True, [])
    recorded = {**old, "deployed_model_id": "100", "model_name": f"{PARENT}/models/77@3"}
    assert provider.diff("id", recorded, _props()).changes is False


def test_update_rescales_the_deployed_model_in_place(vertex) -> None:
    fake, provider = vertex
    olds = {**_props(), "deployed_model_id": "100", "model_name": f"{PARENT}/models/77@3"}
    news = _props(
        min_replicas=2, max_replicas=6, autoscaling={"metric": "cpuUtilization", "target": 55}
    )
    result = provider.update("id", olds, news)
    (mutate,) = fake.calls(":mutateDeployedModel")
    assert mutate.path == f"/v1/{ENDPOINT}:mutateDeployedModel"
    assert mutate.body == {
        "deployedModel": {
            "id": "100",
            "dedicatedResources": {
                "minReplicaCount": 2,
                "maxReplicaCount": 6,
                "autoscalingMetricSpecs": [{"metricName": CPU, "target": 55}],
            },
        },
        "updateMask": "dedicatedResources.minReplicaCount,dedicatedResources.maxReplicaCount,"
        "dedicatedResources.autoscalingMetricSpecs",
    }
    assert fake.calls("/operations/1", "GET")  # waited for
    assert (result.outs["deployed_model_id"], result.outs["minReplicas"]) == ("100", 2)


def test_update_relabels_the_uploaded_model_and_a_rollout_change_calls_nothing(vertex) -> None:
    fake, provider = vertex
    olds = {**_props(), "deployed_model_id": "100", "model_name": f"{PARENT}/models/77@3"}
    provider.update("id", olds, _props(rollout=CANARY, alarms=ALARMS))
    assert fake.requests == []
    provider.update("id", olds, _props(labels={"stack": "prod", "team": "risk"}))
    (relabel,) = fake.requests
    assert (relabel.method, relabel.path, relabel.query) == (
        "PATCH",
        f"/v1/{PARENT}/models/77@3",
        {"updateMask": "labels"},
    )
    assert relabel.body == {"labels": {"stack": "prod", "team": "risk", "model": "churn"}}


def test_delete_undeploys_and_hands_its_traffic_to_the_models_that_stay(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 0, "8": 0, "100": 100})
    provider.delete("id", {**_props(), "deployed_model_id": "100"})
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": "100", "trafficSplit": {"7": 50, "8": 50}}
    assert (fake.deployed, fake.split) == (["7", "8"], {"7": 50, "8": 50})
    # The uploaded model stays in the registry.
    assert [c for c in fake.requests if c.method == "DELETE"] == []


def test_delete_of_the_last_model_undeploys_without_a_split(vertex) -> None:
    fake, provider = vertex
    fake.serve({"100": 100})
    provider.delete("id", {**_props(), "deployed_model_id": "100"})
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": "100"}
    assert (fake.deployed, fake.split) == ([], {})


@pytest.mark.parametrize(
    "gone",
    ["endpoint", "deployed model", "undeploy operation"],
)
def test_deleting_what_is_already_gone_succeeds(vertex, gone: str) -> None:
    fake, provider = vertex
    fake.serve({"7": 100, "100": 0})
    if gone == "endpoint":
        fake.missing = True
    elif gone == "deployed model":
        fake.serve({"7": 100})
    else:
        fake.operation_error = {"code": 5, "message": "Deployed model 100 not found."}
    provider.delete("id", {**_props(), "deployed_model_id": "100"})
    expected = 1 if gone == "undeploy operation" else 0
    assert len(fake.calls(":undeployModel")) == expected


@pytest.mark.parametrize(
    ("weights", "total", "shares"),
    [
        ({"a": 70, "b": 30}, 85, {"a": 60, "b": 25}),
        ({"a": 1, "b": 1, "c": 1}, 100, {"a": 34, "b": 33, "c": 33}),
        ({"a": 0, "b": 0}, 100, {"a": 50, "b": 50}),
        ({}, 90, {}),
    ],
)
def test_traffic_is_shared_in_whole_percents_that_add_up(
    weights: dict[str, int], total: int, shares: dict[str, int]
) -> None:
    assert apportion(weights, total) == shares


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"autoscaling": {"metric": "queueDepth", "target": 5}}, "autoscaling.metric", "none of"),
        (
            {"accelerator_type": None, "accelerator_count": 0},
            "autoscaling.metric",
            "gpuUtilization needs an accelerator",
        ),
        (
            {"autoscaling": {"metric": "cpuUtilization", "target": 120}},
            "autoscaling.target",
            "1 to 100",
        ),
        ({"min_replicas": 5, "max_replicas": 2}, "minReplicas", "1 <= minReplicas"),
        ({"rollout": {"strategy": "canary", "waitMinutes": 5}}, "rollout.canaryPercent", "1 to 99"),
        ({"rollout": {"strategy": "blueGreen"}}, "rollout.strategy", "none of"),
        ({"model": {"name": f"{PARENT}/models/12@1"}}, "labels", "where it is uploaded"),
        ({"endpoint": "4242"}, "endpoint", "projects/P/locations/R/endpoints/ID"),
    ],
    ids=[
        "unknown metric",
        "gpu metric without gpu",
        "percent over 100",
        "min over max",
        "canary without percent",
        "unknown strategy",
        "labels on a named model",
        "bare endpoint id",
    ],
)
def test_bad_inputs_are_refused_naming_the_input(
    vertex, changes: dict[str, Any], path: str, reason: str
) -> None:
    fake, provider = vertex
    props = _props(**changes)
    failures = provider.check({}, props).failures
    assert [(f.property, reason in f.reason) for f in failures] == [(path, True)]
    with pytest.raises(ValueError, match=path):
        provider.create(props)
    assert fake.requests == []


def test_requests_per_replica_scale_on_the_request_count_metric() -> None:
    from infra.gcp.vertex_deployment import autoscaling_specs

    specs = autoscaling_specs({"metric": "invocationsPerReplica", "target": 600})
    assert specs == [
        {"metricName": "aiplatform.googleapis.com/prediction/online/request_count", "target": 600}
    ]


def test_the_provider_is_stored_by_reference_without_credentials() -> None:
    blob = base64.b64decode(serialize_provider(VertexDeploymentProvider()))
    assert b"infra.gcp.vertex_deployment" in blob
    assert b"AuthorizedSession" not in blob
