"""What the EDC runtime reads from the Connector's vault folder, derived from its storage
payload and its keys (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from connector_operator.edc.manifests import SIGNER_ALIAS, SIGNER_KEY, VERIFIER_ALIAS, VERIFIER_KEY
from connector_operator.models import StorageType

S3_WRITE_ALIAS = "s3-write-credentials"


def azure_key_alias(account_name: str) -> str:
    """Where the runtime looks up an Azure account's key: `<account_name>-key1`."""
    return f"{account_name}-key1"


def entries(
    storage_type: StorageType, credentials: Mapping[str, str], keys: Mapping[str, str]
) -> dict[str, str]:
    """Alias -> secret value, as the runtime expects them.

    - the token signer's key pair (PEM), named by the data plane's
      EDC_TRANSFER_PROXY_TOKEN_{SIGNER_PRIVATEKEY,VERIFIER_PUBLICKEY}_ALIAS;
    - AmazonS3: the write pair as {"accessKeyId", "secretAccessKey"} under
      `s3-write-credentials`, the `keyName` of a DataAddress that writes (the read pair is the
      data plane's AWS credentials, from its environment);
    - AzureStorage: each account's key under `<account_name>-key1` (read and write; when both
      name one account, the write key is kept).
    """
    result = {SIGNER_ALIAS: keys[SIGNER_KEY], VERIFIER_ALIAS: keys[VERIFIER_KEY]}
    if storage_type is StorageType.AMAZON_S3:
        pair = {
            "accessKeyId": credentials["username_write"],
            "secretAccessKey": credentials["password_write"],
        }
        result[S3_WRITE_ALIAS] = json.dumps(pair, sort_keys=True)
    elif storage_type is StorageType.AZURE_STORAGE:
        for side in ("read", "write"):
            alias = azure_key_alias(credentials[f"account_name_{side}"])
            result[alias] = credentials[f"account_key_{side}"]
    return result
