"""IoTDAInstanceTasksToSqlOperator against the simulator and a real database: every test runs
on SQLite and on PostgreSQL (a private cluster), through the Airflow connection ``audit_db``."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_iotda.compat import AirflowException, AirflowFailException
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.transfers.iotda_to_sql import IoTDAInstanceTasksToSqlOperator
from airflow_provider_iotda.transfers.sql_history import create_table_sql, read_time

from .conftest import BUSY, PROJECT, QUIET, SK, SQL_CONN_ID, Clock, Database

pytestmark = pytest.mark.integration

TABLE = "iotda_instance_tasks"
COLUMNS = (
    "project_id, instance_id, task_id, type, status, status_detail, create_time, start_time, "
    "end_time, target_config, operate_window, first_seen_at, last_seen_at, status_changed_at"
)


def operator(**kwargs: Any) -> IoTDAInstanceTasksToSqlOperator:
    settings: dict[str, Any] = {
        "task_id": "history",
        "sql_conn_id": SQL_CONN_ID,
        "instance_ids": [BUSY, QUIET],
    }
    return IoTDAInstanceTasksToSqlOperator(**{**settings, **kwargs})


def run(**kwargs: Any) -> dict[str, Any]:
    return operator(**kwargs).execute({})  # type: ignore[arg-type]


def table_rows(db: Database, table: str = TABLE) -> dict[str, dict[str, Any]]:
    """The task table by task ID, times as aware UTC datetimes."""
    names = [c.strip() for c in COLUMNS.split(",")]
    out: dict[str, dict[str, Any]] = {}
    for row in db.rows(f"SELECT {COLUMNS} FROM {table}"):
        values = dict(zip(names, row, strict=True))
        for name in names:
            if name.endswith(("_time", "_at")):
                values[name] = read_time(values[name])
        out[values["task_id"]] = values
    return out


def history(db: Database) -> list[tuple[str, str, dt.datetime | None]]:
    rows = db.rows(f"SELECT task_id, status, observed_at FROM {TABLE}_status_history")
    return sorted((r[0], r[1], read_time(r[2])) for r in rows)


def listing(sim: IoTDASimulator, instance_id: str) -> list[dict[str, Any]]:
    answer = sim.state.list_tasks(instance_id)
    assert answer is not None
    return list(answer["tasks"])


def api(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


# -- upsert ------------------------------------------------------------------------------------


def test_first_run_stores_every_listed_task_with_its_values(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    summary = run()

    rows = table_rows(database)
    listed = {t["task_id"]: (i, t) for i in (BUSY, QUIET) for t in listing(sim, i)}
    assert set(rows) == set(listed)
    for task_id, (instance_id, task) in listed.items():
        row = rows[task_id]
        assert (row["project_id"], row["instance_id"]) == (PROJECT, instance_id)
        assert (row["type"], row["status"]) == (task["type"], task["status"])
        # UTC, milliseconds kept: the API's string again
        assert api(row["create_time"]) == task["create_time"]
        assert api(row["end_time"]) == task["end_time"]
        assert json.loads(row["target_config"]) == task["target_config"]
        assert json.loads(row["operate_window"]) == task["operate_window"]
        assert row["first_seen_at"] == row["last_seen_at"] == row["status_changed_at"]
        assert row["first_seen_at"] == clock.now
    assert summary == {
        "table": TABLE,
        "instances": [BUSY, QUIET],
        "tasks_seen": 6,
        "inserted": 6,
        "updated": 0,
        "status_changes": 0,
        "gaps": [],
        "skipped_instances": [],
    }
    assert history(database) == sorted((t, "SUCCESS", clock.now) for t in listed)


def test_status_change_updates_the_row_and_adds_one_history_row(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    task_id = sim.add_task(
        BUSY, "MODIFY", [["PENDING", 0], ["RUNNING", 60], ["FAILED", 600, "no capacity"]]
    )
    first_seen = clock.now
    run()
    assert table_rows(database)[task_id]["status"] == "PENDING"

    sim.advance(120)
    clock.advance(120)
    summary = run()
    row = table_rows(database)[task_id]
    assert row["status"] == "RUNNING"
    assert row["first_seen_at"] == first_seen
    assert row["status_changed_at"] == row["last_seen_at"] == clock.now
    assert (summary["inserted"], summary["updated"], summary["status_changes"]) == (0, 1, 1)

    sim.advance(600)
    running_seen = clock.now
    clock.advance(600)
    summary = run()
    row = table_rows(database)[task_id]
    assert (row["status"], row["status_detail"]) == ("FAILED", "no capacity")
    assert row["end_time"] is not None
    assert summary["status_changes"] == 1
    mine = [h for h in history(database) if h[0] == task_id]
    assert mine == [
        (task_id, "FAILED", clock.now),
        (task_id, "PENDING", first_seen),
        (task_id, "RUNNING", running_seen),
    ]


def test_a_rerun_with_nothing_new_changes_only_last_seen_at(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    run()
    before, history_before = table_rows(database), history(database)
    clock.advance(3600)

    summary = run()

    after = table_rows(database)
    assert (summary["inserted"], summary["updated"], summary["status_changes"]) == (0, 0, 0)
    assert summary["tasks_seen"] == 6
    assert summary["gaps"] == []
    assert history(database) == history_before
    assert set(after) == set(before)
    for task_id, row in after.items():
        assert row["last_seen_at"] == clock.now
        assert {**row, "last_seen_at": None} == {**before[task_id], "last_seen_at": None}
    assert database.rows(f"SELECT COUNT(*) FROM {TABLE}_gaps") == [(0,)]


# -- gaps --------------------------------------------------------------------------------------


def add_burst(sim: IoTDASimulator, count: int) -> list[str]:
    """``count`` tasks on BUSY, one a minute, the newest a minute ago."""
    return [sim.add_task(BUSY, "MODIFY", created=-60.0 * (count - i)) for i in range(count)]


def test_more_than_20_new_tasks_between_two_runs_is_a_gap_recorded_and_reported_once(
    sim: IoTDASimulator, clock: Clock, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    run()
    newest_stored = max(t["create_time"] for t in listing(sim, BUSY))
    old_ids = {t["task_id"] for t in listing(sim, BUSY)}
    sim.advance(7200)
    add_burst(sim, 25)
    clock.advance(7200)

    summary = run()

    shown = listing(sim, BUSY)
    assert len(shown) == 20
    oldest_listed = min(t["create_time"] for t in shown)
    expected = {"instance_id": BUSY, "after": newest_stored, "before": oldest_listed}
    assert summary["gaps"] == [expected]
    gaps = database.rows(
        f"SELECT project_id, instance_id, gap_after, gap_before, detected_at FROM {TABLE}_gaps"
    )
    stored = [
        (g[0], g[1], api(read_time(g[2])), api(read_time(g[3])), read_time(g[4])) for g in gaps
    ]
    assert stored == [(PROJECT, BUSY, newest_stored, oldest_listed, clock.now)]
    warning = [line for line in capsys.readouterr().out.splitlines() if "may be lost" in line]
    assert len(warning) == 1
    assert "warning" in warning[0]
    assert BUSY in warning[0]
    assert newest_stored in warning[0]
    assert oldest_listed in warning[0]
    # what IoTDA no longer lists stays untouched
    rows = table_rows(database)
    assert old_ids <= set(rows)
    assert all(rows[t]["last_seen_at"] < clock.now for t in old_ids)

    clock.advance(60)
    again = run()
    assert again["gaps"] == []
    assert again["inserted"] == 0
    assert len(database.rows(f"SELECT * FROM {TABLE}_gaps")) == 1


def test_no_gap_when_the_listing_overlaps_the_table_or_the_instance_is_new(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    sim.advance(7200)
    add_burst(sim, 25)  # a full window at once, but never seen before
    assert run()["gaps"] == []
    sim.advance(3600)
    add_burst(sim, 19)  # 20 listed, the oldest of them already stored
    clock.advance(3600)
    summary = run()
    assert summary["gaps"] == []
    assert summary["inserted"] == 19


def test_on_gap_fail_fails_after_writing_everything_it_saw(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    run(on_gap="fail")
    sim.advance(7200)
    burst = add_burst(sim, 25)
    clock.advance(7200)

    with pytest.raises(AirflowFailException, match="on_gap='fail'") as raised:
        run(on_gap="fail")

    assert BUSY in str(raised.value)
    rows = table_rows(database)
    assert set(burst[-20:]) <= set(rows)  # the 20 listed are written
    assert len(database.rows(f"SELECT * FROM {TABLE}_gaps")) == 1
    assert run(on_gap="fail")["gaps"] == []  # reported once: the next run succeeds


# -- concurrency and tables --------------------------------------------------------------------


def test_concurrent_mapped_writes_neither_deadlock_nor_lose_rows(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    for _ in range(8):
        sim.add_task(QUIET, "CREATE", [["PENDING", 0], ["RUNNING", 30]])
    run(instance_ids=QUIET)  # tables exist; later writers race on rows, not on creation
    sim.advance(60)
    clock.advance(60)
    # Six map indexes at once, three per instance, as expand(instance_ids=...) would run them.
    mapped = [BUSY, QUIET] * 3
    barrier = threading.Barrier(len(mapped))
    outcomes: list[Any] = [None] * len(mapped)

    def index(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = run(instance_ids=mapped[i], task_id=f"history_{i}")
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=index, args=(i,)) for i in range(len(mapped))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(isinstance(o, dict) for o in outcomes), outcomes
    listed = {t["task_id"] for i in (BUSY, QUIET) for t in listing(sim, i)}
    rows = table_rows(database)
    assert set(rows) == listed
    assert all(r["last_seen_at"] == clock.now for r in rows.values())
    statuses = {(h[0], h[1]) for h in history(database)}
    assert len(statuses) == len(history(database))  # one row per task and status
    assert {(t["task_id"], t["status"]) for i in (BUSY, QUIET) for t in listing(sim, i)} <= statuses
    # the 8 tasks went PENDING -> RUNNING: counted by whichever index saw it first, at least once
    assert sum(o["status_changes"] for o in outcomes) >= 8


def test_concurrent_creation_of_the_tables_is_safe(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def index(i: int) -> None:
        barrier.wait()
        try:
            run(instance_ids=QUIET, task_id=f"create_{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=index, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(table_rows(database)) == 3


def test_a_table_missing_a_column_is_an_error_naming_table_and_column(
    sim: IoTDASimulator, database: Database
) -> None:
    database.execute(
        f"CREATE TABLE {TABLE} (project_id VARCHAR(64), instance_id VARCHAR(36), task_id "
        "VARCHAR(64), type VARCHAR(64), status VARCHAR(32))"
    )
    with pytest.raises(AirflowFailException, match=f"Table {TABLE} has no column status_detail"):
        run()
    assert sim.counters.requests == 0  # checked before anything is listed


def test_without_create_tables_a_missing_table_is_an_error(
    sim: IoTDASimulator, database: Database
) -> None:
    with pytest.raises(AirflowFailException, match=f"Table {TABLE} does not exist"):
        run(create_tables=False)
    assert sim.counters.requests == 0


# -- instances that cannot be listed -----------------------------------------------------------

MISSING = "dead0000-0000-4000-8000-000000000009"


def test_on_instance_error_skip_writes_the_others_and_names_the_failed_one(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    summary = run(instance_ids=[BUSY, MISSING, QUIET], on_instance_error="skip")
    assert summary["instances"] == [BUSY, QUIET]
    assert [s["instance_id"] for s in summary["skipped_instances"]] == [MISSING]
    assert {r["instance_id"] for r in table_rows(database).values()} == {BUSY, QUIET}


def test_on_instance_error_fail_writes_nothing(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    with pytest.raises(AirflowException, match=MISSING) as raised:
        run(instance_ids=[BUSY, MISSING, QUIET])
    assert f"{TABLE} was not written" in str(raised.value)
    assert table_rows(database) == {}


def test_no_secret_in_the_database(sim: IoTDASimulator, clock: Clock, database: Database) -> None:
    run()
    for table in (TABLE, f"{TABLE}_status_history", f"{TABLE}_gaps"):
        assert SK not in repr(database.rows(f"SELECT * FROM {table}"))


def test_schema_qualified_table(sim: IoTDASimulator, clock: Clock, database: Database) -> None:
    if database.kind == "postgres":
        database.execute("CREATE SCHEMA audit")
        table = "audit.tasks"
    else:
        table = "main.tasks"
    assert run(table=table)["inserted"] == 6
    assert len(table_rows(database, table)) == 6
    assert len(database.rows(f"SELECT * FROM {table}_status_history")) == 6


def _race(database: Database, sql: str, ours: Callable[[], Any]) -> Any:
    """Run ``ours`` while another session holds an uncommitted CREATE of the same table; commit
    that session once ours waits on its lock; return what ``ours`` returned or raised."""
    other = database.connect()
    other.cursor().execute(sql)  # not committed: holds the new catalog entry
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(ours())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    watcher = database.connect()
    watcher.autocommit = True
    waiting: list[tuple[Any, ...]] = []
    for _ in range(600):  # until our CREATE waits on the other session's lock
        cursor = watcher.cursor()
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'CREATE TABLE IF NOT EXISTS%'"
        )
        waiting = cursor.fetchall()
        if waiting:
            break
        thread.join(timeout=0.05)
    watcher.close()
    other.commit()
    other.close()
    thread.join(timeout=60)
    assert waiting, "our CREATE TABLE never waited for the other session"
    return outcome[0]


def test_postgres_create_table_race_is_tolerated(
    sim: IoTDASimulator, clock: Clock, postgres_database: Database
) -> None:
    """Deterministically the race PostgreSQL loses: another session has created the table in a
    transaction not yet committed; our CREATE TABLE IF NOT EXISTS waits for it, and when it
    commits, PostgreSQL answers ours with a unique violation on its catalog."""
    import psycopg2.errors

    from airflow_provider_iotda.transfers.sql_history import TASK_COLUMNS, TASK_KEY

    database = postgres_database
    sql = create_table_sql(TABLE, TASK_COLUMNS, TASK_KEY)

    def plain() -> str:
        database.execute(sql)
        return "created"

    # The plain statement loses the race ...
    assert isinstance(_race(database, sql, plain), psycopg2.errors.UniqueViolation)
    database.execute(f"DROP TABLE {TABLE}")
    # ... the operator, in the same situation, carries on.
    summary = _race(database, sql, lambda: run(instance_ids=QUIET))
    assert isinstance(summary, dict), summary
    assert summary["inserted"] == 3


@pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="needs apache-airflow-providers-openlineage (the storage-check extra, Airflow 3.3 line)",
)
def test_openlineage_names_the_table_as_the_sql_providers_do(
    sim: IoTDASimulator, clock: Clock, database: Database
) -> None:
    task = operator(instance_ids=[BUSY, QUIET])
    task.execute({})  # type: ignore[arg-type]

    lineage = task.get_openlineage_facets_on_complete(None)

    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"iotda://{sim.url.split('://')[1]}/{PROJECT}", BUSY),
        (f"iotda://{sim.url.split('://')[1]}/{PROJECT}", QUIET),
    ]
    (output,) = lineage.outputs
    conn = json.loads(database.conn_json)
    if database.kind == "postgres":
        # as PostgresHook.get_openlineage_database_info and the SQL parser name tables
        assert output.namespace == f"postgres://127.0.0.1:{conn['port']}"
        assert output.name == f"{conn['schema']}.public.{TABLE}"
    else:
        assert output.namespace == f"sqlite://{conn['host']}"
        assert output.name == TABLE
