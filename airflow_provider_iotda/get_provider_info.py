"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_iotda import __version__
from airflow_provider_iotda.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_SIGNING,
    DEFAULT_TIMEOUT,
    MAX_RETRIES_LIMIT,
    SIGNING_MODES,
)

# What Airflow's connection form (3.2+, the React UI) enforces of a ``conn-fields`` schema, read
# from its code (``airflow/ui``): a type without "null" makes the field required (Save stays
# disabled while it is empty); ``enum`` makes a drop-down (``values_display`` labels it);
# ``minimum``/``maximum`` bound the number box (clamped when it loses focus); ``maxLength`` caps
# what can be typed; ``examples`` become suggestions.  It ignores ``pattern`` (kept here for
# other tools) and, in effect, ``minLength``: whatever it cannot check, the Test button's
# message names first (field, value, allowed form), from ``config.py``'s checks.

#: Standard fields: login/password are the AK/SK; the endpoint has one home, extra ``endpoint``
#: (the host field is hidden, still read for old connections that set it, see the README).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "host"],
    "relabeling": {
        "login": "Access Key (AK)",
        "password": "Secret Key (SK)",
    },
    "placeholders": {
        "login": "your Access Key ID",
        "password": "your Secret Access Key",
    },
}

#: Regions seen in Huawei's SDK for IoTDA (suggestions only: any region name is accepted).
KNOWN_REGIONS = (
    "cn-north-4",
    "cn-south-1",
    "cn-south-4",
    "cn-east-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "af-south-1",
    "me-east-1",
    "la-south-2",
    "ru-moscow-1",
)

CONN_FIELDS: dict[str, Any] = {
    "region": {
        "label": "Region",
        "description": "Huawei Cloud region of the IoTDA instance, e.g. cn-north-4 "
        "(the endpoint becomes https://iotda-mgmt.{region}.myhuaweicloud.com).",
        "schema": {
            "type": ["string", "null"],
            "pattern": "^[a-z]{2,}(-[a-z0-9]+)+$",
            "examples": list(KNOWN_REGIONS),
        },
    },
    "project_id": {
        "label": "Project ID",
        "description": "Project ID of that region (My Credentials > API Credentials).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "maxLength": 64},
    },
    "endpoint": {
        "label": "Endpoint URL",
        "description": "Only to override the region's endpoint: a full URL such as "
        "http://127.0.0.1:8787 (the simulator) or a private endpoint.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "instance_id": {
        "label": "Default instance ID",
        "description": "Used when an operator or sensor names no instance "
        "(up to 36 of a-f, 0-9 and -).",
        "schema": {"type": ["string", "null"], "pattern": "^[a-f0-9-]{1,36}$", "maxLength": 36},
    },
    "security_token": {
        "label": "Security token",
        "description": "Only for temporary AK/SK; sent as X-Security-Token.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "signing": {
        "label": "Signing",
        "description": "How requests are signed; automatic uses derived (V11) signing for hosts "
        "outside Huawei's regional pattern, as Huawei's SDK does.",
        "schema": {
            "type": "string",
            "enum": list(SIGNING_MODES),
            "default": DEFAULT_SIGNING,
            "values_display": {
                "standard": "AK/SK (SDK-HMAC-SHA256)",
                "derived": "Derived AK/SK (V11-HMAC-SHA256)",
                "automatic": "Automatic (by endpoint host)",
            },
        },
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Read timeout of each request.",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "default": DEFAULT_TIMEOUT},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turning it off logs a warning every time.",
        "schema": {"type": "boolean", "default": True},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries on 429, 5xx, timeouts and dropped connections.",
        "schema": {
            "type": ["integer", "null"],
            "minimum": 0,
            "maximum": MAX_RETRIES_LIMIT,
            "default": DEFAULT_MAX_RETRIES,
        },
    },
    "credentials": {
        "label": "Credentials source",
        "description": "connection (AK/SK above, default), environment (env), profile, "
        "ecs_metadata, pod_identity, oidc_federation (oidc) or automatic (auto: Huawei SDK's "
        "chain); other than connection, AK/SK may be empty.",
        "schema": {
            "type": "string",
            "enum": [
                "connection",
                "environment",
                "profile",
                "ecs_metadata",
                "pod_identity",
                "oidc_federation",
                "automatic",
            ],
            "default": "connection",
            "values_display": {
                "connection": "This connection's AK/SK",
                "environment": "Environment (HUAWEICLOUD_SDK_AK/SK)",
                "profile": "Profile file (~/.huaweicloud/credentials)",
                "ecs_metadata": "ECS agency (metadata service)",
                "pod_identity": "CCE pod identity",
                "oidc_federation": "OIDC federation (STS)",
                "automatic": "Automatic (the SDK's chain)",
            },
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


def hook_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` in the shape a hook's ``get_ui_field_behaviour`` returns (Airflow
    3.1 reads that: snake_case keys, not the provider info's kebab-case)."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


def hook_form_widgets() -> dict[str, Any]:
    """``CONN_FIELDS`` as wtforms fields, for Airflow 3.1's form (3.2+ reads ``conn-fields``).

    Airflow 3.1's api-server stands in mock classes for wtforms and Flask-AppBuilder when they
    are not installed; it knows string, integer, password and boolean fields, an optional
    validator and ``any_of`` (a drop-down), nothing of lengths or bounds.
    """
    # Optional, untyped packages (mocked by the api-server when absent).
    from flask_appbuilder.fieldwidgets import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        BS3PasswordFieldWidget,
        BS3TextFieldWidget,
    )
    from flask_babel import lazy_gettext  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from wtforms import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        BooleanField,
        IntegerField,
        PasswordField,
        StringField,
    )
    from wtforms.validators import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        Optional,
        any_of,
    )

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        kwargs: dict[str, Any] = {
            "description": spec["description"],
            "default": schema.get("default"),
            "validators": [Optional()],
        }
        label = lazy_gettext(spec["label"])
        if "enum" in schema:
            kwargs["validators"].append(any_of(schema["enum"]))
        if schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), **kwargs)
        elif "boolean" in kinds:
            widgets[name] = BooleanField(label, **kwargs)
        elif "integer" in kinds or "number" in kinds:
            # No float field in 3.1's form; a number box all the same (the UI stores a number).
            widgets[name] = IntegerField(label, widget=BS3TextFieldWidget(), **kwargs)
        else:
            widgets[name] = StringField(label, widget=BS3TextFieldWidget(), **kwargs)
    return widgets


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
        "transfers": [
            {
                "source-integration-name": "Huawei Cloud IoTDA",
                "target-integration-name": "Common SQL",
                "python-module": "airflow_provider_iotda.transfers.iotda_to_sql",
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
