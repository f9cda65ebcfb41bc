"""Secrets Manager reads for the processes that cannot have secrets injected (Lambda)."""

from __future__ import annotations

import json
from typing import Any

from services.common.config import ConfigError


def secret_json(arn: str, region: str) -> dict[str, Any]:
    """The JSON object stored in a secret; a ConfigError when it cannot be read or parsed.

    boto3 finds credentials and endpoint the usual way (the function's role; AWS_ENDPOINT_URL_*).
    """
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise ConfigError(
            "reading DATABASE_SECRET_ARN needs boto3: install the service's extra"
        ) from exc
    client = boto3.client("secretsmanager", region_name=region)
    try:
        value = client.get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise ConfigError(f"cannot read secret {arn}: {exc}") from exc
    try:
        data = json.loads(value)
    except ValueError:
        raise ConfigError(f"secret {arn} does not hold a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"secret {arn} does not hold a JSON object")
    return data
