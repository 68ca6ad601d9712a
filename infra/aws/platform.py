"""Everything an AWS stack provisions, wired from the settings model."""

from __future__ import annotations

from typing import Any

from infra.aws.context import AwsAccount
from infra.aws.key import PlatformKey, PlatformKeyArgs
from infra.aws.lake import DataLake, DataLakeArgs
from infra.common import Baseline
from infra.settings import PlatformSettings


def build_aws(settings: PlatformSettings) -> dict[str, Any]:
    baseline = Baseline.from_settings(settings)
    account = AwsAccount.lookup(settings.region)
    key = PlatformKey(baseline.namer.name("key"), PlatformKeyArgs(baseline, account))
    lake = DataLake(
        baseline.namer.name("lake"),
        DataLakeArgs(
            baseline=baseline, account=account, lake=settings.lake, encryption=key.encryption
        ),
    )
    outputs: dict[str, Any] = {
        "keyArn": key.key.arn,
        "lakeBucketNames": lake.bucket_names,
        "lakeBucketArns": lake.bucket_arns,
    }
    if lake.logs is not None:
        outputs["lakeAccessLogBucket"] = lake.logs.bucket.bucket
    return outputs
