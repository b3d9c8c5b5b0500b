"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_iotda import __version__

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "login": "Access Key (AK)",
        "password": "Secret Key (SK)",
        "host": "Endpoint (optional)",
    },
    "placeholders": {
        "login": "your Access Key ID",
        "password": "your Secret Access Key",
        "host": "leave empty to use https://iotda-mgmt.{region}.myhuaweicloud.com",
    },
}

CONN_FIELDS: dict[str, Any] = {
    "region": {
        "label": "Region",
        "description": "Huawei Cloud region of the IoTDA instance, e.g. cn-north-4.",
        "schema": {"type": ["string", "null"], "pattern": "^[a-z]{2,}(-[a-z0-9]+)+$"},
    },
    "project_id": {
        "label": "Project ID",
        "description": "Project ID of that region (My Credentials > API Credentials).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    },
    "endpoint": {
        "label": "Endpoint URL",
        "description": "Full URL overriding the regional endpoint, e.g. http://127.0.0.1:8787.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "instance_id": {
        "label": "Default instance ID",
        "description": "Used when an operator or sensor names no instance.",
        "schema": {"type": ["string", "null"], "pattern": "^[a-f0-9-]{1,36}$"},
    },
    "security_token": {
        "label": "Security token",
        "description": "Only for temporary AK/SK; sent as X-Security-Token.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "auth": {
        "label": "Signing",
        "description": "aksk (default), derived (V11) or auto (derived for non-regional hosts).",
        "schema": {"type": "string", "enum": ["aksk", "derived", "auto"], "default": "aksk"},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Read timeout of each request.",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "default": 30},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turning it off logs a warning every time.",
        "schema": {"type": "boolean", "default": True},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries on 429, 5xx, timeouts and dropped connections.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 10, "default": 3},
    },
    "credentials": {
        "label": "Credentials source",
        "description": "connection (AK/SK above, default), env, profile, ecs_metadata, "
        "pod_identity, oidc or auto (Huawei SDK's chain); other than connection, AK/SK may "
        "be empty.",
        "schema": {
            "type": "string",
            "enum": [
                "connection",
                "env",
                "profile",
                "ecs_metadata",
                "pod_identity",
                "oidc",
                "auto",
            ],
            "default": "connection",
        },
    },
    "metadata_endpoint": {
        "label": "ECS metadata endpoint",
        "description": "Overrides http://169.254.169.254 (credentials=ecs_metadata).",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "sts_endpoint": {
        "label": "STS endpoint",
        "description": "Overrides HUAWEICLOUD_SDK_STS_ENDPOINT (credentials=oidc).",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "pod_identity_endpoint": {
        "label": "Pod identity URI",
        "description": "Overrides HC_CONTAINER_CREDENTIALS_FULL_URI (credentials=pod_identity).",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "credentials_file": {
        "label": "Credentials file",
        "description": "Overrides HUAWEICLOUD_SDK_CREDENTIALS_FILE / ~/.huaweicloud/credentials.",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider, its hook, sensor, trigger, operator and connection form."""
    return {
        "package-name": "airflow-provider-iotda",
        "name": "Huawei Cloud IoTDA",
        "description": "Hook, sensor, trigger and operator for Huawei Cloud IoTDA instance tasks.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Huawei Cloud IoTDA",
                "external-doc-url": "https://support.huaweicloud.com/intl/en-us/api-iothub/iot_10_00.html",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Huawei Cloud IoTDA",
                "python-modules": ["airflow_provider_iotda.hooks.iotda"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Huawei Cloud IoTDA",
                "python-modules": ["airflow_provider_iotda.sensors.iotda"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Huawei Cloud IoTDA",
                "python-modules": ["airflow_provider_iotda.triggers.iotda"],
            }
        ],
        "operators": [
            {
                "integration-name": "Huawei Cloud IoTDA",
                "python-modules": [
                    "airflow_provider_iotda.operators.iotda",
                    "airflow_provider_iotda.operators.instance",
                    "airflow_provider_iotda.operators.report",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "huaweicloud_iotda",
                "hook-class-name": "airflow_provider_iotda.hooks.iotda.IoTDAHook",
                "hook-name": "Huawei Cloud IoTDA",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
