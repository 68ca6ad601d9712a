"""The command line's values, checked: one line per refusal, naming the make
variable and the flag, the value and the bounds."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

USERS = (1, 200)
SPAWN_RATE = (0.1, 200.0)
DURATION = (1, 3600)
DEFAULT_USERS = 4
DEFAULT_SPAWN_RATE = 2.0
DEFAULT_DURATION = 60
# A SageMaker invocation gives up at 60 s, Azure ML's online endpoints at 180 s;
# a request still open after this is an error, and stopping waits this long for it.
REQUEST_TIMEOUT_S = 180.0

# Types a model server is commonly fed, by extension; others from `mimetypes`.
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonlines",
    ".jsonlines": "application/jsonlines",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".npy": "application/x-npy",
    ".parquet": "application/x-parquet",
}
OCTET_STREAM = "application/octet-stream"


class LoadTestError(Exception):
    """A refusal: one line for stderr and the exit status that goes with it."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def _number(raw: str | None, default: float, name: str, bounds: tuple[float, float]) -> float:
    if raw is None or raw == "":
        return default
    low, high = bounds
    try:
        value = float(raw)
    except ValueError:
        raise LoadTestError(f"{name}: {raw!r} is not a number ({low:g} to {high:g})") from None
    if not low <= value <= high:
        raise LoadTestError(f"{name}: {raw} is out of range ({low:g} to {high:g})")
    return value


def _whole(raw: str | None, default: int, name: str, bounds: tuple[int, int]) -> int:
    value = _number(raw, default, name, bounds)
    if value != int(value):
        raise LoadTestError(f"{name}: {raw} is not a whole number ({bounds[0]} to {bounds[1]})")
    return int(value)


def users(raw: str | None) -> int:
    return _whole(raw, DEFAULT_USERS, "USERS (--users)", USERS)


def spawn_rate(raw: str | None) -> float:
    return _number(
        raw, DEFAULT_SPAWN_RATE, "SPAWN_RATE (--spawn-rate, users per second)", SPAWN_RATE
    )


def duration(raw: str | None) -> int:
    return _whole(raw, DEFAULT_DURATION, "DURATION (--duration, seconds)", DURATION)


def content_type(path: Path, given: str | None) -> str:
    if given:
        if "/" not in given or any(c in given for c in "\r\n"):
            raise LoadTestError(f"CONTENT_TYPE (--content-type): {given!r} is not a media type")
        return given
    suffix = path.suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or OCTET_STREAM


def payload(raw: str | None, given_type: str | None) -> tuple[Path, str]:
    """The payload file and its content type; a `.json` file (or a JSON type) must parse."""
    if not raw:
        raise LoadTestError("PAYLOAD (--payload): required, the file each request sends")
    path = Path(raw)
    if not path.is_file():
        raise LoadTestError(f"PAYLOAD (--payload): {raw}: no such file")
    body = path.read_bytes()
    if not body:
        raise LoadTestError(f"PAYLOAD (--payload): {raw} is empty")
    kind = content_type(path, given_type)
    if kind.split(";")[0].strip() == "application/json":
        try:
            json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LoadTestError(f"PAYLOAD (--payload): {raw} is not valid JSON: {error}") from None
    return path, kind


@dataclass(frozen=True)
class RunConfig:
    """What the locust process needs, handed over as JSON on its stdin (no
    credentials: the process loads its own)."""

    url: str
    name: str
    label: str
    payload: str
    content_type: str
    users: int
    spawn_rate: float
    duration: int
    samples: str
    signer: dict[str, Any] = field(default_factory=dict)
    timeout: float = REQUEST_TIMEOUT_S

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls(**json.loads(text))
