"""Provider registration: metadata valid for Airflow, entry point, and what the CLI shows."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import airflow
import jsonschema  # type: ignore[import-untyped]
import pytest

from airflow_provider_iotda import compat, fields
from airflow_provider_iotda import get_provider_info as provider_module
from airflow_provider_iotda.config import (
    CONN_TYPE,
    DEFAULT_SIGNING,
    EXTRA_FIELDS,
    SIGNING_MODES,
    ConnectionFieldError,
    IoTDAConnectionConfig,
)
from airflow_provider_iotda.credentials import CREDENTIAL_SOURCES, SOURCE_SPELLINGS
from airflow_provider_iotda.get_provider_info import get_provider_info
from airflow_provider_iotda.hooks.iotda import IoTDAHook

AIRFLOW_DIR = Path(airflow.__file__).parent


def _schema(name: str) -> dict[str, Any]:
    return json.loads((AIRFLOW_DIR / name).read_text())  # type: ignore[no-any-return]


def test_get_provider_info_validates_against_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), _schema("provider_info.schema.json"))


def test_connection_type_validates_against_the_provider_yaml_schema() -> None:
    """``provider_info.schema.json`` does not describe the UI fields; provider.yaml's does."""
    item_schema = _schema("provider.yaml.schema.json")["properties"]["connection-types"]["items"]
    for connection_type in get_provider_info()["connection-types"]:
        jsonschema.validate(connection_type, item_schema)


def test_validation_would_catch_a_broken_provider_info() -> None:
    broken = get_provider_info()
    del broken["name"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema("provider_info.schema.json"))


def test_connection_type_matches_the_hook() -> None:
    (connection_type,) = get_provider_info()["connection-types"]
    assert connection_type["connection-type"] == CONN_TYPE == IoTDAHook.conn_type
    module_name, _, class_name = connection_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module_name), class_name) is IoTDAHook
    assert connection_type["hook-name"] == IoTDAHook.hook_name


@pytest.mark.skipif(compat.has_conn_fields_form(), reason="3.2+ reads the provider info")
def test_airflow_3_1_gets_the_form_from_the_hook() -> None:
    behaviour = IoTDAHook.get_ui_field_behaviour()  # type: ignore[attr-defined]
    jsonschema.validate(behaviour, _schema("customized_form_field_behaviours.schema.json"))
    assert behaviour == provider_module.hook_field_behaviour()
    # The widgets need wtforms, which the api-server mocks: tests/integration/ui checks them there.
    assert "get_connection_form_widgets" in vars(IoTDAHook)


@pytest.mark.skipif(not compat.has_conn_fields_form(), reason="3.1 reads the hook's methods")
def test_airflow_3_2_and_later_get_the_form_from_the_provider_info_only() -> None:
    """Hook methods would make 3.2+ warn that they are deprecated."""
    assert "get_ui_field_behaviour" not in vars(IoTDAHook)
    assert "get_connection_form_widgets" not in vars(IoTDAHook)


def test_hook_field_behaviour_is_the_provider_infos_in_hook_shape() -> None:
    behaviour = provider_module.hook_field_behaviour()
    jsonschema.validate(behaviour, _schema("customized_form_field_behaviours.schema.json"))
    ui = provider_module.UI_FIELD_BEHAVIOUR
    assert behaviour["hidden_fields"] == ui["hidden-fields"]
    assert behaviour["relabeling"] == ui["relabeling"]
    assert behaviour["placeholders"] == ui["placeholders"]


def test_one_way_to_set_the_endpoint() -> None:
    """The host field is hidden: extra ``endpoint`` is the form's only endpoint field."""
    (connection_type,) = get_provider_info()["connection-types"]
    behaviour = connection_type["ui-field-behaviour"]
    assert {"host", "port", "schema"} <= set(behaviour["hidden-fields"])
    assert "host" not in behaviour["relabeling"]
    assert "host" not in behaviour["placeholders"]
    assert "endpoint" in connection_type["conn-fields"]


@pytest.mark.parametrize("name", list(provider_module.CONN_FIELDS))
def test_no_value_the_form_can_store_is_short_enough_to_make_the_masker_warn(name: str) -> None:
    """Airflow masks every string of a connection's extra and warns "too short" for each one
    under ``[logging] min_length_masked_secret`` characters (default 5), whatever its key: form
    defaults and drop-down choices must be longer."""
    minimum = compat.conf.getint("logging", "min_length_masked_secret", fallback=5)
    schema = provider_module.CONN_FIELDS[name]["schema"]
    for value in [schema.get("default"), *schema.get("enum", [])]:
        if isinstance(value, str):
            assert len(value) >= minimum, f"{name}: {value!r}"


def test_every_form_choice_and_default_is_accepted_by_the_connection() -> None:
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    base = {"access_key": "ak", "secret_key": "sk-12345", "region": "cn-north-4", "project_id": "p"}
    for name, field in fields.items():
        schema = field["schema"]
        for value in [schema.get("default"), *schema.get("enum", []), *schema.get("examples", [])]:
            if value is not None:
                IoTDAConnectionConfig.from_values(**{**base, name: value})


BASE = {"access_key": "ak", "secret_key": "sk-12345", "region": "cn-north-4", "project_id": "p"}


def _form_field(name: str) -> dict[str, Any]:
    return get_provider_info()["connection-types"][0]["conn-fields"][name]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "beyond", "message"),
    [
        (
            "project_id",
            "a" * 70,
            "extra project_id must be 1 to 64 characters of letters, digits, underscores "
            "and hyphens; got 'aaaa",
        ),
        (
            "instance_id",
            "0" * 37,
            "extra instance_id must be 1 to 36 characters of lower-case letters a-f, digits "
            "and hyphens; got '0000",
        ),
        ("max_retries", 99, "extra max_retries must be an integer from 0 to 10; got 99"),
        ("max_retries", -1, "extra max_retries must be an integer from 0 to 10; got -1"),
        ("timeout", 0, "extra timeout must be a number of seconds greater than 0; got 0"),
    ],
)
def test_a_value_beyond_a_bound_is_refused_with_a_message_not_corrected(
    name: str, beyond: object, message: str
) -> None:
    """Airflow's form would clamp a number box to minimum/maximum and cut typing at maxLength
    without a word: the schema carries none of them, the description says the bound, and the
    connection (the Test button, every task) refuses the value naming field and bound."""
    schema = _form_field(name)["schema"]
    for corrector in ("maxLength", "minLength", "maximum", "minimum"):
        assert corrector not in schema, (name, corrector)
    with pytest.raises(ConnectionFieldError) as caught:
        IoTDAConnectionConfig.from_values(**{**BASE, name: beyond})
    assert caught.value.detail.startswith(message)


@pytest.mark.parametrize(
    ("name", "bound"),
    [
        ("project_id", fields.PROJECT_ID.form),
        ("instance_id", fields.INSTANCE_ID.form),
        ("max_retries", fields.MAX_RETRIES.form),
        ("timeout", fields.TIMEOUT.form),
    ],
)
def test_the_description_says_the_bound_the_form_no_longer_enforces(name: str, bound: str) -> None:
    assert bound in _form_field(name)["description"]


def test_no_form_text_holds_square_brackets() -> None:
    """Airflow's CLI shows these texts through rich, which eats bracketed words."""
    info = get_provider_info()["connection-types"][0]
    texts = [*info["ui-field-behaviour"]["relabeling"].values()]
    texts += info["ui-field-behaviour"]["placeholders"].values()
    for field in info["conn-fields"].values():
        texts += [field["label"], field["description"]]
        texts += field["schema"].get("values_display", {}).values()
    for text in texts:
        assert "[" not in text, text
        assert "]" not in text, text


def test_the_credentials_source_comes_first_and_the_keys_say_they_may_stay_empty() -> None:
    info = get_provider_info()["connection-types"][0]
    assert next(iter(info["conn-fields"])) == "credentials"
    placeholders = info["ui-field-behaviour"]["placeholders"]
    for key in ("login", "password"):
        assert "empty when Credentials source is not this connection" in placeholders[key]
    description = info["conn-fields"]["credentials"]["description"]
    assert "leave Access Key and Secret Key empty" in description
    # Help text does not repeat the drop-down's raw values, nor point at other sections.
    for raw in ("ecs_metadata", "pod_identity", "oidc_federation", "(env)"):
        assert raw not in description
    for field in info["conn-fields"].values():
        assert "above" not in field["description"]
        assert "below" not in field["description"]


def test_aksk_names_no_signing_mode() -> None:
    """A credentials source is where the keys come from; signing is what is done with them:
    the two drop-downs no longer share the words "AK/SK" (stored values are unchanged)."""
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    signing = conn_fields["signing"]
    assert list(signing["schema"]["values_display"]) == list(SIGNING_MODES)
    for label in [signing["label"], *signing["schema"]["values_display"].values()]:
        assert "AK/SK" not in label
    for label in conn_fields["credentials"]["schema"]["values_display"].values():
        assert "AK/SK" not in label


def test_the_form_says_one_of_region_and_endpoint_is_needed_and_where_an_old_host_goes() -> None:
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    for name in ("region", "endpoint"):
        assert "One of Region and Endpoint URL is needed" in conn_fields[name]["description"]
    # Airflow's edit form shows only the extras a connection stored: the note rides on the
    # field every saved connection has (project_id is required).
    description = conn_fields["project_id"]["description"]
    assert '"endpoint": "its URL" to the Extra Fields JSON' in description


def test_form_patterns_are_the_table_s() -> None:
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert conn_fields["region"]["schema"]["pattern"] == fields.REGION.json_pattern
    assert conn_fields["project_id"]["schema"]["pattern"] == fields.PROJECT_ID.json_pattern
    assert conn_fields["instance_id"]["schema"]["pattern"] == fields.INSTANCE_ID.json_pattern
    assert conn_fields["region"]["schema"]["examples"] == list(fields.REGIONS)


def test_every_connection_extra_is_in_the_form() -> None:
    (connection_type,) = get_provider_info()["connection-types"]
    assert set(connection_type["conn-fields"]) == set(EXTRA_FIELDS)
    for name, field in connection_type["conn-fields"].items():
        jsonschema.Draft7Validator.check_schema(field["schema"])
        if "default" in field["schema"]:
            jsonschema.validate(field["schema"]["default"], field["schema"])
        assert field["label"], name


def test_form_schemas_agree_with_the_connection_checks() -> None:
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert jsonschema.Draft7Validator(conn_fields["instance_id"]["schema"]).is_valid(
        "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
    )
    assert not jsonschema.Draft7Validator(conn_fields["instance_id"]["schema"]).is_valid("../x")
    assert conn_fields["signing"]["schema"]["enum"] == list(SIGNING_MODES)
    assert conn_fields["signing"]["schema"]["default"] == DEFAULT_SIGNING
    assert set(conn_fields["signing"]["schema"]["values_display"]) == set(SIGNING_MODES)
    for name, bad in [
        ("region", "CN North 4"),
        ("project_id", "0123 bad!"),
        ("instance_id", "NOT-HEX-ZZ"),
    ]:
        assert not jsonschema.Draft7Validator(conn_fields[name]["schema"]).is_valid(bad)


def test_every_credentials_source_is_offered_once() -> None:
    schema = _form_field("credentials")["schema"]
    offered = [SOURCE_SPELLINGS.get(value, value) for value in schema["enum"]]
    assert sorted(offered) == sorted(CREDENTIAL_SOURCES)
    assert set(schema["values_display"]) == set(schema["enum"])


def test_python_modules_named_in_the_provider_info() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-iotda"
    assert info["versions"][0] == importlib.import_module("airflow_provider_iotda").__version__
    assert info["hooks"][0]["python-modules"] == ["airflow_provider_iotda.hooks.iotda"]
    integrations = {i["integration-name"] for i in info["integrations"]}
    for kind in ("hooks", "sensors", "triggers", "operators"):
        for entry in info[kind]:
            assert entry["integration-name"] in integrations


def test_entry_point_is_registered() -> None:
    (entry_point,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_iotda")
    ]
    assert entry_point.name == "provider_info"
    assert entry_point.value == "airflow_provider_iotda.get_provider_info:get_provider_info"
    assert entry_point.load() is provider_module.get_provider_info


CLI_SCRIPT = """
import json, sys
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
for argv in (["providers", "list", "-o", "json"], ["providers", "hooks", "-o", "json"]):
    args = parser.parse_args(argv)
    args.func(args)
    sys.stdout.write("\\n@@@\\n")
"""


def test_airflow_cli_lists_the_provider_and_the_hook() -> None:
    """``airflow providers list`` and ``airflow providers hooks``, in one fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT],
        capture_output=True,
        text=True,
        env=os.environ.copy(),  # the tests' temporary AIRFLOW_HOME
        timeout=120,
        check=True,
    )
    listed, hooks, _ = result.stdout.split("\n@@@\n")
    providers = {p["package_name"]: p for p in json.loads(listed.strip())}
    assert providers["airflow-provider-iotda"]["version"] == get_provider_info()["versions"][0]
    by_type = {h["connection_type"]: h for h in json.loads(hooks.strip())}
    assert by_type[CONN_TYPE]["class"] == "airflow_provider_iotda.hooks.iotda.IoTDAHook"
    assert by_type[CONN_TYPE]["package_name"] == "airflow-provider-iotda"
    assert by_type[CONN_TYPE]["conn_id_attribute_name"] == "iotda_conn_id"
