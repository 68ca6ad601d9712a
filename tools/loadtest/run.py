"""The locust process: `python -m tools.loadtest.run < config.json`.

Importing locust monkey-patches the process for gevent, so this module runs
only as its own process, started by `tools.loadtest.cli`; nothing else imports
it. It runs locust headless as a library (no web UI, no locustfile or
locust.conf lookup), every user sending the payload back to back (pausing
0.1 s after a request that got no response at all), and writes
one row per request to the samples file as locust reports it through its
`request` event. Exit status: 0 the load ran, 2 it could not start (no
credentials, a signer that fails).
"""

from __future__ import annotations

import csv
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
from locust import HttpUser, constant, task
from locust.env import Environment

from tools.loadtest import signing
from tools.loadtest.options import RunConfig
from tools.loadtest.stats import COLUMNS, Sample, error_text

# How long a user waits after a request that got no response at all.
NO_RESPONSE_PAUSE_S = 0.1


class Recorder:
    """Appends each request locust reports to the samples file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(COLUMNS)
        self.origin = time.time()

    def on_request(
        self,
        response_time: float,
        response: Any = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_kwargs: Any,
    ) -> None:
        status = int(getattr(response, "status_code", 0) or 0)
        started = start_time if start_time is not None else time.time() - response_time / 1000
        self.add(
            Sample(started - self.origin, response_time, status, error_text(status, exception))
        )

    def add(self, sample: Sample) -> None:
        self._writer.writerow(sample.row())

    def close(self) -> None:
        self._handle.close()


def user_class(config: RunConfig, signer: signing.Signer, recorder: Recorder) -> type[HttpUser]:
    body = Path(config.payload).read_bytes()

    class EndpointUser(HttpUser):
        host = config.url
        wait_time = constant(0)

        @task
        def invoke(self) -> None:
            started = time.time()
            try:
                headers = signer.headers("POST", config.url, body, config.content_type)
            except Exception as error:  # a token refresh that fails is this request's error
                took_ms = (time.time() - started) * 1000
                kind = f"signing: {type(error).__name__}"
                recorder.add(Sample(started - recorder.origin, took_ms, 0, kind))
                gevent.sleep(1)
                return
            response = self.client.post(
                config.url, data=body, headers=headers, name=config.name, timeout=config.timeout
            )
            if not response.status_code:
                # No response at all (refused, reset): pause rather than spin on a dead address.
                gevent.sleep(NO_RESPONSE_PAUSE_S)

    return EndpointUser


def run(config: RunConfig) -> int:
    # A credential chain that fails says why in its exception, which is reported
    # in one line below; its log lines would repeat it at length.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    try:
        signer = signing.from_spec(config.signer)
        # Credentials load here, before any user starts: a missing login is one line.
        signer.headers("POST", config.url, b"", config.content_type)
    except Exception as error:
        print(
            f"{config.label}: cannot sign requests with {signing.describe(config.signer)}: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            file=sys.stderr,
        )
        return 2
    recorder = Recorder(Path(config.samples))
    # Stopping waits for requests in flight, so every request sent is recorded.
    env = Environment(
        user_classes=[user_class(config, signer, recorder)],
        stop_timeout=config.timeout + 5,
    )
    env.events.request.add_listener(recorder.on_request)
    runner = env.create_local_runner()
    # Ctrl-C ends the load early, as the duration would: users stop, rows are kept.
    interrupted = gevent.event.Event()
    gevent.signal_handler(signal.SIGINT, interrupted.set)
    try:
        recorder.origin = time.time()
        runner.start(config.users, spawn_rate=config.spawn_rate)
        interrupted.wait(timeout=config.duration)
    finally:
        runner.quit()
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(RunConfig.from_json(sys.stdin.read())))
