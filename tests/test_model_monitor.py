"""VertexModelMonitor's provider against a small fake of Vertex AI's
modelDeploymentMonitoringJobs REST API, served on 127.0.0.1 by the test itself:
the jobs it sends, the fields it patches, how it deletes, and where it stops."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from fake_google import GoogleHandler, google_error
from google.auth.credentials import AnonymousCredentials
from local_http import serving
from pulumi.dynamic.dynamic import serialize_provider

from infra.gcp.model_monitor import (
    OBJECTIVES,
    VertexModelMonitor,
    VertexModelMonitorArgs,
    VertexMonitorProvider,
)

PARENT = "projects/mlops-prod/locations/europe-west4"
ENDPOINT = f"{PARENT}/endpoints/4242"
KEY = f"{PARENT}/keyRings/mlops/cryptoKeys/cmk"
CHANNEL = "projects/mlops-prod/notificationChannels/555"
# Vertex names a job by project number.
JOB = "projects/123456/locations/europe-west4/modelDeploymentMonitoringJobs/777"
BASELINE = "gs://mlops-prod-lake/churn/train/*.csv"


class Call(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    at: float


class FakeVertex:
    """One endpoint, its deployed models, at most one monitoring job, and
    long-running operations that end after `polls` polls."""

    def __init__(self) -> None:
        self.requests: list[Call] = []
        self.deployed = ["100", "101"]
        self.job: dict[str, Any] | None = None
        self.polls = 1
        self.operations: dict[str, dict[str, Any]] = {}
        # How the next operation ends, if it fails.
        self.operation_error: dict[str, Any] | None = None
        # Statuses (with headers) the next requests get instead of an answer.
        self.refuse: list[tuple[int, dict[str, str]]] = []
        self.create_answers_operation = False
        # Reads that still report a paused job as running.
        self.pause_lag = 0
        self.gone_on_delete = False

    def calls(self, method: str, suffix: str = "") -> list[Call]:
        return [c for c in self.requests if c.method == method and c.path.endswith(suffix)]

    def seen(self) -> list[tuple[str, str]]:
        return [(c.method, c.path.removeprefix("/v1/")) for c in self.requests]

    def operation(self, done: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = f"{PARENT}/operations/{len(self.operations) + 1}"
        self.operations[name] = {"left": self.polls, "done": done}
        return {"name": name, "done": False}

    def poll(self, name: str) -> dict[str, Any]:
        operation = self.operations[name]
        if operation["left"] > 0:
            operation["left"] -= 1
            return {"name": name, "done": False}
        if self.operation_error:
            return {"name": name, "done": True, "error": self.operation_error}
        return {"name": name, "done": True, "response": operation["done"]()}

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.job = {**body, "name": JOB, "state": "JOB_STATE_PENDING"}
        job = dict(self.job)
        return 200, self.operation(lambda: job) if self.create_answers_operation else job

    def patch(self, body: dict[str, Any], mask: str) -> tuple[int, dict[str, Any]]:
        assert self.job is not None
        for key in mask.split(","):
            self.job[key] = body[key]
        return 200, self.operation(lambda: dict(self.job or {}))

    def pause(self) -> tuple[int, dict[str, Any]]:
        assert self.job is not None
        if self.job["state"] != "JOB_STATE_RUNNING":
            return _error(400, "FAILED_PRECONDITION", "Only a running job can be paused.")
        self.job["state"] = "JOB_STATE_PAUSED"
        return 200, {}

    def read(self) -> tuple[int, dict[str, Any]]:
        if self.job is None:
            return _error(404, "NOT_FOUND", f"{JOB} not found.")
        if self.job["state"] == "JOB_STATE_PAUSED" and self.pause_lag:
            self.pause_lag -= 1
            return 200, {**self.job, "state": "JOB_STATE_RUNNING"}
        return 200, self.job

    def delete(self) -> tuple[int, dict[str, Any]]:
        if self.job is None or self.gone_on_delete:
            return _error(404, "NOT_FOUND", f"{JOB} not found.")
        if self.job["state"] == "JOB_STATE_RUNNING":
            return _error(400, "FAILED_PRECONDITION", "Pause the job before deleting it.")

        def done() -> dict[str, Any]:
            self.job = None
            return {}

        return 200, self.operation(done)

    def answer(self, call: Call) -> tuple[int, dict[str, Any]]:
        path = call.path.removeprefix("/v1/")
        if "/operations/" in path:
            return 200, self.poll(path)
        if path == ENDPOINT:
            return 200, {"name": ENDPOINT, "deployedModels": [{"id": i} for i in self.deployed]}
        if path == f"{PARENT}/modelDeploymentMonitoringJobs":
            return self.create(call.body or {})
        if path == f"{JOB}:pause":
            return self.pause()
        if call.method == "PATCH":
            return self.patch(call.body or {}, call.query["updateMask"])
        return self.read() if call.method == "GET" else self.delete()


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, google_error(code, status, message)


def _handler(fakes: dict[str, FakeVertex]) -> type[GoogleHandler]:
    """Answers as the fake in `fakes["fake"]` (a fresh one per test) would."""

    class Handler(GoogleHandler):
        def serve(self) -> None:
            path, query, body = self.received()
            call = Call(self.command, path, query, body, time.monotonic())
            fake = fakes["fake"]
            fake.requests.append(call)
            if fake.refuse:
                code, headers = fake.refuse.pop(0)
                self.reply(code, google_error(code, "REFUSED", f"refused with {code}"), headers)
                return
            self.reply(*fake.answer(call))

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[dict[str, FakeVertex], str]]:
    """One local server for the file, answering as each test's own fake."""
    fakes: dict[str, FakeVertex] = {}
    with serving(_handler(fakes)) as root:
        yield fakes, root


@pytest.fixture
def vertex(server) -> tuple[FakeVertex, VertexMonitorProvider]:
    fakes, root = server
    fake = fakes["fake"] = FakeVertex()

    class Local(VertexMonitorProvider):
        api_root = f"{root}/v1"
        timeout_seconds = 1.0
        retry_seconds = 1.0
        request_seconds = 2.0
        poll_seconds = 0.003
        min_retry_seconds = 0.003

        def credentials(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    return fake, Local()


def _props(**changes: Any) -> dict[str, Any]:
    """The provider's inputs for a churn model's monitor, with `changes` to
    VertexModelMonitorArgs' fields."""
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "display_name": "churn-monitor",
        "baseline_uri": BASELINE,
        "baseline_format": "csv",
        "target_field": "churned",
        "schedule_hours": 6,
        "sampling_percent": 20,
        "drift_thresholds": {"default": 0.3, "features": {"tenure": 0.2, "plan": 0.1}},
        "notification_emails": ["ml-oncall@example.com"],
        "notification_channels": [CHANNEL],
        "kms_key_name": KEY,
        "deployed_model_ids": ["100"],
        "labels": {"stack": "prod"},
    }
    return VertexModelMonitorArgs(**{**fields, **changes}).props()


def _recorded(**changes: Any) -> dict[str, Any]:
    """What Pulumi holds for a created monitor: its inputs and outputs."""
    return {**_props(**changes), "job_name": JOB, "monitored_models": ["100"]}


def _objective(dataset: dict[str, Any] | None = None, limits: Any = None) -> dict[str, Any]:
    limits = limits or {"plan": {"value": 0.1}, "tenure": {"value": 0.2}}
    default = {"value": 0.3}
    return {
        "trainingDataset": dataset
        or {"gcsSource": {"uris": [BASELINE]}, "dataFormat": "csv", "targetField": "churned"},
        "trainingPredictionSkewDetectionConfig": {
            "defaultSkewThreshold": default,
            "skewThresholds": limits,
        },
        "predictionDriftDetectionConfig": {
            "defaultDriftThreshold": default,
            "driftThresholds": limits,
        },
    }


def test_create_sends_the_whole_job_and_outputs_its_name(vertex) -> None:
    fake, provider = vertex
    result = provider.create(_props())

    (create,) = fake.requests
    assert (create.method, create.path) == ("POST", f"/v1/{PARENT}/modelDeploymentMonitoringJobs")
    assert create.body == {
        "displayName": "churn-monitor",
        "endpoint": ENDPOINT,
        OBJECTIVES: [{"deployedModelId": "100", "objectiveConfig": _objective()}],
        "modelDeploymentMonitoringScheduleConfig": {"monitorInterval": "21600s"},
        "loggingSamplingStrategy": {"randomSampleConfig": {"sampleRate": 0.2}},
        "modelMonitoringAlertConfig": {
            "enableLogging": True,
            "emailAlertConfig": {"userEmails": ["ml-oncall@example.com"]},
            "notificationChannels": [CHANNEL],
        },
        "encryptionSpec": {"kmsKeyName": KEY},
        "labels": {"stack": "prod"},
    }
    assert result.id == JOB
    assert (result.outs["job_name"], result.outs["monitored_models"]) == (JOB, ["100"])


def test_without_named_models_every_model_on_the_endpoint_is_watched(vertex) -> None:
    fake, provider = vertex
    result = provider.create(
        _props(deployed_model_ids=None, notification_channels=[], drift_thresholds={})
    )
    assert fake.seen()[0] == ("GET", ENDPOINT)
    (create,) = fake.calls("POST")
    watched = create.body[OBJECTIVES]
    assert [config["deployedModelId"] for config in watched] == ["100", "101"]
    # No per-feature limits: the default of 0.3 alone, for skew and drift alike.
    assert watched[0]["objectiveConfig"]["predictionDriftDetectionConfig"] == {
        "defaultDriftThreshold": {"value": 0.3}
    }
    assert create.body["modelMonitoringAlertConfig"] == {
        "enableLogging": True,
        "emailAlertConfig": {"userEmails": ["ml-oncall@example.com"]},
    }
    assert result.outs["monitored_models"] == ["100", "101"]


@pytest.mark.parametrize(
    ("kind", "uri", "dataset"),
    [
        (
            "tfrecord",
            "gs://mlops-prod-lake/churn/train/part-*",
            {"gcsSource": {"uris": ["gs://mlops-prod-lake/churn/train/part-*"]}},
        ),
        (
            "bigquery",
            "bq://mlops-prod.lake.churn_train",
            {"bigquerySource": {"inputUri": "bq://mlops-prod.lake.churn_train"}},
        ),
    ],
)
def test_the_baseline_is_read_in_its_format(
    vertex, kind: str, uri: str, dataset: dict[str, Any]
) -> None:
    fake, provider = vertex
    provider.create(_props(baseline_format=kind, baseline_uri=uri, target_field=None))
    (create,) = fake.calls("POST")
    expected = {**dataset, "dataFormat": "tf-record"} if kind == "tfrecord" else dataset
    assert create.body[OBJECTIVES][0]["objectiveConfig"]["trainingDataset"] == expected


def test_a_create_answered_with_an_operation_is_followed_to_the_job(vertex) -> None:
    fake, provider = vertex
    fake.create_answers_operation = True
    result = provider.create(_props())
    assert fake.calls("GET", "/operations/1")
    assert result.outs["job_name"] == JOB


def test_new_thresholds_patch_only_the_objectives(vertex) -> None:
    fake, provider = vertex
    fake.job = {"name": JOB, "state": "JOB_STATE_RUNNING"}
    limits = {"default": 0.3, "features": {"tenure": 0.15, "plan": 0.1}}
    result = provider.update(JOB, _recorded(), _props(drift_thresholds=limits))

    (patch,) = fake.calls("PATCH")
    assert (patch.path, patch.query) == (f"/v1/{JOB}", {"updateMask": OBJECTIVES})
    changed = {"plan": {"value": 0.1}, "tenure": {"value": 0.15}}
    assert patch.body == {
        OBJECTIVES: [{"deployedModelId": "100", "objectiveConfig": _objective(limits=changed)}]
    }
    assert fake.calls("GET", "/operations/1")  # waited for
    assert (result.outs["job_name"], result.outs["driftThresholds"]) == (JOB, limits)


def test_schedule_and_notification_changes_name_both_fields(vertex) -> None:
    fake, provider = vertex
    fake.job = {"name": JOB, "state": "JOB_STATE_RUNNING"}
    news = _props(schedule_hours=1, notification_emails=["risk@example.com"])
    provider.update(JOB, _recorded(), news)
    (patch,) = fake.calls("PATCH")
    assert patch.query == {
        "updateMask": "modelDeploymentMonitoringScheduleConfig,modelMonitoringAlertConfig"
    }
    assert patch.body == {
        "modelDeploymentMonitoringScheduleConfig": {"monitorInterval": "3600s"},
        "modelMonitoringAlertConfig": {
            "enableLogging": True,
            "emailAlertConfig": {"userEmails": ["risk@example.com"]},
            "notificationChannels": [CHANNEL],
        },
    }


def test_only_a_new_endpoint_or_key_replaces_and_the_old_job_goes_first(vertex) -> None:
    _fake, provider = vertex
    old = _recorded()
    other_key = f"{PARENT}/keyRings/mlops/cryptoKeys/cmk-2"
    rekeyed = provider.diff(JOB, old, _props(kms_key_name=other_key))
    assert (rekeyed.changes, rekeyed.replaces, rekeyed.delete_before_replace) == (
        True,
        ["kmsKeyName"],
        True,
    )
    moved = provider.diff(JOB, old, _props(endpoint=f"{PARENT}/endpoints/4343"))
    assert moved.replaces == ["endpoint"]
    retuned = provider.diff(JOB, old, _props(drift_thresholds={"default": 0.25}))
    assert (retuned.changes, retuned.replaces, retuned.delete_before_replace) == (
        True,
        [],
        False,
    )
    rebased = provider.diff(JOB, old, _props(baseline_uri="gs://mlops-prod-lake/churn/v2/*.csv"))
    assert (rebased.changes, rebased.replaces) == (True, [])


def test_a_diff_reports_only_real_changes(vertex) -> None:
    fake, provider = vertex
    old = _recorded(
        notification_emails=["a@example.com", "b@example.com"],
        drift_thresholds={"features": {"tenure": 0.2}},
    )
    same = _props(
        notification_emails=["b@example.com", "a@example.com"],
        drift_thresholds={"default": 0.3, "features": {"tenure": 0.2}},
    )
    assert provider.diff(JOB, old, same).changes is False
    provider.update(JOB, old, same)
    assert fake.requests == []


def test_delete_pauses_a_running_job_and_waits_for_the_pause(vertex) -> None:
    fake, provider = vertex
    fake.job = {"name": JOB, "state": "JOB_STATE_RUNNING"}
    fake.pause_lag = 1
    provider.delete(JOB, _recorded())
    assert fake.seen() == [
        ("GET", JOB),
        ("POST", f"{JOB}:pause"),
        ("GET", JOB),  # still reported running
        ("GET", JOB),
        ("DELETE", JOB),
        ("GET", f"{PARENT}/operations/1"),
        ("GET", f"{PARENT}/operations/1"),
    ]
    assert fake.job is None


@pytest.mark.parametrize("state", ["JOB_STATE_PAUSED", "JOB_STATE_PENDING"])
def test_a_job_that_is_not_running_is_deleted_without_a_pause(vertex, state: str) -> None:
    fake, provider = vertex
    fake.job = {"name": JOB, "state": state}
    provider.delete(JOB, _recorded())
    assert fake.calls("POST") == []
    assert len(fake.calls("DELETE")) == 1
    assert fake.job is None


@pytest.mark.parametrize("gone", ["before", "on delete", "in the operation"])
def test_deleting_a_job_already_gone_succeeds(vertex, gone: str) -> None:
    fake, provider = vertex
    fake.job = None if gone == "before" else {"name": JOB, "state": "JOB_STATE_PAUSED"}
    fake.gone_on_delete = gone == "on delete"
    if gone == "in the operation":
        fake.operation_error = {"code": 5, "message": f"{JOB} not found."}
    provider.delete(JOB, _recorded())
    assert len(fake.calls("DELETE")) == (0 if gone == "before" else 1)


def test_a_refusal_fails_at_once_with_the_apis_message(vertex) -> None:
    fake, provider = vertex
    fake.refuse = [(400, {}), (400, {})]
    with pytest.raises(RuntimeError, match=r"modelDeploymentMonitoringJobs: HTTP 400 REFUSED"):
        provider.create(_props())
    assert len(fake.requests) == 1


def test_a_failed_update_fails_with_the_operations_message(vertex) -> None:
    fake, provider = vertex
    fake.job = {"name": JOB, "state": "JOB_STATE_RUNNING"}
    fake.operation_error = {"code": 3, "message": "Feature tenure is not in the schema."}
    with pytest.raises(RuntimeError, match=r"failed \(code 3\): Feature tenure is not in"):
        provider.update(JOB, _recorded(), _props(drift_thresholds={"default": 0.2}))


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [("0.05", 0.05, 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, 0.2)],
    ids=["seconds", "a date gone by"],
)
def test_throttling_and_server_errors_are_retried_as_retry_after_asks(
    vertex, retry_after: str, least: float, most: float
) -> None:
    fake, provider = vertex
    fake.refuse = [(429, {"Retry-After": retry_after}), (503, {})]
    result = provider.create(_props())
    first, second, third = fake.calls("POST")
    assert least <= second.at - first.at < most
    assert third.body == first.body
    assert result.outs["job_name"] == JOB


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"endpoint": "4242"}, "endpoint", "projects/P/locations/R/endpoints/ID"),
        (
            {"kms_key_name": "projects/p/locations/us-east1/keyRings/k/cryptoKeys/c"},
            "kmsKeyName",
            "the key must be in the endpoint's region",
        ),
        ({"baseline_format": "parquet"}, "baselineFormat", "none of"),
        ({"baseline_format": "bigquery"}, "baselineUri", "bq:// URI"),
        ({"drift_thresholds": {"default": 0}}, "driftThresholds.default", "above 0"),
        (
            {"drift_thresholds": {"features": {"tenure": 1.5}}},
            "driftThresholds.features.tenure",
            "at most 1",
        ),
        ({"drift_thresholds": {"defualt": 0.3}}, "driftThresholds", "not ['defualt']"),
        ({"schedule_hours": 0}, "scheduleHours", "1 or more"),
        ({"sampling_percent": 150}, "samplingPercent", "at most 100"),
        (
            {"notification_emails": [], "notification_channels": []},
            "notificationEmails",
            "notificationChannels or both",
        ),
        ({"notification_channels": ["555"]}, "notificationChannels[0]", "notificationChannels/ID"),
        ({"deployed_model_ids": []}, "deployedModelIds", "leave it out"),
    ],
    ids=[
        "bare endpoint id",
        "key in another region",
        "unknown format",
        "bigquery format with a gs uri",
        "zero threshold",
        "threshold over 1",
        "misspelt threshold key",
        "no schedule",
        "over 100 percent",
        "nobody told",
        "bare channel id",
        "no models",
    ],
)
def test_bad_inputs_are_refused_naming_the_input(
    vertex, changes: dict[str, Any], path: str, reason: str
) -> None:
    fake, provider = vertex
    props = _props(**changes)
    failures = provider.check({}, props).failures
    assert [(f.property, reason in f.reason) for f in failures] == [(path, True)]
    with pytest.raises(ValueError, match=path.replace("[", r"\[")):
        provider.create(props)
    assert fake.requests == []


def test_the_provider_is_stored_by_reference_without_credentials() -> None:
    blob = base64.b64decode(serialize_provider(VertexMonitorProvider()))
    assert b"infra.gcp.model_monitor" in blob
    assert b"AuthorizedSession" not in blob
    assert VertexModelMonitor._resource_type_name == "dynamic/gcp:VertexModelMonitor"
