"""`mlops:gcp:PlatformKey`: the stack's customer-managed Cloud KMS key, rotated every 90 days.

Key rings and crypto keys cannot be deleted in GCP. Destroying a dev stack only
forgets the key ring and schedules the key's versions for destruction; both
are autonamed, so a new stack never collides with a forgotten one. In prod
both are protected and retained, since losing the key loses every byte it
encrypted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.context import labels

ROTATION_SECONDS = 90 * 24 * 3600
# Time to notice and undo a scheduled destruction, as the AWS key's deletion window.
DESTROY_SCHEDULED_SECONDS = 30 * 24 * 3600
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


@dataclass(frozen=True)
class PlatformKeyArgs:
    baseline: Baseline
    # Resources the key ring waits for (the Cloud KMS API).
    requires: Sequence[pulumi.Resource] = ()


class PlatformKey(pulumi.ComponentResource):
    """A symmetric software key in its own key ring, in the stack's region, rotating
    every 90 days, with a 30-day window before a destroyed version is gone. Nobody
    is granted its use here: each consumer grants its own service agent the
    encrypter/decrypter role on this key alone (`grant_key_use`). Protected and
    retained in prod."""

    def __init__(
        self, name: str, args: PlatformKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:PlatformKey", name, {}, opts)
        baseline = args.baseline
        self.key_ring = gcp.kms.KeyRing(
            f"{name}-ring",
            location=baseline.region,
            opts=baseline.stateful(self, depends_on=list(args.requires)),
        )
        self.key = gcp.kms.CryptoKey(
            name,
            key_ring=self.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{ROTATION_SECONDS}s",
            destroy_scheduled_duration=f"{DESTROY_SCHEDULED_SECONDS}s",
            version_template={
                "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION",
                "protection_level": "SOFTWARE",
            },
            labels=labels(baseline),
            # Was `<name>-key`: the alias keeps the key through the rename.
            opts=baseline.stateful(self, aliases=[pulumi.Alias(name=f"{name}-key")]),
        )
        self.encryption = EncryptionKey(id=self.key.id, resource=self.key)
        self.register_outputs({"keyId": self.key.id, "keyRing": self.key_ring.id})


def grant_key_use(
    owner: pulumi.ComponentResource,
    name: str,
    key: EncryptionKey,
    member: pulumi.Input[str],
    baseline: Baseline,
) -> gcp.kms.CryptoKeyIAMMember:
    """Let one service agent encrypt and decrypt with `key`, and nothing else.

    The grant is kept like the data it unlocks: a bucket retained in prod with its
    grant deleted could no longer be read or written."""
    return gcp.kms.CryptoKeyIAMMember(
        name,
        crypto_key_id=key.id,
        role=ENCRYPTER_DECRYPTER,
        member=member,
        opts=baseline.stateful(owner),
    )
