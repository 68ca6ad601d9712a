"""Pulumi entry point (Pulumi.yaml `main: infra/`). Thin: see infra/program.py."""

import sys
from pathlib import Path

# The engine runs this file by path: make `infra` importable as a package, and
# the policy pack's catalog, which the platform and its rules share.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "policies"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import run

run()
