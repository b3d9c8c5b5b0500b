"""``IoTDAInstanceTaskListOperator``: dump IoTDA instance task lists to XCom or to storage.

Importing this module is cheap: the hook (and ``requests``), the storage back ends and pyarrow
are imported when the task runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_iotda import records, validation
from airflow_provider_iotda.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)
from airflow_provider_iotda.config import DEFAULT_CONN_ID
from airflow_provider_iotda.storage import check_scheme

if TYPE_CHECKING:
    import datetime as dt

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_iotda.config import IoTDAConnectionConfig
    from airflow_provider_iotda.hooks.iotda import IoTDAHook
    from airflow_provider_iotda.models import InstanceTask

DEFAULT_MAX_CONCURRENCY = 16
MAX_CONCURRENCY_RANGE = (1, 64)
ON_INSTANCE_ERROR = ("fail", "skip")
ON_INCOMPLETE = ("warn", "fail")
IF_EXISTS = ("overwrite", "fail", "skip")
#: ``instance_ids`` value that audits every instance of the connection's project.
ALL_INSTANCES = "all"
#: XCom key under which each map index of a mapped task records, before fetching, the
#: destination it writes (see ``IoTDAInstanceTaskListOperator._indexes_sharing``).
DESTINATION_XCOM_KEY = "iotda_destination"


def utc_now() -> dt.datetime:
    """The wall clock (UTC), read only by the completeness check; tests patch this."""
    import pendulum

    return pendulum.now("UTC")


def check_format_library(output_format: str | None, field: str) -> None:
    """At DAG-parse time: a format whose library is missing here (Parquet without pyarrow) is
    an error naming ``field`` and the extra to install; found without importing the library."""
    extra = records.FORMAT_EXTRAS.get(output_format or "")
    if extra is None:
        return
    import importlib.util

    module, extra_name = extra
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"{field} means the {output_format} format, which needs {module}, and {module} is "
            f"not installed where this DAG is parsed: install airflow-provider-iotda with its "
            f"{extra_name} extra (it brings {module}) where DAGs are parsed and tasks run"
        )


@dataclass(frozen=True)
class _Arguments:
    """The rendered operator arguments, validated."""

    conn_id: str
    instance_ids: list[str] | None
    all_instances: bool
    task_types: frozenset[str] | None
    statuses: frozenset[str] | None
    created_after: dt.datetime | None
    created_before: dt.datetime | None
    destination: str | None
    output_format: str | None

    def keeps(self, task: InstanceTask) -> bool:
        """Whether ``task`` passes the filters."""
        return records.matches(
            task,
            task_types=self.task_types,
            statuses=self.statuses,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@dataclass
class InstanceResult:
    """What one instance gave: its records (after filters) and fetch statistics."""

    instance_id: str
    records: list[records.Record] = field(default_factory=list)
    listed: int = 0
    oldest: dt.datetime | None = None
    pages: int = 0
    seconds: float = 0.0
    error: BaseException | None = None


class IoTDAInstanceTaskListOperator(BaseOperator):
    """List the tasks of one or more IoTDA instances, to XCom or to a file/object.

    Every page of every instance is fetched (following ``marker``), several instances at once.
    Records are ``{"instance_id", "project_id", **task}`` with the API's field names and time
    strings, ordered by instance (as given, duplicates dropped) and then newest first.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda`` (templated).
    :param instance_ids: an instance ID, a list of them, a comma-separated string, or ``"all"``
        (every instance of the project, found with ListInstances); templated; default: the
        connection's ``instance_id``.
    :param task_types: keep only these types (``MODIFY``, ``CREATE``, ...); templated.
    :param statuses: keep only these statuses (``PENDING``, ``RUNNING``, ``SUCCESS``,
        ``FAILED``); templated.
    :param created_after: keep tasks created at or after this time (datetime or ISO string;
        templated, e.g. ``"{{ data_interval_start }}"``).
    :param created_before: keep tasks created strictly before this time (templated, e.g.
        ``"{{ data_interval_end }}"``): the window is half-open, so daily runs never overlap.
    :param destination: ``None`` to return the records as XCom, or a path/URL written through
        ``airflow.sdk.ObjectStoragePath`` (templated), e.g.
        ``"file:///data/iotda/{{ data_interval_start | ds }}/tasks.jsonl"`` or
        ``"s3://aws_default@bucket/{{ data_interval_start | ds }}.csv"`` (the audited window
        starts at ``data_interval_start``; ``{{ ds }}`` would name the run's date, a day later
        for daily runs).  A scheme no filesystem opens (``obs://``: Huawei OBS is written as
        S3, ``s3://conn_id@bucket/key`` with the OBS endpoint in the AWS connection's extra
        ``endpoint_url``) is refused when the DAG is parsed.  The map indexes of a mapped task
        should write different objects (e.g. ``{{ ti.map_index }}`` in the path): an index that
        finds another index of the same run writing its destination warns, or fails with
        ``if_exists="fail"``.
    :param output_format: ``json`` (one array), ``jsonl`` (one record a line), ``csv``
        (flattened, stable header) or ``parquet`` (the CSV columns, typed; needs the
        ``parquet`` extra, checked when the DAG is parsed); inferred from the destination's
        suffix when not given.
    :param if_exists: ``overwrite`` (default), ``fail`` or ``skip`` (the task is skipped) when
        the destination already exists; checked before anything is fetched.
    :param max_concurrency: instances fetched at once (1 to 64, default 16).
    :param on_instance_error: ``fail`` (default: the task fails, nothing is written) or
        ``skip`` (the instance is left out, logged and listed in the summary).
    :param on_incomplete: ``warn`` (default) or ``fail`` (fail, write nothing) when IoTDA may
        already have dropped tasks of the audited window (see ``records.completeness_gap``).
    :param page_size: records per request (1 to 500; default: the API's 500).

    Returns the list of records (XCom output) or, with a destination, a small summary:
    ``destination``, ``format``, ``records``, ``bytes``, ``instances``, ``instances_found``,
    ``by_instance``, ``by_type``, ``by_status``, ``skipped_instances``,
    ``incomplete_instances`` and ``empty``; never the data itself.  The object at the
    destination is written whole or not at all.
    """

    template_fields: Sequence[str] = (
        "iotda_conn_id",
        "instance_ids",
        "task_types",
        "statuses",
        "created_after",
        "created_before",
        "destination",
        "output_format",
    )
    ui_color = "#e0ecff"

    def __init__(
        self,
        *,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        instance_ids: str | Sequence[str] | None = None,
        task_types: str | Sequence[str] | None = None,
        statuses: str | Sequence[str] | None = None,
        created_after: dt.datetime | str | None = None,
        created_before: dt.datetime | str | None = None,
        destination: str | ObjectStoragePath | None = None,
        output_format: str | None = None,
        if_exists: str = "overwrite",
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_instance_error: str = "fail",
        on_incomplete: str = "warn",
        page_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.iotda_conn_id = iotda_conn_id
        self.instance_ids = instance_ids
        self.task_types = task_types
        self.statuses = statuses
        self.created_after = created_after
        self.created_before = created_before
        self.destination = destination
        self.output_format = output_format
        self.if_exists = validation.one_of(if_exists, "if_exists", IF_EXISTS)
        self.max_concurrency = validation.bounded_int(
            max_concurrency, "max_concurrency", *MAX_CONCURRENCY_RANGE
        )
        self.on_instance_error = validation.one_of(
            on_instance_error, "on_instance_error", ON_INSTANCE_ERROR
        )
        self.on_incomplete = validation.one_of(on_incomplete, "on_incomplete", ON_INCOMPLETE)
        self.page_size = validation.limit(page_size, "page_size") if page_size is not None else None
        self._check_at_parse_time()
        # What the last run read and wrote, for OpenLineage.
        self._lineage_source: tuple[str, list[str]] | None = None
        self._written: ObjectStoragePath | None = None
        # The other map indexes of this run found writing the same destination.
        self._shared_with: set[int] = set()

    def _check_at_parse_time(self) -> None:
        """Everything that is not a template; and what the literal parts of a templated
        destination tell already: a scheme no filesystem opens, a format whose library is
        missing here."""
        check_scheme(self.destination, "destination")
        self._check_fields(only_literal=True)
        if not validation.is_template(self.output_format):
            named = "" if self.destination is None else str(self.destination)
            check_format_library(
                self.output_format or records.infer_format(named),
                "output_format" if self.output_format else "destination",
            )

    def _check_fields(self, *, only_literal: bool) -> dict[str, Any]:
        """Validate the (rendered) fields; skip the ones still holding templates if asked."""

        def ready(*values: object) -> bool:
            return not (only_literal and any(validation.is_template(v) for v in values))

        checked: dict[str, Any] = {}
        if ready(self.iotda_conn_id):
            checked["conn_id"] = validation.conn_id(self.iotda_conn_id, "iotda_conn_id")
        if ready(self.instance_ids):
            every = (
                isinstance(self.instance_ids, str) and self.instance_ids.strip() == ALL_INSTANCES
            )
            checked["all_instances"] = every
            checked["instance_ids"] = None if every else validation.instance_ids(self.instance_ids)
        if ready(self.task_types):
            checked["task_types"] = (
                None if self.task_types is None else validation.task_types(self.task_types)
            )
        if ready(self.statuses):
            checked["statuses"] = (
                None if self.statuses is None else validation.task_statuses(self.statuses)
            )
        if ready(self.created_after, self.created_before):
            window = validation.time_window(self.created_after, self.created_before)
            checked["created_after"], checked["created_before"] = window
        if ready(self.destination, self.output_format):
            destination = (
                None if self.destination is None else validation.destination(self.destination)
            )
            checked["destination"] = destination
            checked["output_format"] = records.resolve_format(destination, self.output_format)
        return checked

    # -- execution ---------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Check the destination, fetch, filter, and return the records or write them and
        return a summary."""
        args = _Arguments(**self._check_fields(only_literal=False))
        target = self._prepare_destination(args, context)
        results, found = self._fetch(args)
        dumped, skipped = self._fail_or_skip(results, args.destination)
        incomplete = self._check_completeness(args, dumped)
        if target is None:
            return self._to_xcom(dumped, skipped)
        assert args.destination is not None
        # Again before writing: the fetch took a while, other indexes may have started.
        self._shared_with = self._indexes_sharing(context, args.destination, claim=False)
        return self._write_with_summary(args, target, dumped, skipped, incomplete, found)

    # -- before fetching ---------------------------------------------------------------------

    def _prepare_destination(self, args: _Arguments, context: Context) -> ObjectStoragePath | None:
        """Everything that can fail about the destination, before any request to IoTDA: the
        format's library, the filesystem, ``if_exists``, map indexes sharing the object."""
        if args.destination is None:
            return None
        assert args.output_format is not None
        from airflow_provider_iotda import storage

        try:
            records.require_format(args.output_format)
        except ImportError as exc:
            raise AirflowFailException(str(exc)) from exc
        path = storage.open_or_fail(args.destination)
        self._shared_with = set()
        self._shared_with = self._indexes_sharing(context, args.destination, claim=True)
        self._refuse_existing(path, args.destination)
        return path

    def _indexes_sharing(self, context: Context, destination: str, *, claim: bool) -> set[int]:
        """The other map indexes of this task in this run that write ``destination`` too,
        compared on the rendered destinations each index records in XCom (``claim``: record
        ours first).  Warns about new ones, or fails with ``if_exists='fail'``; an unmapped
        task has none.  Indexes running at the same moment may still miss each other."""
        ti = context.get("ti")
        map_index = getattr(ti, "map_index", None)
        if ti is None or not isinstance(map_index, int) or map_index < 0:
            return set()
        if claim:
            ti.xcom_push(DESTINATION_XCOM_KEY, {"map_index": map_index, "destination": destination})
        pulled = ti.xcom_pull(task_ids=self.task_id, key=DESTINATION_XCOM_KEY)
        claims = pulled if isinstance(pulled, list) else [pulled]
        sharing = {
            c["map_index"]
            for c in claims
            if isinstance(c, dict)
            and c.get("destination") == destination
            and c.get("map_index") != map_index
        }
        new = sorted(sharing - self._shared_with)
        if new:
            others = (
                f"does map index {new[0]}"
                if len(new) == 1
                else f"do map indexes {', '.join(map(str, new))}"
            )
            message = (
                f"Map index {map_index} of {self.task_id} writes {destination}, and so {others} "
                "of this run: the indexes overwrite each other and only the last one's records "
                "remain; put something that differs per index into destination (e.g. "
                "{{ ti.map_index }})"
            )
            if self.if_exists == "fail":
                raise AirflowFailException(f"{message} (if_exists='fail'): not overwritten")
            self.log.warning(message)
        return sharing | self._shared_with

    def _refuse_existing(self, path: ObjectStoragePath, destination: str) -> None:
        """Apply ``if_exists='fail'`` / ``'skip'``; an unanswered check fails the task."""
        if self.if_exists == "overwrite":
            return
        from airflow_provider_iotda import storage

        present = storage.exists(path)
        if present is None:
            raise AirflowException(
                f"Could not check whether {destination} exists (if_exists={self.if_exists!r}); "
                "nothing was written"
            )
        if not present:
            return
        if self.if_exists == "skip":
            raise AirflowSkipException(f"{destination} exists (if_exists='skip'): not rewritten")
        raise AirflowFailException(f"{destination} exists (if_exists='fail'): not overwritten")

    # -- fetch -------------------------------------------------------------------------------

    def _fetch(self, args: _Arguments) -> tuple[list[InstanceResult], list[str] | None]:
        """Every page of every instance (bounded concurrency), in the order of the instances;
        and, with ``instance_ids="all"``, the instances found."""
        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        with IoTDAHook(args.conn_id) as first:
            config = first.config  # validates; masks the SK and token
            found = self._discover(first) if args.all_instances else None
        instance_ids = (
            found
            if found is not None
            else args.instance_ids or self._default_instance(args.conn_id, config)
        )
        self._lineage_source = (_iotda_namespace(config), list(instance_ids))
        self.log.info(
            "Listing tasks of %d instance(s) in project %s (types=%s, statuses=%s, "
            "created from %s up to %s) with up to %d at once",
            len(instance_ids),
            config.project_id,
            ",".join(sorted(args.task_types)) if args.task_types else "any",
            ",".join(sorted(args.statuses)) if args.statuses else "any",
            args.created_after.isoformat() if args.created_after else "-inf",
            args.created_before.isoformat() if args.created_before else "+inf",
            min(self.max_concurrency, len(instance_ids)),
        )
        if not instance_ids:
            return [], found
        hooks = _HookPool(args.conn_id, config)
        return self._fetch_all(hooks, instance_ids, args.keeps), found

    def _discover(self, hook: IoTDAHook) -> list[str]:
        """Every instance of the project (ListInstances, paged, loop-safe)."""
        try:
            found = list(dict.fromkeys(i.instance_id for i in hook.iter_instances()))
        except Exception as exc:
            raise AirflowException(
                f"Listing the IoTDA instances of project {hook.config.project_id} failed: {exc}"
            ) from exc
        self.log.info(
            "Found %d instance(s) in project %s: %s",
            len(found),
            hook.config.project_id,
            ", ".join(found) or "none",
        )
        return found

    @staticmethod
    def _default_instance(conn_id: str, config: IoTDAConnectionConfig) -> list[str]:
        if config.instance_id:
            return [config.instance_id]
        raise ValueError(
            f"instance_ids is required: neither the operator nor connection "
            f"{conn_id!r} (extra 'instance_id') names an instance"
        )

    def _fetch_all(
        self, hooks: _HookPool, instance_ids: list[str], keep: Callable[[InstanceTask], bool]
    ) -> list[InstanceResult]:
        """Fetch every instance; with ``on_instance_error='fail'`` the first failure cancels the
        instances not started.  Results in the order of ``instance_ids``."""
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        results: dict[str, InstanceResult] = {}
        workers = min(self.max_concurrency, len(instance_ids))
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="iotda-tasks") as pool:
                futures: dict[Future[InstanceResult], str] = {
                    pool.submit(_fetch_instance, hooks, instance_id, keep, self.page_size): (
                        instance_id
                    )
                    for instance_id in instance_ids
                }
                pending: set[Future[InstanceResult]] = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        if future.cancelled():
                            continue
                        result = future.result()
                        results[result.instance_id] = result
                        self._log_instance(result)
                        if result.error is not None and not self._may_skip(result.error):
                            for other in pending:
                                other.cancel()
        finally:
            hooks.close()
        ordered = [results[i] for i in instance_ids if i in results]
        self._log_fan_out(ordered, len(instance_ids), time.monotonic() - started)
        return ordered

    def _log_instance(self, result: InstanceResult) -> None:
        """A failed instance is a WARNING at once; the others are DEBUG lines (one INFO line
        sums them up after the fan-out, so 200 instances do not queue on the log lock)."""
        if result.error is not None:
            skipping = self._may_skip(result.error)
            self.log.warning(
                "%s %s%s: listing tasks failed after %d page(s), %.2f s: %s",
                "Skipped instance" if skipping else "Instance",
                result.instance_id,
                " (on_instance_error='skip')" if skipping else "",
                result.pages,
                result.seconds,
                result.error,
            )
        else:
            self.log.debug(
                "Instance %s: %d record(s) kept of %d task(s) listed in %d page(s), %.2f s",
                result.instance_id,
                len(result.records),
                result.listed,
                result.pages,
                result.seconds,
            )

    def _log_fan_out(self, results: list[InstanceResult], asked: int, seconds: float) -> None:
        listed = [r for r in results if r.error is None]
        self.log.info(
            "Listed %d of %d instance(s) in %.2f s: %d record(s) kept of %d task(s) listed in "
            "%d page(s); %d failed, %d not started; slowest instance %.2f s",
            len(listed),
            asked,
            seconds,
            sum(len(r.records) for r in listed),
            sum(r.listed for r in listed),
            sum(r.pages for r in results),
            len(results) - len(listed),
            asked - len(results),
            max((r.seconds for r in results), default=0.0),
        )

    # -- fail or skip ------------------------------------------------------------------------

    def _may_skip(self, error: BaseException) -> bool:
        """Only IoTDA errors (after retries) may be skipped; anything else is a bug or a
        configuration problem and fails the task."""
        from airflow_provider_iotda.errors import IoTDAError

        return self.on_instance_error == "skip" and isinstance(error, IoTDAError)

    def _fail_or_skip(
        self, results: list[InstanceResult], destination: str | None
    ) -> tuple[list[InstanceResult], list[dict[str, str]]]:
        """The instances listed and the ones skipped; raises if a failure may not be skipped."""
        failed = [r for r in results if r.error is not None]
        if any(r.error is not None and not self._may_skip(r.error) for r in failed):
            raise AirflowException(
                "Listing IoTDA instance tasks failed for "
                + "; ".join(f"instance {r.instance_id}: {r.error}" for r in failed)
                + (f" (output {destination} was not written)" if destination else "")
            ) from failed[0].error
        skipped = [{"instance_id": r.instance_id, "error": str(r.error)} for r in failed]
        return [r for r in results if r.error is None], skipped

    def _check_completeness(
        self, args: _Arguments, dumped: list[InstanceResult]
    ) -> list[dict[str, str | None]]:
        """The instances whose tasks of the window IoTDA may already have dropped: warned
        about, or (``on_incomplete='fail'``) the task fails and nothing is written."""
        now = utc_now()
        incomplete: list[dict[str, str | None]] = []
        for result in dumped:
            reason = records.completeness_gap(result.listed, result.oldest, args.created_after, now)
            if reason is not None:
                oldest = records.api_time(result.oldest) if result.oldest else None
                incomplete.append(
                    {"instance_id": result.instance_id, "oldest_listed": oldest, "reason": reason}
                )
        if not incomplete:
            return incomplete
        message = (
            f"The audit may be incomplete for {len(incomplete)} instance(s): "
            + "; ".join(
                f"{i['instance_id']} (oldest task listed {i['oldest_listed']}): {i['reason']}"
                for i in incomplete
            )
            + f"; IoTDA keeps at most {records.KEPT_TASKS} tasks per instance, for "
            f"{records.RETENTION_DAYS} days"
        )
        if self.on_incomplete == "fail":
            written = f" ({args.destination} was not written)" if args.destination else ""
            raise AirflowFailException(f"{message} (on_incomplete='fail'){written}")
        self.log.warning(message)
        return incomplete

    # -- output ------------------------------------------------------------------------------

    def _to_xcom(
        self, dumped: list[InstanceResult], skipped: list[dict[str, str]]
    ) -> list[records.Record]:
        all_records = [record for r in dumped for record in r.records]
        self.log.info(
            "Returning %d record(s) of %d instance(s) as XCom%s",
            len(all_records),
            len(dumped),
            _skipped_note(skipped),
        )
        return all_records

    def _write_with_summary(
        self,
        args: _Arguments,
        path: ObjectStoragePath,
        dumped: list[InstanceResult],
        skipped: list[dict[str, str]],
        incomplete: list[dict[str, str | None]],
        found: list[str] | None,
    ) -> dict[str, Any]:
        """Write the records whole to the destination; the summary is the XCom."""
        assert args.destination is not None
        assert args.output_format is not None
        all_records = [record for r in dumped for record in r.records]
        data = records.serialise(all_records, args.output_format)
        self._refuse_existing(path, args.destination)  # again: the fetch took a while
        from airflow_provider_iotda import storage

        storage.write_or_raise(
            path, args.destination, data, records.CONTENT_TYPES[args.output_format]
        )
        self._written = path
        summary = {
            "destination": args.destination,
            "format": args.output_format,
            "records": len(all_records),
            "bytes": len(data),
            "instances": [r.instance_id for r in dumped],
            "instances_found": found,
            "by_instance": {r.instance_id: len(r.records) for r in dumped},
            "by_type": records.count_by(all_records, "type"),
            "by_status": records.count_by(all_records, "status"),
            "skipped_instances": skipped,
            "incomplete_instances": incomplete,
            "empty": not all_records,
        }
        if all_records:
            self.log.info(
                "Wrote %d record(s) of %d instance(s) to %s (%s, %d bytes); by type %s; "
                "by status %s%s",
                len(all_records),
                len(dumped),
                path,
                args.output_format,
                len(data),
                summary["by_type"],
                summary["by_status"],
                _skipped_note(skipped),
            )
        else:
            self.log.info(
                "No task matched: wrote an empty %s file to %s (%d bytes)%s",
                args.output_format,
                path,
                len(data),
                _skipped_note(skipped),
            )
        return summary

    # -- lineage -----------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the IoTDA instances read and the object written (if any).

        An instance is a dataset named by its ID in the namespace
        ``iotda://{endpoint host}/{project_id}``; the object is named as
        ``ObjectStoragePath`` names it (``namespace``, ``key``).
        """
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        inputs: list[Dataset] = []
        if self._lineage_source is not None:
            namespace, instance_ids = self._lineage_source
            inputs = [Dataset(namespace=namespace, name=i) for i in instance_ids]
        outputs: list[Dataset] = []
        if self._written is not None:
            outputs = [Dataset(namespace=self._written.namespace, name=self._written.key)]
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _iotda_namespace(config: IoTDAConnectionConfig) -> str:
    """The OpenLineage namespace of a project's instances: endpoint host (and port) and project."""
    from urllib.parse import urlsplit

    return f"iotda://{urlsplit(config.endpoint).netloc}/{config.project_id}"


def _skipped_note(skipped: list[dict[str, str]]) -> str:
    return f"; skipped {len(skipped)} instance(s)" if skipped else ""


class _HookPool:
    """One hook (one ``requests.Session``) per worker thread, all sharing one validated config."""

    def __init__(self, conn_id: str, config: IoTDAConnectionConfig) -> None:
        self._conn_id = conn_id
        self.config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._hooks: list[IoTDAHook] = []

    def get(self) -> IoTDAHook:
        hook: IoTDAHook | None = getattr(self._local, "hook", None)
        if hook is None:
            from airflow_provider_iotda.hooks.iotda import IoTDAHook

            hook = IoTDAHook(self._conn_id, config=self.config)
            self._local.hook = hook
            with self._lock:
                self._hooks.append(hook)
        return hook

    def close(self) -> None:
        with self._lock:
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook.close()


def _fetch_instance(
    hooks: _HookPool,
    instance_id: str,
    keep: Callable[[InstanceTask], bool],
    page_size: int | None,
) -> InstanceResult:
    """Every page of one instance; an error is returned in the result, not raised."""
    from airflow_provider_iotda.api import PageWalk

    result = InstanceResult(instance_id)
    project_id = hooks.config.project_id
    started = time.monotonic()
    walk = PageWalk(instance_id, page_size)
    try:
        hook = hooks.get()
        while not walk.done:
            page = hook.list_instance_tasks(instance_id, limit=walk.limit, marker=walk.marker)
            for task in walk.take(page):
                result.listed += 1
                created = task.create_time
                if created is not None and (result.oldest is None or created < result.oldest):
                    result.oldest = created
                if keep(task):
                    result.records.append(records.task_record(instance_id, project_id, task))
    except Exception as exc:
        result.records = []
        result.error = exc
    finally:
        result.pages = walk.pages
        result.seconds = time.monotonic() - started
    return result
