"""``IoTDAInstanceTasksToSqlOperator``: the audit history of IoTDA instance tasks in a SQL table.

Importing this module is cheap: the SQL providers, the IoTDA hook and ``requests`` are imported
when the task runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_iotda import validation
from airflow_provider_iotda.compat import AirflowException, AirflowFailException
from airflow_provider_iotda.config import DEFAULT_CONN_ID
from airflow_provider_iotda.operators import iotda as list_operator
from airflow_provider_iotda.operators.iotda import (
    DEFAULT_MAX_CONCURRENCY,
    IoTDAInstanceTaskListOperator,
)
from airflow_provider_iotda.transfers.sql_history import DEFAULT_TABLE, table_name

if TYPE_CHECKING:
    import datetime as dt

    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Connection, Context

    from airflow_provider_iotda.operators.iotda import InstanceResult
    from airflow_provider_iotda.transfers.sql_history import Gap, InstanceOutcome, Statements

ON_GAP = ("warn", "fail")


class IoTDAInstanceTasksToSqlOperator(IoTDAInstanceTaskListOperator):
    """Keep the audit history of IoTDA instance tasks in a SQL database.

    Every run lists the tasks of the instances (the list operator's fetch: every page, several
    instances at once) and upserts them into three tables named after ``table``:
    ``{table}`` (one row per task, latest values, ``first_seen_at`` / ``last_seen_at`` /
    ``status_changed_at`` of the run's UTC clock), ``{table}_status_history`` (the first time
    each status of a task was observed) and ``{table}_gaps`` (where tasks may have been lost
    between two runs: a full window of 20 tasks listed whose oldest is newer than every task
    stored for that instance).  Rows IoTDA no longer lists are kept untouched.  Each instance
    is written in one transaction; a re-run with nothing new changes only ``last_seen_at``.

    :param sql_conn_id: a connection whose hook is a common-sql ``DbApiHook`` (tested with
        ``postgres`` and ``sqlite``; the upserts use ``INSERT ... ON CONFLICT``); templated.
    :param table: the table name, a plain SQL identifier, optionally schema-qualified, at most
        48 characters (so that ``{table}_status_history`` fits PostgreSQL's 63); templated.
    :param iotda_conn_id: connection of type ``huaweicloud_iotda`` (templated).
    :param instance_ids: as the list operator's: an ID, a list, comma-separated, or ``"all"``
        (every instance of the project); default: the connection's ``instance_id``; templated.
    :param create_tables: create the three tables (and keys) if missing (default ``True``);
        either way an existing table missing a column is an error naming it.
    :param on_gap: ``warn`` (default: log a warning naming the instance and the interval) or
        ``fail`` (the task fails after writing everything it saw).
    :param max_concurrency: instances listed at once (1 to 64, default 16).
    :param on_instance_error: ``fail`` (default: nothing is written and the task fails, naming
        the instances that could not be listed; a retry writes them all) or ``skip`` (the other
        instances are written; the failed ones are logged and named in ``skipped_instances``).

    Returns (XCom) a summary, never the data: ``instances``, ``tasks_seen``, ``inserted``,
    ``updated`` (stored rows whose values changed), ``status_changes``, ``gaps``
    (``[{"instance_id", "after", "before"}]``, new this run), ``skipped_instances`` and
    ``table``.
    """

    template_fields: Sequence[str] = ("sql_conn_id", "table", "iotda_conn_id", "instance_ids")
    ui_color = "#dfe9d8"

    def __init__(
        self,
        *,
        sql_conn_id: str,
        table: str = DEFAULT_TABLE,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        instance_ids: str | Sequence[str] | None = None,
        create_tables: bool = True,
        on_gap: str = "warn",
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_instance_error: str = "fail",
        **kwargs: Any,
    ) -> None:
        unknown = sorted(_list_only().intersection(kwargs))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} keeps every task and writes no file: it takes no "
                f"{', '.join(unknown)} (see IoTDAInstanceTaskListOperator for those)"
            )
        super().__init__(
            iotda_conn_id=iotda_conn_id,
            instance_ids=instance_ids,
            max_concurrency=max_concurrency,
            on_instance_error=on_instance_error,
            **kwargs,
        )
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.create_tables = validation.strict_bool(create_tables, "create_tables")
        self.on_gap = validation.one_of(on_gap, "on_gap", ON_GAP)
        # Checked now, at DAG parse time, unless they are templates.
        if not validation.is_template(sql_conn_id):
            validation.conn_id(sql_conn_id, "sql_conn_id")
        if not validation.is_template(table):
            table_name(table)
        # The connection and table written by the last run, for OpenLineage.
        self._lineage_table: tuple[str, str] | None = None

    # -- execution ---------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the database and its tables, list the instances, write each in one
        transaction; then warn about (or fail on) new gaps."""
        from airflow_provider_iotda.transfers import sql_history

        # Every rendered value is checked before any connection is opened.
        table = table_name(self.table)
        conn_id = validation.conn_id(self.sql_conn_id, "sql_conn_id")
        args = list_operator._Arguments(**self._check_fields(only_literal=False))
        hook, _connection = _sql_hook(conn_id)
        tables = sql_history.Tables.named(table)
        statements = sql_history.Statements.build(hook, tables)
        db = hook.get_conn()
        try:
            try:
                sql_history.prepare_tables(db, tables, create=self.create_tables)
            except sql_history.HistoryTableError as exc:
                raise AirflowFailException(f"{exc} (connection {conn_id!r})") from exc
            self._lineage_table = (conn_id, table)
            results, _found = self._fetch(args)
            listed, skipped = self._fail_or_skip(results, table)
            now = list_operator.utc_now()
            outcomes = {r.instance_id: self._write(db, statements, r, now) for r in listed}
        finally:
            db.close()
        return self._summarise(table, listed, skipped, outcomes)

    def _write(
        self,
        db: Any,
        statements: Statements,
        result: InstanceResult,
        now: dt.datetime,
    ) -> InstanceOutcome:
        from airflow_provider_iotda import records
        from airflow_provider_iotda.transfers import sql_history

        if not result.records:
            return sql_history.InstanceOutcome()
        project_id = str(result.records[0]["project_id"])
        try:
            outcome = sql_history.write_instance(
                db,
                statements,
                project_id=project_id,
                instance_id=result.instance_id,
                records=result.records,
                listed=result.listed,
                oldest_listed=result.oldest,
                now=now,
                window=records.KEPT_TASKS,
            )
        except Exception as exc:
            raise AirflowException(
                f"Writing the tasks of instance {result.instance_id} to {statements.tables.tasks} "
                f"failed (rolled back; instances written before it are kept): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.log.debug(
            "Instance %s: %d new, %d updated, %d status change(s)",
            result.instance_id,
            outcome.inserted,
            outcome.updated,
            outcome.status_changes,
        )
        return outcome

    def _summarise(
        self,
        table: str,
        listed: list[InstanceResult],
        skipped: list[dict[str, str]],
        outcomes: dict[str, InstanceOutcome],
    ) -> dict[str, Any]:
        gaps = [o.gap for o in outcomes.values() if o.gap is not None]
        summary = {
            "table": table,
            "instances": [r.instance_id for r in listed],
            "tasks_seen": sum(len(r.records) for r in listed),
            "inserted": sum(o.inserted for o in outcomes.values()),
            "updated": sum(o.updated for o in outcomes.values()),
            "status_changes": sum(o.status_changes for o in outcomes.values()),
            "gaps": [_gap_item(g) for g in gaps],
            "skipped_instances": skipped,
        }
        self.log.info(
            "%s: %d task(s) of %d instance(s) seen; %d new, %d updated, %d status change(s), "
            "%d new gap(s)%s",
            table,
            summary["tasks_seen"],
            len(listed),
            summary["inserted"],
            summary["updated"],
            summary["status_changes"],
            len(gaps),
            f"; skipped {len(skipped)} instance(s)" if skipped else "",
        )
        if gaps:
            message = (
                f"IoTDA may have dropped tasks before they were recorded in {table}: "
                + "; ".join(_describe_gap(g) for g in gaps)
                + " (IoTDA lists only the newest 20 tasks of an instance: run more often)"
            )
            if self.on_gap == "fail":
                raise AirflowFailException(
                    f"{message} (on_gap='fail'; everything listed was written, the gaps are in "
                    f"{table}_gaps)"
                )
            self.log.warning(message)
        return summary

    # -- lineage -----------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the IoTDA instances read (as the list operator names them) and the
        table written, named as common-sql's lineage names tables (namespace
        ``{scheme}://{authority}`` of the hook's database info, name
        ``{database}.{schema}.{table}``)."""
        from airflow.providers.common.compat.openlineage.facet import Dataset

        lineage = super().get_openlineage_facets_on_complete(task_instance)
        if self._lineage_table is not None:
            conn_id, table = self._lineage_table
            hook, connection = _sql_hook(conn_id)
            namespace, name = _lineage_target(hook, connection, table)
            lineage.outputs = [Dataset(namespace=namespace, name=name)]
        return lineage


def _list_only() -> frozenset[str]:
    """Arguments of the list operator this one does not take (it keeps every task, writes no
    file): refused rather than passed on."""
    import inspect

    parent = inspect.signature(IoTDAInstanceTaskListOperator.__init__).parameters
    own = inspect.signature(IoTDAInstanceTasksToSqlOperator.__init__).parameters
    return frozenset(n for n, p in parent.items() if p.kind is p.KEYWORD_ONLY) - frozenset(own)


def _sql_hook(conn_id: str) -> tuple[DbApiHook, Connection]:
    """The connection's hook, which must be a common-sql ``DbApiHook`` whose dialect has
    ``INSERT ... ON CONFLICT``."""
    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
    except ImportError as exc:
        raise AirflowFailException(
            "IoTDAInstanceTasksToSqlOperator needs apache-airflow-providers-common-sql: "
            "install airflow-provider-iotda with its sql extra"
        ) from exc
    from airflow.sdk import BaseHook

    from airflow_provider_iotda.transfers.sql_history import ON_CONFLICT_DIALECTS

    connection = BaseHook.get_connection(conn_id)
    conn_type = connection.conn_type
    try:
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise AirflowFailException(
            f"sql_conn_id {conn_id!r} is a connection of type {conn_type!r}, which has no hook "
            f"here ({exc}); install the provider of that database (e.g. "
            "apache-airflow-providers-postgres) or use a postgres or sqlite connection"
        ) from exc
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(
            f"sql_conn_id {conn_id!r} is a connection of type {conn_type!r}, whose hook "
            f"{type(hook).__name__} is not a SQL hook (common-sql's DbApiHook): use a "
            "connection to a SQL database, e.g. of type postgres or sqlite"
        )
    dialect = hook.dialect_name
    if dialect not in ON_CONFLICT_DIALECTS:
        raise AirflowFailException(
            f"sql_conn_id {conn_id!r} is a connection of type {conn_type!r} (dialect "
            f"{dialect!r}): the audit tables are upserted with INSERT ... ON CONFLICT, which "
            f"the dialects {', '.join(ON_CONFLICT_DIALECTS)} have"
        )
    return hook, connection


def _lineage_target(hook: DbApiHook, connection: Connection, table: str) -> tuple[str, str]:
    """The table's OpenLineage ``(namespace, name)``: from the hook's database info when it
    gives one (``postgres://host:port``, ``database.schema.table``), else the connection type
    and the database (for SQLite, its file)."""
    schema, _, bare = table.rpartition(".")
    info = None
    try:
        info = hook.get_openlineage_database_info(connection)
    except Exception:  # the openlineage provider is optional
        info = None
    if info is not None:
        authority = getattr(info, "authority", None)
        namespace = f"{info.scheme}://{authority}" if authority else str(info.scheme)
        if not schema:
            try:
                schema = hook.get_openlineage_default_schema() or ""
            except Exception:
                schema = ""
        database = getattr(info, "database", None) or connection.schema
        parts = [database, schema, bare]
    else:
        namespace = f"{connection.conn_type}://{connection.host or ''}"
        parts = [schema, bare]
    return namespace, ".".join(p for p in parts if p)


def _gap_item(gap: Gap) -> dict[str, str]:
    from airflow_provider_iotda.records import api_time

    return {
        "instance_id": gap.instance_id,
        "after": api_time(gap.after),
        "before": api_time(gap.before),
    }


def _describe_gap(gap: Gap) -> str:
    item = _gap_item(gap)
    return (
        f"instance {gap.instance_id}: tasks created after {item['after']} and before "
        f"{item['before']} may be lost"
    )
