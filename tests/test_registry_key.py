"""RegistryKeyRotation's provider against a small fake of Azure Resource Manager,
served on 127.0.0.1 by the test itself: the requests it sends, the operation it
waits for, and where it stops."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pytest
from fake_arm import TOKEN, ArmHandler, serve
from fake_arm import FakeArm as BaseFakeArm
from fake_arm import local as local_provider
from pulumi.dynamic.dynamic import serialize_provider

from infra.azure.registry_key import RegistryKeyProvider

REGISTRY_ID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r"
BOOTSTRAP_KEY = "https://boot.vault.azure.net/keys/mlops-acr-boot-g2"
PLATFORM_KEY = "https://kv.vault.azure.net/keys/mlops-cmk-g2"
NEXT_KEY = "https://kv.vault.azure.net/keys/mlops-cmk-g3"


class FakeArm(BaseFakeArm):
    """One registry and its asynchronous updates, as ARM serves them."""

    def __init__(self) -> None:
        super().__init__()
        self.registry: dict[str, Any] = {
            "id": REGISTRY_ID,
            "identity": {
                "type": "SystemAssigned, UserAssigned",
                "principalId": "p",
                "userAssignedIdentities": {
                    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
                    "userAssignedIdentities/boot": {"clientId": "uai", "principalId": "q"}
                },
            },
            "properties": {
                "encryption": {
                    "status": "enabled",
                    "keyVaultProperties": {"keyIdentifier": BOOTSTRAP_KEY, "identity": "uai"},
                }
            },
        }
        self.pending: dict[str, Any] | None = None
        # How each poll of the operation answers, in order; the last one repeats.
        self.operation = ["InProgress", "Succeeded"]
        self.polls = 0
        # Statuses the registry's GET answers first, in order, before serving it.
        self.refuse: list[int] = []
        # How the PATCH names its operation: "async" (Azure-AsyncOperation, with
        # a status body) or "location" (Location, 202 until done).
        self.style = "async"
        # How the registry reports its own identity once the key moved to it.
        self.system_reads_as = "system"
        # How many registry GETs drop the connection without an answer first.
        self.drop = 0
        # A registry GET answered with a page that is not JSON.
        self.html = False
        # Once the operation has been polled once, every poll answers this status.
        self.operation_error: int | None = None
        # Whether the update, though it succeeds, leaves the registry as it was.
        self.ignore_update = False


def _apply(arm: FakeArm) -> None:
    """The update lands, the registry's own identity reported as ARM reports it."""
    if arm.pending is None or arm.ignore_update:
        return
    arm.pending["keyVaultProperties"]["identity"] = arm.system_reads_as
    arm.registry["properties"]["encryption"] = arm.pending
    arm.pending = None


class Handler(ArmHandler):
    arm: FakeArm

    def do_GET(self) -> None:  # noqa: N802 (http.server dispatches by this name)
        arm = self.arm
        self.record()
        if self.path.startswith("/operations/") and arm.operation_error and arm.polls:
            arm.polls += 1
            self.reply(arm.operation_error, {"error": {"code": "ServerBusy"}})
        elif self.path.startswith("/operations/"):
            status = arm.operation[min(arm.polls, len(arm.operation) - 1)]
            arm.polls += 1
            if status == "Succeeded":
                _apply(arm)
            body: dict[str, Any] = {"status": status}
            if status == "Failed":
                body["error"] = {"code": "KeyVaultAccessForbidden"}
            self.reply(200, body, {"Retry-After": "0"})
        elif self.path.startswith("/locations/"):
            done = arm.operation[min(arm.polls, len(arm.operation) - 1)] == "Succeeded"
            arm.polls += 1
            if done:
                _apply(arm)
            self.reply(200 if done else 202, arm.registry if done else {}, {"Retry-After": "0"})
        elif arm.drop:
            arm.drop -= 1
            self.close_connection = True
        elif arm.html:
            payload = b"<html>gateway</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif arm.refuse:
            code = arm.refuse.pop(0)
            self.reply(code, {"error": {"code": "AuthorizationFailed"}}, {"Retry-After": "0"})
        else:
            self.reply(200, arm.registry)

    def do_PATCH(self) -> None:  # noqa: N802 (http.server dispatches by this name)
        body = self.record() or {}
        self.arm.pending = copy.deepcopy(body["properties"]["encryption"])
        if self.arm.style == "location":
            self.reply(202, {}, {"Location": f"{self.host}/locations/1", "Retry-After": "0"})
            return
        self.reply(
            201,
            self.arm.registry,
            {"Azure-AsyncOperation": f"{self.host}/operations/1", "Retry-After": "0"},
        )


@pytest.fixture
def arm() -> Iterator[tuple[FakeArm, RegistryKeyProvider]]:
    fake = FakeArm()
    with serve(fake, Handler) as url:
        yield fake, local_provider(RegistryKeyProvider, url)


def _methods(fake: FakeArm) -> list[str]:
    return [method for method, *_ in fake.requests]


def test_create_moves_the_registry_to_the_platform_key_through_its_own_identity(arm) -> None:
    fake, provider = arm
    result = provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert result.id == f"{REGISTRY_ID}/encryption"
    assert fake.registry["properties"]["encryption"] == {
        "status": "enabled",
        "keyVaultProperties": {"keyIdentifier": PLATFORM_KEY, "identity": "system"},
    }
    # Read, change, wait for the operation (polled until it succeeded), read back.
    assert _methods(fake) == ["GET", "PATCH", "GET", "GET", "GET"]
    patch = fake.requests[1]
    assert patch[1] == f"{REGISTRY_ID}?api-version=2023-07-01"
    assert patch[2] == {
        "properties": {
            "encryption": {
                "status": "enabled",
                "keyVaultProperties": {"keyIdentifier": PLATFORM_KEY, "identity": "system"},
            }
        }
    }
    assert {auth for *_, auth in fake.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("identity", "requests"),
    [("system", ["GET"]), ("UAI", ["GET", "PATCH", "GET", "GET", "GET"])],
    ids=["through its own identity: left alone", "through a user-assigned one: moved"],
)
def test_a_registry_on_the_key_is_moved_only_off_a_user_assigned_identity(
    arm, identity: str, requests: list[str]
) -> None:
    fake, provider = arm
    fake.registry["properties"]["encryption"]["keyVaultProperties"] = {
        "keyIdentifier": PLATFORM_KEY,
        "identity": identity,
    }
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert _methods(fake) == requests


def test_the_own_identity_reported_by_client_id_counts_as_on_the_key(arm) -> None:
    fake, provider = arm
    fake.system_reads_as = "0b9d4f6e-6c1c-4a8e-9f55-3f3d2a1c7e21"
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert _methods(fake) == ["GET", "PATCH", "GET", "GET", "GET"]
    # The next run finds nothing to do.
    fake.requests.clear()
    provider.update("id", {}, {"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert _methods(fake) == ["GET"]


def test_a_new_key_generation_is_followed_and_only_a_new_registry_replaces(arm) -> None:
    fake, provider = arm
    old = {"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY}
    new = {**old, "keyIdentifier": NEXT_KEY}
    diff = provider.diff("id", old, new)
    assert (diff.changes, diff.replaces) == (True, [])
    moved = provider.diff("id", old, {**old, "registryId": REGISTRY_ID + "2"})
    assert moved.replaces == ["registryId"]
    assert provider.diff("id", old, dict(old)).changes is False
    provider.update("id", old, new)
    assert fake.registry["properties"]["encryption"]["keyVaultProperties"] == {
        "keyIdentifier": NEXT_KEY,
        "identity": "system",
    }


def test_a_registry_without_its_own_identity_is_refused_before_any_change(arm) -> None:
    fake, provider = arm
    fake.registry["identity"] = {"type": "UserAssigned"}
    with pytest.raises(RuntimeError, match="no system-assigned identity"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert "PATCH" not in _methods(fake)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"operation": ["InProgress", "Failed"]},
            r"ARM operation failed: .*KeyVaultAccessForbidden",
        ),
        ({"ignore_update": True}, r"still encrypts with .*mlops-acr-boot-g2"),
        ({"html": True}, r"GET .*: HTTP 200: not JSON: <html>gateway"),
    ],
    ids=["operation failed", "update did not land", "reply not JSON"],
)
def test_a_fault_fails_the_deployment_naming_it(arm, fault: dict[str, Any], message: str) -> None:
    fake, provider = arm
    for name, value in fault.items():
        setattr(fake, name, value)
    with pytest.raises(RuntimeError, match=message):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})


def test_an_operation_that_never_ends_times_out(arm) -> None:
    fake, provider = arm
    fake.operation = ["InProgress"]
    provider.timeout_seconds = 0.3
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"still inprogress after 0\.3 s"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert time.monotonic() - started < 3
    assert fake.polls >= 2


def test_an_operation_named_by_location_is_polled_until_it_stops_answering_202(arm) -> None:
    fake, provider = arm
    fake.style = "location"
    fake.operation = ["InProgress", "InProgress", "Succeeded"]
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert fake.polls == 3
    assert fake.registry["properties"]["encryption"]["keyVaultProperties"] == {
        "keyIdentifier": PLATFORM_KEY,
        "identity": "system",
    }
    assert [path for _m, path, *_ in fake.requests].count("/locations/1") == 3


def test_header_names_are_matched_whatever_their_case(arm) -> None:
    fake, provider = arm
    fake.lowercase_headers = True
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert fake.polls == 2
    assert fake.registry["properties"]["encryption"]["keyVaultProperties"]["identity"] == "system"


def test_throttling_and_a_grant_still_propagating_are_retried(arm) -> None:
    fake, provider = arm
    fake.refuse = [429, 503, 403]
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert _methods(fake)[:4] == ["GET", "GET", "GET", "GET"]
    assert fake.registry["properties"]["encryption"]["keyVaultProperties"] == {
        "keyIdentifier": PLATFORM_KEY,
        "identity": "system",
    }


def test_a_refusal_that_outlasts_role_propagation_names_the_status(arm) -> None:
    fake, provider = arm
    fake.refuse = [403] * 10_000
    provider.grant_seconds = 0.2
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"GET .*: HTTP 403: .*AuthorizationFailed"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert time.monotonic() - started < 3
    assert "PATCH" not in _methods(fake)


def test_a_bad_request_is_not_retried(arm) -> None:
    fake, provider = arm
    fake.refuse = [400, 400]
    with pytest.raises(RuntimeError, match=r"GET .*: HTTP 400"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert _methods(fake) == ["GET"]


def test_deleting_changes_nothing(arm) -> None:
    fake, provider = arm
    provider.delete("id", {"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert fake.requests == []


def test_the_serialized_provider_loads_in_a_process_started_elsewhere(tmp_path: Path) -> None:
    """Pulumi stores the provider by reference and runs it in its own process;
    `make install` puts the repository on the venv's path so that works anywhere."""
    blob = serialize_provider(RegistryKeyProvider())
    assert b"infra.azure.registry_key" in base64.b64decode(blob)
    assert dill.loads(base64.b64decode(blob)).api_version == "2023-07-01"
    script = (
        "import base64, sys, dill; "
        "p = dill.loads(base64.b64decode(sys.argv[1])); "
        "print(type(p).__name__, p.endpoint)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, blob],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "RegistryKeyProvider https://management.azure.com"


def test_a_dropped_connection_is_retried(arm) -> None:
    fake, provider = arm
    fake.drop = 2
    provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    assert fake.drop == 0
    assert fake.registry["properties"]["encryption"]["keyVaultProperties"]["identity"] == "system"


def test_polling_that_meets_server_errors_stops_at_the_operations_deadline(arm) -> None:
    fake, provider = arm
    fake.operation = ["InProgress"]
    fake.operation_error = 503
    provider.timeout_seconds = 0.5
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"HTTP 503"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    # One deadline for the whole wait, not a fresh one per poll.
    assert time.monotonic() - started < 0.5 + 0.4


def test_an_immediate_retry_after_is_not_a_tight_loop(arm) -> None:
    fake, provider = arm
    fake.refuse = [429] * 10_000
    provider.timeout_seconds = 0.5
    provider.min_retry_seconds = 0.1
    with pytest.raises(RuntimeError, match=r"HTTP 429"):
        provider.create({"registryId": REGISTRY_ID, "keyIdentifier": PLATFORM_KEY})
    # Retry-After: 0 on every reply, yet at most one request per 0.1 s.
    assert len(fake.requests) <= 7
