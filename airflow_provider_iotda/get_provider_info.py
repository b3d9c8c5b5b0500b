"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_iotda import __version__, fields
from airflow_provider_iotda.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_SIGNING,
    DEFAULT_TIMEOUT,
    EXTRA_FIELDS,
    SIGNING_MODES,
)

# What Airflow's connection form (3.2+, the React UI) does with a ``conn-fields`` schema, read
# from its code (``airflow/ui``): a type without "null" makes the field required (Save stays
# disabled while it is empty); ``enum`` makes a drop-down (``values_display`` labels it);
# ``examples`` become suggestions.  It would also clamp a number box to ``minimum``/``maximum``
# when it loses focus and cut typing at ``maxLength``: a 70-character project ID or 99 retries
# would be corrected without a word, so the schemas carry no bounds; the descriptions say them
# and the Test button (and every task) refuses a value beyond one with a message naming the
# field, the value and the allowed form (``config.py``, from the table in ``fields.py``).  It
# ignores ``pattern`` (kept for other tools).  The extras come after login and password, in a
# section of their own, in the order of ``config.EXTRA_FIELDS``.

#: Said beside login and password: with another credentials source they stay empty.
_EMPTY_WITH_OTHER_SOURCE = "empty when Credentials source is not this connection"

#: Standard fields: login/password are the AK/SK; the endpoint has one home, extra ``endpoint``
#: (the host field is hidden, still read for old connections that set it, see the README).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "host"],
    "relabeling": {
        "login": "Access Key (AK)",
        "password": "Secret Key (SK)",
    },
    "placeholders": {
        "login": f"Access Key ID; {_EMPTY_WITH_OTHER_SOURCE}",
        "password": f"Secret Access Key; {_EMPTY_WITH_OTHER_SOURCE}",
    },
}

#: Regions of Huawei's SDK for IoTDA (suggestions in the form; ``fields.REGIONS``).
KNOWN_REGIONS = fields.REGIONS

#: Where to move an old connection's endpoint: Airflow's edit form shows only the extras a
#: connection has stored, so the Endpoint URL field may not be there to fill; Project ID is
#: (it is required), so the note rides on it.
_MOVE_HOST = (
    "A connection saved with its endpoint in the host field (no longer shown): add "
    '"endpoint": "its URL" to the Extra Fields JSON and save.'
)


def _text(spec: fields.Text, *, required: bool = False) -> dict[str, Any]:
    """The JSON schema of a text field of ``fields.py`` (no ``maxLength``: see above)."""
    return {"type": "string" if required else ["string", "null"], "pattern": spec.json_pattern}


_URL: dict[str, Any] = {"type": ["string", "null"], "format": "url"}

_FORM: dict[str, dict[str, Any]] = {
    "credentials": {
        "label": "Credentials source",
        "description": "Where the Access Key and Secret Key come from. With any source but "
        "this connection, leave Access Key and Secret Key empty; the fields ECS metadata "
        "endpoint, STS endpoint, Pod identity URI and Credentials file change where a source "
        "looks.",
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
                "connection": "This connection (Access Key and Secret Key fields)",
                "environment": "Environment variables HUAWEICLOUD_SDK_AK and _SK",
                "profile": "Profile file (~/.huaweicloud/credentials)",
                "ecs_metadata": "ECS agency (metadata service)",
                "pod_identity": "CCE pod identity",
                "oidc_federation": "OIDC federation (STS)",
                "automatic": "Automatic (Huawei SDK's chain of sources)",
            },
        },
    },
    "security_token": {
        "label": "Security token",
        "description": "Only for a temporary Access Key and Secret Key of this connection; "
        "sent as X-Security-Token.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "region": {
        "label": "Region",
        "description": "Region of the IoTDA instance, e.g. cn-north-4; it gives the endpoint "
        "https://iotda-mgmt.REGION.myhuaweicloud.com. One of Region and Endpoint URL is "
        "needed.",
        "schema": {**_text(fields.REGION), "examples": list(fields.REGIONS)},
    },
    "endpoint": {
        "label": "Endpoint URL",
        "description": "Only where Region does not give the endpoint: a private endpoint, a "
        "region not in Huawei's list, or the simulator, e.g. http://127.0.0.1:8787. One of "
        "Region and Endpoint URL is needed.",
        "schema": _URL,
    },
    "project_id": {
        "label": "Project ID",
        "description": "The project of the instance's region (console: My Credentials, API "
        f"Credentials): {fields.PROJECT_ID.form}. " + _MOVE_HOST,
        "schema": _text(fields.PROJECT_ID, required=True),
    },
    "instance_id": {
        "label": "Default instance ID",
        "description": "Used when an operator or sensor names no instance: "
        f"{fields.INSTANCE_ID.form}.",
        "schema": _text(fields.INSTANCE_ID),
    },
    "signing": {
        "label": "Request signing algorithm",
        "description": "How requests are signed with the keys, whatever their source. "
        "Automatic uses the derived key for hosts outside Huawei's regional pattern, as "
        "Huawei's SDK does.",
        "schema": {
            "type": "string",
            "enum": list(SIGNING_MODES),
            "default": DEFAULT_SIGNING,
            "values_display": {
                "standard": "Standard (SDK-HMAC-SHA256)",
                "derived": "Derived key (V11-HMAC-SHA256)",
                "automatic": "Automatic (by endpoint host)",
            },
        },
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": f"Read timeout of each request: {fields.TIMEOUT.form}.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turning it off logs a warning every time.",
        "schema": {"type": "boolean", "default": True},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries on 429, 5xx, timeouts and dropped connections: "
        f"{fields.MAX_RETRIES.form}; Test refuses a value beyond.",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_RETRIES},
    },
    "metadata_endpoint": {
        "label": "ECS metadata endpoint",
        "description": "Only with Credentials source ECS agency: replaces http://169.254.169.254.",
        "schema": _URL,
    },
    "sts_endpoint": {
        "label": "STS endpoint",
        "description": "Only with Credentials source OIDC federation: replaces "
        "HUAWEICLOUD_SDK_STS_ENDPOINT.",
        "schema": _URL,
    },
    "pod_identity_endpoint": {
        "label": "Pod identity URI",
        "description": "Only with Credentials source CCE pod identity: replaces "
        "HC_CONTAINER_CREDENTIALS_FULL_URI.",
        "schema": _URL,
    },
    "credentials_file": {
        "label": "Credentials file",
        "description": "Only with Credentials source Profile file: replaces "
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE and ~/.huaweicloud/credentials.",
        "schema": {"type": ["string", "null"]},
    },
}

#: The extras as the form shows them, in ``EXTRA_FIELDS`` order.
CONN_FIELDS: dict[str, Any] = {name: _FORM[name] for name in EXTRA_FIELDS}


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
