"""`make loadtest`: a load test of one deployed model endpoint, with locust.

    python -m tools.loadtest --stack NAME --endpoint NAME --payload FILE
        [--users 4] [--spawn-rate 2] [--duration 60] [--url URL] [--content-type TYPE]

The endpoint comes from the stack's outputs (`pulumi stack output --json`, the
backend chosen as `make preview` chooses it), the cloud and region from the
stack file. Each request is signed the cloud's way: SigV4 on AWS, a Google
access token on GCP, an Entra token on Azure.

- `options.py`: the command line's values, checked, and what the locust process gets.
- `target.py`: the stack file and outputs to an invocation URL and a signer.
- `signing.py`: the signers; credentials load only in the locust process.
- `run.py`: the locust process (gevent monkey-patches it, so it is never imported
  by the command or the tests), which records every request it makes.
- `stats.py`: the figures, computed from those records.
- `report.py`: report.md, per-second.csv and latency.png.
- `cli.py`: the command.
"""
