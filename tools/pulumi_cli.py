"""`make preview` / `make up`: the real Pulumi CLI, per stack, with the policy pack.

    python -m tools.pulumi_cli preview [--stack NAME ...]   (default: every stack)
    python -m tools.pulumi_cli up --stack NAME [--yes]

State goes to PULUMI_BACKEND_URL, or to a local file backend in .pulumi-state/
when it is unset. Settings are validated first, exactly as `make plan` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "policies")]

from infra.settings import SettingsError, load  # noqa: E402
from tools import stackfiles  # noqa: E402

LOCAL_BACKEND = ROOT / ".pulumi-state"
INSTALL_HINT = (
    "the Pulumi CLI is not installed: install it (https://www.pulumi.com/docs/install/, "
    "e.g. `curl -fsSL https://get.pulumi.com | sh` or `brew install pulumi/tap/pulumi`), "
    "then run this again; `make plan` needs no CLI"
)


def backend_url(env: dict[str, str]) -> str:
    return env.get("PULUMI_BACKEND_URL") or LOCAL_BACKEND.as_uri()


def commands(action: str, stack: str, environment: str, yes: bool = False) -> list[list[str]]:
    """The CLI calls for one stack: select (creating it on first use), then act."""
    policy = [
        "--policy-pack",
        "policies",
        "--policy-pack-config",
        f"policies/config/{environment}.json",
    ]
    act = ["pulumi", action, "--stack", stack, *policy]
    if action == "preview":
        act.append("--diff")
    if action == "up" and yes:
        act.append("--yes")
    return [["pulumi", "stack", "select", "--create", stack], act]


def _environment(stack: str) -> str:
    values = stackfiles.as_engine_strings(stackfiles.stack_values(stack))
    return load(stack, values).environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["preview", "up"])
    parser.add_argument("--stack", action="append", default=[])
    parser.add_argument("--yes", action="store_true", help="up without the confirmation prompt")
    args = parser.parse_args(argv)
    if args.action == "up" and len(args.stack) != 1:
        print("make up needs exactly one stack: make up STACK=<name>", file=sys.stderr)
        return 2
    stacks = [stackfiles.stack_name(s) for s in args.stack] or stackfiles.stack_names()
    try:
        environments = {stack: _environment(stack) for stack in stacks}
    except (SettingsError, FileNotFoundError) as error:
        print(str(error), file=sys.stderr)
        return 2
    if shutil.which("pulumi") is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 127
    env = dict(os.environ)
    env["PULUMI_BACKEND_URL"] = backend_url(env)
    if env["PULUMI_BACKEND_URL"] == LOCAL_BACKEND.as_uri():
        LOCAL_BACKEND.mkdir(exist_ok=True)
    for stack in stacks:
        for command in commands(args.action, stack, environments[stack], args.yes):
            status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
            if status != 0:
                print(f"{stack}: `{' '.join(command)}` failed ({status})", file=sys.stderr)
                return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
