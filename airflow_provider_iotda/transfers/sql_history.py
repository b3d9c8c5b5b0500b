"""The audit-history tables of ``IoTDAInstanceTasksToSqlOperator`` and how one instance's
listing is written to them.

Three tables, named after ``table``:

- ``{table}``: one row per ``(project_id, instance_id, task_id)`` with the task's latest values
  and three observation times of the run's own UTC clock (``first_seen_at``, ``last_seen_at``,
  ``status_changed_at``);
- ``{table}_status_history``: one row per ``(project_id, instance_id, task_id, status)``, the
  first time that status was observed (``observed_at``);
- ``{table}_gaps``: ``(project_id, instance_id, gap_after, gap_before, detected_at)``, where
  tasks may have been lost between two runs.

Rows are upserted with the database's own conflict handling (``INSERT ... ON CONFLICT``, which
PostgreSQL and SQLite share), the INSERT part built by the connection's common-sql dialect.
Times are stored as ``TIMESTAMP`` in UTC with milliseconds; JSON fields as text.  Nothing here
imports Airflow's SQL providers at module level.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

DEFAULT_TABLE = "iotda_instance_tasks"
HISTORY_SUFFIX = "_status_history"
GAPS_SUFFIX = "_gaps"
#: PostgreSQL's identifier limit (bytes; the names allowed here are ASCII).
IDENTIFIER_LIMIT = 63
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Dialects (common-sql's ``dialect_name``) whose ``INSERT ... ON CONFLICT`` the upserts use.
ON_CONFLICT_DIALECTS = ("postgresql", "sqlite")

#: Column definitions, portable types.  Keys first.
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "VARCHAR(64) NOT NULL"),
    ("instance_id", "VARCHAR(36) NOT NULL"),
    ("task_id", "VARCHAR(64) NOT NULL"),
    ("type", "VARCHAR(64) NOT NULL"),
    ("status", "VARCHAR(32) NOT NULL"),
    ("status_detail", "TEXT"),
    ("create_time", "TIMESTAMP"),
    ("start_time", "TIMESTAMP"),
    ("end_time", "TIMESTAMP"),
    ("target_config", "TEXT"),
    ("operate_window", "TEXT"),
    ("first_seen_at", "TIMESTAMP NOT NULL"),
    ("last_seen_at", "TIMESTAMP NOT NULL"),
    ("status_changed_at", "TIMESTAMP NOT NULL"),
)
TASK_KEY = ("project_id", "instance_id", "task_id")
HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "VARCHAR(64) NOT NULL"),
    ("instance_id", "VARCHAR(36) NOT NULL"),
    ("task_id", "VARCHAR(64) NOT NULL"),
    ("status", "VARCHAR(32) NOT NULL"),
    ("observed_at", "TIMESTAMP NOT NULL"),
)
HISTORY_KEY = ("project_id", "instance_id", "task_id", "status")
GAP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "VARCHAR(64) NOT NULL"),
    ("instance_id", "VARCHAR(36) NOT NULL"),
    ("gap_after", "TIMESTAMP NOT NULL"),
    ("gap_before", "TIMESTAMP NOT NULL"),
    ("detected_at", "TIMESTAMP NOT NULL"),
)
GAP_KEY = ("project_id", "instance_id", "gap_after", "gap_before")
#: The task values compared to tell an update (the observation times aside).
VALUE_COLUMNS = tuple(c for c, _ in TASK_COLUMNS if c not in TASK_KEY and not c.endswith("_at"))
_TIME_COLUMNS = frozenset({"create_time", "start_time", "end_time"})


def table_name(value: object, field: str = "table") -> str:
    """A plain SQL identifier, optionally schema-qualified, short enough that
    ``{table}_status_history`` fits PostgreSQL's 63-character identifier limit."""
    form = (
        "a plain SQL identifier, optionally schema-qualified: letters, digits and underscores, "
        "not starting with a digit, e.g. iotda_instance_tasks or audit.iotda_instance_tasks"
    )
    if not isinstance(value, str):
        raise ValueError(f"{field} must be {form}; got {value!r}")
    parts = value.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise ValueError(f"{field} must be {form}; got {value!r}")
    longest = parts[-1] + HISTORY_SUFFIX
    if len(longest) > IDENTIFIER_LIMIT or len(parts[0]) > IDENTIFIER_LIMIT:
        most = IDENTIFIER_LIMIT - len(HISTORY_SUFFIX)
        raise ValueError(
            f"{field} {value!r} is too long: the history table {longest} would have "
            f"{len(longest)} characters, over the identifier limit of {IDENTIFIER_LIMIT} "
            f"(PostgreSQL's); use at most {most} characters for the table name"
        )
    return value


@dataclass(frozen=True)
class Tables:
    """The three table names of one ``table`` setting."""

    tasks: str
    history: str
    gaps: str

    @classmethod
    def named(cls, table: str) -> Tables:
        return cls(table, table + HISTORY_SUFFIX, table + GAPS_SUFFIX)

    def definitions(self) -> list[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]]:
        """``(name, columns, key)`` of each table."""
        return [
            (self.tasks, TASK_COLUMNS, TASK_KEY),
            (self.history, HISTORY_COLUMNS, HISTORY_KEY),
            (self.gaps, GAP_COLUMNS, GAP_KEY),
        ]


def create_table_sql(name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]) -> str:
    body = ", ".join(f"{column} {kind}" for column, kind in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} ({body}, PRIMARY KEY ({', '.join(key)}))"


# -- values ---------------------------------------------------------------------------------


def db_time(moment: dt.datetime) -> str:
    """A UTC time as stored: ``YYYY-MM-DD HH:MM:SS.mmm`` (naive, UTC, milliseconds)."""
    utc = moment.astimezone(dt.UTC) if moment.tzinfo else moment
    return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d}"


def read_time(value: Any) -> dt.datetime | None:
    """A time read back from the database (a datetime, or text on SQLite) as aware UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _stored_text(column: str, value: Any) -> str | None:
    """A stored value in the form a record's value takes in :func:`task_values`."""
    if value is None:
        return None
    if column in _TIME_COLUMNS:
        moment = read_time(value)
        return db_time(moment) if moment else None
    return str(value)


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def task_values(record: Mapping[str, Any]) -> dict[str, str | None]:
    """The stored form of a record's task values (:data:`VALUE_COLUMNS`)."""
    out: dict[str, str | None] = {}
    for column in VALUE_COLUMNS:
        value = record.get(column)
        if column in _TIME_COLUMNS:
            moment = read_time(value)
            out[column] = db_time(moment) if moment else None
        elif column in ("target_config", "operate_window"):
            out[column] = _json_text(value)
        else:
            out[column] = None if value is None else str(value)
    return out


# -- statements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    """The SQL of one run, for one connection's dialect."""

    tables: Tables
    placeholder: str
    upsert_task: str
    insert_history: str
    insert_gap: str

    @classmethod
    def build(cls, hook: DbApiHook, tables: Tables) -> Statements:
        dialect = hook.dialect

        def insert(table: str, columns: Sequence[tuple[str, str]]) -> str:
            names = [c for c, _ in columns]
            return str(dialect.generate_insert_sql(table, names, names))

        task_names = [c for c, _ in TASK_COLUMNS]
        updated = [c for c in task_names if c not in TASK_KEY and c != "first_seen_at"]
        sets = ", ".join(
            "status_changed_at = CASE WHEN cur.status = excluded.status "
            "THEN cur.status_changed_at ELSE excluded.status_changed_at END"
            if c == "status_changed_at"
            else f"{c} = excluded.{c}"
            for c in updated
        )
        upsert = (
            insert(f"{tables.tasks} AS cur", TASK_COLUMNS)
            + f" ON CONFLICT ({', '.join(TASK_KEY)}) DO UPDATE SET {sets}"
            # An older observation (a slower concurrent run) never overwrites a newer one.
            + " WHERE excluded.last_seen_at >= cur.last_seen_at"
        )
        return cls(
            tables=tables,
            placeholder=hook.placeholder,
            upsert_task=upsert,
            insert_history=insert(tables.history, HISTORY_COLUMNS)
            + f" ON CONFLICT ({', '.join(HISTORY_KEY)}) DO NOTHING",
            insert_gap=insert(tables.gaps, GAP_COLUMNS)
            + f" ON CONFLICT ({', '.join(GAP_KEY)}) DO NOTHING",
        )

    def select_stored(self, count: int) -> str:
        marks = ", ".join([self.placeholder] * count)
        p = self.placeholder
        # Identifiers are checked by table_name(); values are parameters.
        return (
            f"SELECT task_id, {', '.join(VALUE_COLUMNS)} FROM {self.tables.tasks} "  # noqa: S608
            f"WHERE project_id = {p} AND instance_id = {p} AND task_id IN ({marks})"
        )

    def newest_stored(self) -> str:
        p = self.placeholder
        return (
            f"SELECT MAX(create_time) FROM {self.tables.tasks} "  # noqa: S608
            f"WHERE project_id = {p} AND instance_id = {p}"
        )


# -- one instance ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Tasks of ``instance_id`` created after ``after`` and before ``before`` may be lost."""

    instance_id: str
    after: dt.datetime
    before: dt.datetime


@dataclass
class InstanceOutcome:
    """What writing one instance's listing changed."""

    inserted: int = 0
    updated: int = 0
    status_changes: int = 0
    history_rows: int = 0
    gap: Gap | None = None
    changed: list[str] = field(default_factory=list)


def find_gap(
    instance_id: str,
    listed: int,
    oldest_listed: dt.datetime | None,
    newest_stored: dt.datetime | None,
    window: int,
) -> Gap | None:
    """A gap when a full window is listed and its oldest task is newer than every stored one;
    ``None`` for an instance seen for the first time or a listing that overlaps the table."""
    if listed < window or oldest_listed is None or newest_stored is None:
        return None
    if oldest_listed <= newest_stored:
        return None
    return Gap(instance_id, newest_stored, oldest_listed)


def write_instance(
    conn: Any,
    statements: Statements,
    *,
    project_id: str,
    instance_id: str,
    records: Sequence[Mapping[str, Any]],
    listed: int,
    oldest_listed: dt.datetime | None,
    now: dt.datetime,
    window: int,
) -> InstanceOutcome:
    """Write one instance's listing in one transaction (committed here; rolled back and
    re-raised on any error).  The gap check reads the table before anything is written."""
    outcome = InstanceOutcome()
    seen = db_time(now)
    cursor = conn.cursor()
    try:
        cursor.execute(statements.newest_stored(), (project_id, instance_id))
        row = cursor.fetchone()
        newest = read_time(row[0]) if row else None
        stored: dict[str, dict[str, str | None]] = {}
        ids = [str(r["task_id"]) for r in records]
        if ids:
            cursor.execute(statements.select_stored(len(ids)), (project_id, instance_id, *ids))
            for task_id, *values in cursor.fetchall():
                stored[str(task_id)] = {
                    c: _stored_text(c, v) for c, v in zip(VALUE_COLUMNS, values, strict=True)
                }
        task_rows: list[tuple[Any, ...]] = []
        history_rows: list[tuple[Any, ...]] = []
        # A fixed order (by key) keeps concurrent writers of one instance free of deadlocks.
        for record in sorted(records, key=lambda r: str(r["task_id"])):
            task_id = str(record["task_id"])
            values = task_values(record)
            before = stored.get(task_id)
            if before is None:
                outcome.inserted += 1
            elif before != values:
                outcome.updated += 1
                outcome.changed.append(task_id)
                if before["status"] != values["status"]:
                    outcome.status_changes += 1
            task_rows.append((project_id, instance_id, task_id, *values.values(), seen, seen, seen))
            history_rows.append((project_id, instance_id, task_id, values["status"], seen))
        if task_rows:
            cursor.executemany(statements.upsert_task, task_rows)
            for history_row in history_rows:
                cursor.execute(statements.insert_history, history_row)
                outcome.history_rows += max(cursor.rowcount, 0)
        gap = find_gap(instance_id, listed, oldest_listed, newest, window)
        if gap is not None:
            cursor.execute(
                statements.insert_gap,
                (project_id, instance_id, db_time(gap.after), db_time(gap.before), seen),
            )
            # A concurrent run that recorded the same gap first reports it; this one does not.
            if cursor.rowcount != 0:
                outcome.gap = gap
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cursor.close()
    return outcome


# -- tables ---------------------------------------------------------------------------------


class HistoryTableError(Exception):
    """A history table is missing, or lacks a column the operator writes."""


def _columns(conn: Any, name: str) -> set[str] | None:
    """The column names of table ``name`` (lower case), or ``None`` if it cannot be read."""
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT * FROM {name} WHERE 1 = 0")  # noqa: S608 (checked name)
        return {str(d[0]).lower() for d in cursor.description or ()}
    except Exception:
        conn.rollback()  # PostgreSQL aborts the transaction of a failed statement
        return None
    finally:
        cursor.close()


def _create(conn: Any, sql: str) -> Exception | None:
    """Run one ``CREATE TABLE IF NOT EXISTS``; the error, if any, is returned (rolled back)."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        conn.commit()
        return None
    except Exception as exc:
        conn.rollback()
        return exc
    finally:
        cursor.close()


def prepare_tables(conn: Any, tables: Tables, *, create: bool) -> list[str]:
    """Check (and with ``create``, create) the three tables; returns the names created or
    found.  Two runs creating them at the same moment are safe: PostgreSQL can answer the
    loser of a ``CREATE TABLE IF NOT EXISTS`` race with a unique violation on its catalog; the
    table then exists, which is all that is needed, so that error is tolerated."""
    for name, columns, key in tables.definitions():
        present = _columns(conn, name)
        if present is None and create:
            error = _create(conn, create_table_sql(name, columns, key))
            present = _columns(conn, name)
            if present is None:
                raise HistoryTableError(
                    f"Could not create table {name}: {type(error).__name__}: {error}"
                )
        if present is None:
            raise HistoryTableError(
                f"Table {name} does not exist (or cannot be read) and create_tables is False: "
                "create it, or set create_tables=True"
            )
        missing = [c for c, _ in columns if c not in present]
        if missing:
            raise HistoryTableError(
                f"Table {name} has no column {missing[0]}"
                + (f" (nor {', '.join(missing[1:])})" if len(missing) > 1 else "")
                + f": the operator writes {', '.join(c for c, _ in columns)}; add the column "
                "or use another table"
            )
    conn.commit()
    return [t for t, _, _ in tables.definitions()]
