"""IoTDAInstanceTasksToSqlOperator without a database: arguments checked at DAG-parse time,
the connection check, the gap rule and the stored forms of values."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests_mock
from iotda_test_values import connection_json

from airflow_provider_iotda.compat import AirflowFailException
from airflow_provider_iotda.transfers.iotda_to_sql import IoTDAInstanceTasksToSqlOperator
from airflow_provider_iotda.transfers.sql_history import (
    Tables,
    create_table_sql,
    db_time,
    find_gap,
    read_time,
    table_name,
    task_values,
)

REPO = Path(__file__).resolve().parents[3]
INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"


def op(**kwargs: object) -> IoTDAInstanceTasksToSqlOperator:
    settings: dict[str, object] = {"task_id": "history", "sql_conn_id": "audit_db"}
    return IoTDAInstanceTasksToSqlOperator(**{**settings, **kwargs})  # type: ignore[arg-type]


# -- parse time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        "tasks; drop table x",
        "1tasks",
        "tasks-history",
        "a.b.c",
        "tasks.",
        "",
        'tasks"',
        "tâches",
    ],
)
def test_a_table_that_is_not_a_plain_identifier_is_refused_naming_table(table: str) -> None:
    with pytest.raises(ValueError, match=r"^table must be a plain SQL identifier") as raised:
        op(table=table)
    assert repr(table) in str(raised.value)
    assert "[" not in str(raised.value)
    assert "]" not in str(raised.value)


def test_a_table_too_long_for_the_history_table_name_is_refused() -> None:
    op(table="t" * 48)
    op(table="audit." + "t" * 48)
    with pytest.raises(ValueError, match=r"^table 't{49}' is too long") as raised:
        op(table="t" * 49)
    assert "t" * 49 + "_status_history" in str(raised.value)
    assert "64 characters" in str(raised.value)
    assert "at most 48" in str(raised.value)


def test_schema_qualified_tables_name_the_three_tables() -> None:
    assert table_name("audit.iotda_tasks") == "audit.iotda_tasks"
    assert Tables.named("audit.iotda_tasks") == Tables(
        "audit.iotda_tasks", "audit.iotda_tasks_status_history", "audit.iotda_tasks_gaps"
    )


@pytest.mark.parametrize(("name", "value"), [("on_gap", "ignore"), ("on_gap", None)])
def test_on_gap_outside_warn_or_fail_is_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"^on_gap must be one of fail, warn"):
        op(**{name: value})


def test_create_tables_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match=r"^create_tables must be True or False"):
        op(create_tables="no")


def test_a_bad_sql_conn_id_is_refused_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"^sql_conn_id must be an Airflow connection ID"):
        op(sql_conn_id="audit db; x")


def test_arguments_of_the_list_operator_it_does_not_take_are_refused() -> None:
    with pytest.raises(TypeError, match=r"takes no destination, statuses"):
        op(destination="file:///tmp/x.json", statuses="FAILED")


def test_templated_fields() -> None:
    assert tuple(IoTDAInstanceTasksToSqlOperator.template_fields) == (
        "sql_conn_id",
        "table",
        "iotda_conn_id",
        "instance_ids",
    )


def test_a_templated_table_is_checked_when_rendered_before_any_request(iotda_conn: str) -> None:
    task = op(table="{{ params.table }}")  # not checked at parse time: a template
    task.render_template_fields({"params": {"table": "x; drop table y"}})  # type: ignore[arg-type]
    with requests_mock.Mocker() as mocker, pytest.raises(ValueError, match=r"^table must be"):
        task.execute({})  # type: ignore[arg-type]
    assert mocker.request_history == []


# -- the SQL connection ------------------------------------------------------------------------


def test_a_connection_whose_hook_is_not_a_dbapihook_is_an_error_naming_its_type(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", connection_json())
    with requests_mock.Mocker() as mocker, pytest.raises(AirflowFailException) as raised:
        op().execute({})  # type: ignore[arg-type]
    message = str(raised.value)
    assert "connection of type 'huaweicloud_iotda'" in message
    assert "hook IoTDAHook is not a SQL hook" in message
    assert "DbApiHook" in message
    assert mocker.request_history == []


def test_a_connection_type_without_a_hook_is_an_error_naming_its_type(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AUDIT_DB", json.dumps({"conn_type": "no_such_db"}))
    with pytest.raises(AirflowFailException, match=r"connection of type 'no_such_db'"):
        op().execute({})  # type: ignore[arg-type]


# -- gaps and values ---------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_a_full_window_newer_than_everything_stored_is_a_gap() -> None:
    later = T0 + dt.timedelta(hours=1)
    assert find_gap(INSTANCE, 20, later, T0, 20) is not None
    gap = find_gap(INSTANCE, 20, later, T0, 20)
    assert gap is not None
    assert (gap.after, gap.before) == (T0, later)


@pytest.mark.parametrize(
    ("listed", "oldest", "newest"),
    [
        (19, T0 + dt.timedelta(hours=1), T0),  # not a full window: IoTDA dropped nothing
        (20, T0, T0),  # overlaps what is stored
        (20, T0 - dt.timedelta(hours=1), T0),
        (20, T0, None),  # first time seen
        (20, None, T0),  # no creation times to compare
    ],
)
def test_no_gap(listed: int, oldest: dt.datetime | None, newest: dt.datetime | None) -> None:
    assert find_gap(INSTANCE, listed, oldest, newest, 20) is None


def test_stored_values_keep_milliseconds_in_utc_and_json_as_text() -> None:
    values = task_values(
        {
            "task_id": "t",
            "type": "MODIFY",
            "status": "SUCCESS",
            "create_time": "2020-08-19T01:52:49.493Z",
            "start_time": None,
            "end_time": "2020-08-19T01:53:00.007Z",
            "target_config": {"flavor": {"size": 2, "type": "s2"}},
            "operate_window": None,
        }
    )
    assert values == {
        "type": "MODIFY",
        "status": "SUCCESS",
        "status_detail": None,
        "create_time": "2020-08-19 01:52:49.493",
        "start_time": None,
        "end_time": "2020-08-19 01:53:00.007",
        "target_config": '{"flavor":{"size":2,"type":"s2"}}',
        "operate_window": None,
    }


def test_times_read_back_are_aware_utc_whatever_the_database_returns() -> None:
    naive = dt.datetime(2020, 8, 19, 1, 52, 49, 493000)
    expected = naive.replace(tzinfo=dt.UTC)
    assert read_time(naive) == expected  # PostgreSQL TIMESTAMP
    assert read_time("2020-08-19 01:52:49.493") == expected  # SQLite text
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert read_time(dt.datetime(2020, 8, 19, 3, 52, 49, 493000, tzinfo=plus_two)) == expected
    assert read_time(None) is None
    assert db_time(dt.datetime(2020, 8, 19, 3, 52, 49, 493999, tzinfo=plus_two)) == (
        "2020-08-19 01:52:49.493"
    )


def test_table_definitions_have_keys() -> None:
    tables = Tables.named("x")
    sql = [create_table_sql(*definition) for definition in tables.definitions()]
    assert sql[0].startswith("CREATE TABLE IF NOT EXISTS x (project_id VARCHAR(64) NOT NULL")
    assert sql[0].endswith("PRIMARY KEY (project_id, instance_id, task_id))")
    assert sql[1].endswith("PRIMARY KEY (project_id, instance_id, task_id, status))")
    assert sql[2].endswith("PRIMARY KEY (project_id, instance_id, gap_after, gap_before))")


def test_import_is_cheap() -> None:
    """Importing the transfer adds no SQL provider, hook or HTTP client over airflow.sdk."""
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_iotda.transfers.iotda_to_sql\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('airflow_provider_iotda.hooks', 'requests', 'httpx', 'urllib3',"
        " 'airflow.providers.common.sql', 'airflow.providers.postgres', 'psycopg2', 'sqlite3')\n"
        "print(sorted(m for m in added if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_registered_as_a_transfer_of_the_provider() -> None:
    import importlib
    import json as json_module

    import airflow
    import jsonschema

    from airflow_provider_iotda.get_provider_info import get_provider_info

    info = get_provider_info()
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json_module.loads(schema_path.read_text())
    jsonschema.validate(info["transfers"], schema["properties"]["transfers"])
    (transfer,) = info["transfers"]
    module = importlib.import_module(transfer["python-module"])
    assert module.IoTDAInstanceTasksToSqlOperator is IoTDAInstanceTasksToSqlOperator
