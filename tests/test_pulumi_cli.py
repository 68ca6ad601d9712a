"""`make preview` / `make up` as far as they run without the CLI."""

from __future__ import annotations

import pytest

from tools import pulumi_cli


def test_preview_runs_the_policy_pack_with_the_environment_config() -> None:
    select, preview = pulumi_cli.commands("preview", "aws-prod", "prod")
    assert select == ["pulumi", "stack", "select", "--create", "aws-prod"]
    assert preview == [
        "pulumi",
        "preview",
        "--stack",
        "aws-prod",
        "--policy-pack",
        "policies",
        "--policy-pack-config",
        "policies/config/prod.json",
        "--diff",
    ]


def test_up_confirms_unless_told_not_to() -> None:
    assert "--yes" not in pulumi_cli.commands("up", "aws-dev", "dev")[1]
    assert pulumi_cli.commands("up", "aws-dev", "dev", yes=True)[1][-1] == "--yes"


def test_backend_defaults_to_a_local_file_backend() -> None:
    assert pulumi_cli.backend_url({}) == pulumi_cli.LOCAL_BACKEND.as_uri()
    assert pulumi_cli.backend_url({"PULUMI_BACKEND_URL": "s3://state"}) == "s3://state"


def test_without_the_cli_it_says_how_to_install(monkeypatch, capsys) -> None:
    monkeypatch.setattr(pulumi_cli.shutil, "which", lambda _name: None)
    assert pulumi_cli.main(["preview", "--stack", "aws-dev"]) == 127
    err = capsys.readouterr().err
    assert err.startswith("the Pulumi CLI is not installed: install it")
    assert "make plan` needs no CLI" in err


def test_up_needs_exactly_one_stack(capsys) -> None:
    assert pulumi_cli.main(["up"]) == 2
    assert "make up STACK=<name>" in capsys.readouterr().err


def test_bad_settings_stop_before_the_cli(monkeypatch, capsys) -> None:
    monkeypatch.setattr(pulumi_cli.shutil, "which", pytest.fail)
    assert pulumi_cli.main(["preview", "--stack", "missing"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("stacks/Pulumi.missing.yaml: no such stack file (stacks: aws-dev, ")
    )
