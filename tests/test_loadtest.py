"""`make loadtest`: real load runs against a model server on 127.0.0.1, the
figures by hand, and each cloud's URL and signature without a network.

Locust monkey-patches its process for gevent, so it never runs in this one:
the runs below start `tools.loadtest.run` as a process of its own, and
nothing here imports that module.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.credentials import Credentials
from google.auth.transport.requests import Request as GoogleRequest

from tools import pulumi_cli
from tools.loadtest import cli, signing, target
from tools.loadtest.options import LoadTestError
from tools.loadtest.stats import Sample, error_text, per_second, percentile, summarize

ROOT = Path(__file__).resolve().parent.parent
TEST_SIGNER = {"kind": "static", "headers": {"Authorization": "Bearer test-token"}}
SERVER_DELAY_S = 0.002
FAIL_EVERY = 10


# --- a model server ---------------------------------------------------------------


class ModelServer(ThreadingHTTPServer):
    """Answers POST /invocations with JSON, every FAIL_EVERY-th request with a 500,
    and keeps count of what it served."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ModelHandler)
        self.lock = threading.Lock()
        self.served = 0
        self.failed = 0
        self.authorizations: Counter[str] = Counter()
        self.content_types: Counter[str] = Counter()
        self.bodies: set[bytes] = set()
        self.handling_ms: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/invocations"


class ModelHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a model server behind a load balancer
    disable_nagle_algorithm = True  # headers and body leave at once: no delayed-ACK stalls
    server: ModelServer

    def do_POST(self) -> None:
        began = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.served += 1
            failing = self.server.served % FAIL_EVERY == 0
            self.server.failed += failing
            self.server.authorizations[self.headers.get("Authorization", "")] += 1
            self.server.content_types[self.headers.get("Content-Type", "")] += 1
            self.server.bodies.add(body)
        time.sleep(SERVER_DELAY_S)
        answer = json.dumps({"predictions": [0.42]}).encode()
        self.send_response(500 if failing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        with self.server.lock:
            self.server.handling_ms.append((time.perf_counter() - began) * 1000)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    server = ModelServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "churn.json"
    path.write_text(json.dumps({"instances": [{"tenure": 12, "plan": "pro"}]}))
    return path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def refused_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """`python -m tools.loadtest` against a closed port, started first and in the
    background so it overlaps the other run (the file stays near 5 s). It signs
    with SigV4 from fake static keys in the environment, as a real run would."""
    out = tmp_path_factory.mktemp("refused")
    payload = out / "payload.csv"
    payload.write_text("12,pro\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "not-a-secret",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [
        sys.executable, "-m", "tools.loadtest", "--stack", "aws-dev", "--endpoint", "churn",
        "--payload", str(payload), "--duration", "1", "--spawn-rate", "4",
        "--url", f"http://127.0.0.1:{_closed_port()}/invocations", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.out = out  # type: ignore[attr-defined]
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


# --- whole runs ------------------------------------------------------------------


def _figure(report: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)} \| (.+?) \|$", report, re.MULTILINE)
    assert match, f"no {label!r} row in report.md"
    return match.group(1)


def test_a_run_reports_what_the_server_served(
    refused_run: subprocess.Popen[str], model_server: ModelServer, payload: Path, tmp_path: Path
) -> None:
    began = time.perf_counter()
    status = cli.main(
        [
            "--stack", "aws-dev", "--endpoint", "churn", "--payload", str(payload),
            "--users", "4", "--spawn-rate", "4", "--duration", "1",
            "--url", model_server.url, "--out", str(tmp_path),
        ],
        signer=TEST_SIGNER,
    )  # fmt: skip
    wall_ms = (time.perf_counter() - began) * 1000
    assert status == 0
    directory = tmp_path / "aws-dev-churn"
    report = (directory / "report.md").read_text()

    served, failed = model_server.served, model_server.failed
    assert served > 50
    assert failed == served // FAIL_EVERY
    assert int(_figure(report, "Requests")) == served
    assert _figure(report, "Errors") == f"{failed} of {served}"
    assert _figure(report, "Error rate") == f"{100 * failed / served:.2f}%"
    assert "| HTTP 500 | " in report

    p50, p95, p99 = (
        float(_figure(report, f"Latency p{p}").removesuffix(" ms")) for p in (50, 95, 99)
    )
    # No request can be faster than the server's quickest answer, nor outlast the run.
    assert min(model_server.handling_ms) - 0.05 <= p50 <= p95 <= p99 <= wall_ms
    assert p50 >= SERVER_DELAY_S * 1000
    # The requests span most of the 1 s of load, and at most the whole call.
    rps = float(_figure(report, "Requests per second"))
    assert served / (wall_ms / 1000) - 0.05 <= rps <= served / 0.75
    assert f"`{model_server.url}`" in report
    assert "| Users | 4 (spawned at 4/s) |" in report

    rows = (directory / "requests.csv").read_text().splitlines()
    assert rows[0] == "start_s,latency_ms,status,error"
    assert len(rows) - 1 == served
    assert sum(1 for row in rows[1:] if row.split(",")[2] == "500") == failed
    seconds = (directory / "per-second.csv").read_text().splitlines()
    assert seconds[0] == "second,requests,errors,p50_ms,p95_ms"
    assert sum(int(row.split(",")[1]) for row in seconds[1:]) == served
    assert (directory / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The signer's header, the payload and its type reached the server on every request.
    assert model_server.authorizations == {"Bearer test-token": served}
    assert model_server.content_types == {"application/json": served}
    assert model_server.bodies == {payload.read_bytes()}


def test_a_run_with_no_successful_request_fails_with_a_clear_message(
    refused_run: subprocess.Popen[str],
) -> None:
    stdout, stderr = refused_run.communicate(timeout=30)
    assert refused_run.returncode == 1, stderr
    assert stdout == ""
    message = stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"aws-dev/churn: no request succeeded \(\d+ requests, most common error: "
        r"ConnectionRefusedError: \[Errno \d+\] Connection refused\); see .+/report\.md",
        message,
    ), message
    assert "Traceback" not in stderr
    directory = refused_run.out / "aws-dev-churn"  # type: ignore[attr-defined]
    report = (directory / "report.md").read_text()
    assert _figure(report, "Error rate") == "100.00%"
    assert (directory / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- options ---------------------------------------------------------------------

ARGS = ["--stack", "aws-dev", "--endpoint", "churn", "--url", "http://127.0.0.1:9/invocations"]


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("--users", "0", "USERS (--users): 0 is out of range (1 to 200)"),
        ("--users", "201", "USERS (--users): 201 is out of range (1 to 200)"),
        ("--users", "2.5", "USERS (--users): 2.5 is not a whole number (1 to 200)"),
        ("--users", "many", "USERS (--users): 'many' is not a number (1 to 200)"),
        ("--spawn-rate", "0", "SPAWN_RATE (--spawn-rate, users per second): 0 is out of range"),
        ("--duration", "3601", "DURATION (--duration, seconds): 3601 is out of range (1 to 3600)"),
        ("--duration", "0", "DURATION (--duration, seconds): 0 is out of range (1 to 3600)"),
    ],
)
def test_out_of_range_options_are_refused_in_one_line(
    flag: str, value: str, said: str, payload: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*ARGS, "--payload", str(payload), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(said)


def test_a_payload_is_required_to_exist_and_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*ARGS, "--payload", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("PAYLOAD (--payload): ")
    broken = tmp_path / "broken.json"
    broken.write_text("{'instances': ")
    assert cli.main([*ARGS, "--payload", str(broken)]) == 2
    assert f"{broken} is not valid JSON" in capsys.readouterr().err


def test_one_stack_and_a_configured_endpoint(
    payload: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--stack", "aws-dev", "--stack", "gcp-dev", "--payload", str(payload)]) == 2
    assert "needs exactly one stack" in capsys.readouterr().err
    assert cli.main(["--stack", "aws-dev", "--payload", str(payload)]) == 2
    assert capsys.readouterr().err.startswith("ENDPOINT (--endpoint): required")
    unknown = ["--stack", "aws-dev", "--endpoint", "fraud", "--payload", str(payload)]
    assert cli.main(unknown) == 2
    assert capsys.readouterr().err.startswith(
        "stacks/Pulumi.aws-dev.yaml: mlops:endpoints: no endpoint 'fraud' (endpoints: churn"
    )


# --- the stack's outputs -----------------------------------------------------------


def test_without_the_pulumi_cli_it_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, payload: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(target.shutil, "which", lambda _name: None)
    argv = ["--stack", "aws-dev", "--endpoint", "churn", "--payload", str(payload)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("aws-dev: reading the endpoint from the stack's outputs needs the Pulumi")
    assert "URL=<invocation URL>" in err


def test_outputs_come_from_the_cli_with_the_preview_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(target.shutil, "which", lambda _name: "/usr/bin/pulumi")
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    calls = []

    def run(command: list[str], **kwargs: object) -> SimpleNamespace:
        calls.append((command, kwargs))
        return SimpleNamespace(returncode=0, stdout='{"endpointNames": {"churn": "x"}}', stderr="")

    assert target.stack_outputs("aws-dev", run=run) == {"endpointNames": {"churn": "x"}}
    (command, kwargs), = calls  # fmt: skip
    assert command == ["pulumi", "stack", "output", "--json", "--stack", "aws-dev"]
    assert kwargs["cwd"] == pulumi_cli.ROOT
    assert kwargs["env"]["PULUMI_BACKEND_URL"] == pulumi_cli.LOCAL_BACKEND.as_uri()

    def failing(command: list[str], **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(
            returncode=255, stdout="", stderr="error: no stack named 'aws-dev'\n"
        )

    with pytest.raises(LoadTestError, match=r"failed: error: no stack named 'aws-dev'$"):
        target.stack_outputs("aws-dev", run=failing)


def test_an_undeployed_endpoint_is_named() -> None:
    with pytest.raises(
        LoadTestError, match=r"^aws-dev: the stack's outputs have no endpointNames\.churn"
    ):
        target.resolve("aws-dev", "churn", outputs=lambda _stack: {})


# --- each cloud's URL and signature ---------------------------------------------------


def _utc_days() -> set[str]:
    # Either side of a midnight the signing may straddle.
    now = datetime.datetime.now(datetime.UTC)
    return {(now + datetime.timedelta(seconds=s)).strftime("%Y%m%d") for s in (-5, 0, 5)}


def test_aws_sagemaker_runtime_url_and_sigv4() -> None:
    outputs = {"endpointNames": {"churn": "mlops-aws-dev-churn"}}
    found = target.resolve("aws-dev", "churn", outputs=lambda _stack: outputs)
    url = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/mlops-aws-dev-churn/invocations"
    assert found.url == url
    assert found.signer == {"kind": "aws-sigv4", "region": "eu-west-1"}
    forwarded = target.resolve("aws-dev", "churn", "http://localhost:8080", lambda _s: outputs)
    assert forwarded.url == "http://localhost:8080/endpoints/mlops-aws-dev-churn/invocations"

    signer = signing.SigV4Signer("eu-west-1", Credentials("AKID", "SECRET"))
    headers = signer.headers("POST", url, b'{"instances": []}', "application/json")
    credential = re.match(
        r"AWS4-HMAC-SHA256 Credential=AKID/(\d{8})/eu-west-1/sagemaker/aws4_request, "
        r"SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$",
        headers["Authorization"],
    )
    assert credential, headers["Authorization"]
    assert credential.group(1) in _utc_days()
    assert headers["X-Amz-Date"].startswith(credential.group(1))
    assert headers["Content-Type"] == "application/json"
    assert "X-Amz-Security-Token" not in headers
    session = signing.SigV4Signer("eu-west-1", Credentials("AKID", "SECRET", "SESSION"))
    assert session.headers("POST", url, b"", "text/csv")["X-Amz-Security-Token"] == "SESSION"


class FakeGoogleCredentials:
    def __init__(self) -> None:
        self.refreshed = 0
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None

    def refresh(self, request: object) -> None:
        assert isinstance(request, GoogleRequest)
        self.refreshed += 1
        self.token = f"ya29.token-{self.refreshed}"
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        self.expiry = now + datetime.timedelta(hours=1)  # naive UTC, as google-auth keeps it


def test_gcp_vertex_raw_predict_url_and_a_refreshed_access_token() -> None:
    endpoint = "projects/mlops-platform-dev/locations/europe-west4/endpoints/1234567890"
    outputs = {"endpointIds": {"churn": endpoint}}
    found = target.resolve("gcp-dev", "churn", outputs=lambda _stack: outputs)
    assert found.url == f"https://europe-west4-aiplatform.googleapis.com/v1/{endpoint}:rawPredict"
    assert found.signer == {"kind": "google", "region": "europe-west4"}
    # A Private Service Connect address keeps the path.
    psc = target.resolve("gcp-dev", "churn", "https://10.30.16.5", lambda _stack: outputs)
    assert psc.url == f"https://10.30.16.5/v1/{endpoint}:rawPredict"

    credentials = FakeGoogleCredentials()
    now = [time.time()]
    signer = signing.BearerSigner(signing.GoogleTokens(credentials), clock=lambda: now[0])
    assert signer.headers("POST", found.url, b"{}", "application/json") == {
        "Authorization": "Bearer ya29.token-1",
        "Content-Type": "application/json",
    }
    assert signer.headers("POST", found.url, b"{}", "application/json")["Authorization"] == (
        "Bearer ya29.token-1"
    )
    assert credentials.refreshed == 1
    now[0] += 3600 - signing.REFRESH_MARGIN_S + 1  # inside the margin before expiry
    assert signer.token() == "ya29.token-2"


class FakeAzureCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> SimpleNamespace:
        self.scopes.append(scopes)
        return SimpleNamespace(
            token=f"eyJ.entra-{len(self.scopes)}", expires_on=int(time.time()) + 3600
        )


def test_azure_scoring_uri_and_a_refreshed_entra_token() -> None:
    outputs = {"endpointNames": {"churn": "mlops-azure-dev-churn"}, "mlWorkspaceName": "ws"}
    found = target.resolve("azure-dev", "churn", outputs=lambda _stack: outputs)
    assert found.url == "https://mlops-azure-dev-churn.westeurope.inference.ml.azure.com/score"
    assert found.signer == {"kind": "azure", "region": "westeurope"}

    credential = FakeAzureCredential()
    now = [time.time()]
    signer = signing.BearerSigner(signing.AzureTokens(credential), clock=lambda: now[0])
    headers = signer.headers("POST", found.url, b"1,2", "text/csv")
    assert headers == {"Authorization": "Bearer eyJ.entra-1", "Content-Type": "text/csv"}
    assert signer.token() == "eyJ.entra-1"
    now[0] += 3600 - signing.REFRESH_MARGIN_S + 1
    assert signer.token() == "eyJ.entra-2"
    assert credential.scopes == [("https://ml.azure.com/.default",)] * 2


def test_a_url_override_with_a_path_needs_no_outputs() -> None:
    def no_outputs(_stack: str) -> dict[str, object]:
        raise AssertionError("outputs read")

    found = target.resolve("azure-dev", "churn", "http://127.0.0.1:8080/score", no_outputs)
    assert found.url == "http://127.0.0.1:8080/score"
    assert found.signer["kind"] == "azure"
    assert target.redacted("https://user:pw@host:8443/score?code=s3cret") == (
        "https://host:8443/score?<redacted>"
    )


# --- the figures, by hand --------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    hundred = [float(v) for v in range(100, 0, -1)]
    # ceil(0.50 * 100) = 50th, ceil(0.95 * 100) = 95th, ceil(0.99 * 100) = 99th smallest.
    assert (percentile(hundred, 50), percentile(hundred, 95), percentile(hundred, 99)) == (
        50.0,
        95.0,
        99.0,
    )
    ten = [30.0, 10.0, 100.0, 20.0, 90.0, 40.0, 80.0, 50.0, 70.0, 60.0]
    # ceil(5) = 5th: 50; ceil(9.5) = 10th: 100; ceil(9.9) = 10th: 100.
    assert (percentile(ten, 50), percentile(ten, 95), percentile(ten, 99)) == (50.0, 100.0, 100.0)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summary_of_fixed_samples() -> None:
    samples = [
        Sample(0.0, 100.0, 200),
        Sample(0.5, 200.0, 200),
        Sample(1.0, 300.0, 500, "HTTP 500"),
        Sample(1.5, 500.0, 0, "ReadTimeout"),
    ]
    summary = summarize(samples)
    assert summary.requests == 4
    assert summary.errors == 2
    assert summary.error_rate == 0.5
    # First start 0.0 s, last end 1.5 s + 0.5 s = 2.0 s: 4 requests / 2 s.
    assert summary.span_s == pytest.approx(2.0)
    assert summary.rps == pytest.approx(2.0)
    # Sorted 100, 200, 300, 500: p50 the 2nd, p95 and p99 the 4th.
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == (200.0, 500.0, 500.0)
    assert summary.error_kinds == (("HTTP 500", 1), ("ReadTimeout", 1))
    empty = summarize([])
    assert (empty.requests, empty.rps, empty.error_rate) == (0, 0.0, 0.0)


def test_per_second_keeps_empty_seconds() -> None:
    samples = [
        Sample(0.1, 10.0, 200),
        Sample(0.9, 30.0, 500, "HTTP 500"),
        Sample(2.5, 20.0, 200),
    ]
    first, gap, last = per_second(samples)
    assert (first.second, first.requests, first.errors, first.p50_ms, first.p95_ms) == (
        0,
        2,
        1,
        10.0,
        30.0,
    )
    assert (gap.second, gap.requests) == (1, 0)
    assert math.isnan(gap.p50_ms)
    assert (last.second, last.requests, last.p50_ms) == (2, 1, 20.0)


def test_errors_are_grouped_by_kind() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    assert error_text(0, refused) == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert error_text(503, RuntimeError("503 Server Error: for url: /x")) == "HTTP 503"
    assert error_text(200, None) == ""
