"""``IoTDAInstanceTaskListOperator``: dump IoTDA instance task lists to XCom or to storage.

Importing this module is cheap: the hook (and ``requests``) is imported when the task runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_iotda import records, validation
from airflow_provider_iotda.compat import AirflowException
from airflow_provider_iotda.config import DEFAULT_CONN_ID

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_iotda.config import IoTDAConnectionConfig
    from airflow_provider_iotda.hooks.iotda import IoTDAHook
    from airflow_provider_iotda.models import InstanceTask

DEFAULT_MAX_CONCURRENCY = 16
MAX_CONCURRENCY_RANGE = (1, 64)
ON_INSTANCE_ERROR = ("fail", "skip")


@dataclass(frozen=True)
class _Arguments:
    """The rendered operator arguments, validated."""

    conn_id: str
    instance_ids: list[str] | None
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
    pages: int = 0
    seconds: float = 0.0
    error: BaseException | None = None


class IoTDAInstanceTaskListOperator(BaseOperator):
    """List the tasks of one or more IoTDA instances, to XCom or to a file/object.

    Every page of every instance is fetched (following ``marker``), several instances at once.
    Records are ``{"instance_id", "project_id", **task}`` with the API's field names and time
    strings, ordered by instance (as given, duplicates dropped) and then newest first.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda`` (templated).
    :param instance_ids: an instance ID, a list of them, or a comma-separated string (templated);
        default: the connection's ``instance_id``.
    :param task_types: keep only these types (``MODIFY``, ``CREATE``, ...); templated.
    :param statuses: keep only these statuses (``PENDING``, ``RUNNING``, ``SUCCESS``,
        ``FAILED``); templated.
    :param created_after: keep tasks created at or after this time (datetime or ISO string;
        templated, e.g. ``"{{ data_interval_start }}"``).
    :param created_before: keep tasks created strictly before this time (templated, e.g.
        ``"{{ data_interval_end }}"``): the window is half-open, so daily runs never overlap.
    :param destination: ``None`` to return the records as XCom, or a path/URL written through
        ``airflow.sdk.ObjectStoragePath`` (templated), e.g.
        ``"file:///data/iotda/{{ ds }}/tasks.jsonl"`` or ``"s3://aws_default@bucket/{{ ds }}.csv"``.
    :param output_format: ``json`` (one array), ``jsonl`` (one record a line) or ``csv``
        (flattened, stable header); inferred from the destination's suffix when not given.
    :param max_concurrency: instances fetched at once (1 to 64, default 16).
    :param on_instance_error: ``fail`` (default: the task fails, nothing is written) or
        ``skip`` (the instance is left out, logged and listed in the summary).
    :param page_size: records per request (1 to 500; default: the API's 500).

    Returns the list of records (XCom output) or, with a destination, a small summary:
    ``destination``, ``format``, ``records``, ``bytes``, ``instances``, ``by_instance``,
    ``by_type``, ``by_status``, ``skipped_instances`` and ``empty``; never the data itself.
    The object at the destination is written whole or not at all.
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
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_instance_error: str = "fail",
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
        self.max_concurrency = validation.bounded_int(
            max_concurrency, "max_concurrency", *MAX_CONCURRENCY_RANGE
        )
        self.on_instance_error = validation.one_of(
            on_instance_error, "on_instance_error", ON_INSTANCE_ERROR
        )
        self.page_size = validation.limit(page_size, "page_size") if page_size is not None else None
        # Everything that is not a template is checked now, at DAG parse time.
        self._check_fields(only_literal=True)

    def _check_fields(self, *, only_literal: bool) -> dict[str, Any]:
        """Validate the (rendered) fields; skip the ones still holding templates if asked."""

        def ready(*values: object) -> bool:
            return not (only_literal and any(validation.is_template(v) for v in values))

        checked: dict[str, Any] = {}
        if ready(self.iotda_conn_id):
            checked["conn_id"] = validation.conn_id(self.iotda_conn_id, "iotda_conn_id")
        if ready(self.instance_ids):
            checked["instance_ids"] = validation.instance_ids(self.instance_ids)
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
        """Fetch, filter, and return the records or write them and return a summary."""
        args = _Arguments(**self._check_fields(only_literal=False))
        results = self._fetch(args)
        dumped, skipped = self._fail_or_skip(results, args.destination)
        if args.destination is None:
            return self._to_xcom(dumped, skipped)
        return self._write_with_summary(args, dumped, skipped)

    # -- fetch -------------------------------------------------------------------------------

    def _fetch(self, args: _Arguments) -> list[InstanceResult]:
        """Every page of every instance (bounded concurrency), in the order of the instances."""
        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        config = IoTDAHook(args.conn_id).config  # validates; masks the SK and token
        instance_ids = args.instance_ids or self._default_instance(args.conn_id, config)
        self.log.info(
            "Listing tasks of %d instance(s) in project %s (types=%s, statuses=%s, "
            "created in [%s, %s)) with up to %d at once",
            len(instance_ids),
            config.project_id,
            ",".join(sorted(args.task_types)) if args.task_types else "any",
            ",".join(sorted(args.statuses)) if args.statuses else "any",
            args.created_after.isoformat() if args.created_after else "-inf",
            args.created_before.isoformat() if args.created_before else "+inf",
            min(self.max_concurrency, len(instance_ids)),
        )
        return self._fetch_all(_HookPool(args.conn_id, config), instance_ids, args.keeps)

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
        return [results[i] for i in instance_ids if i in results]

    def _log_instance(self, result: InstanceResult) -> None:
        if result.error is not None:
            self.log.error(
                "Instance %s: listing tasks failed after %d page(s), %.2f s: %s",
                result.instance_id,
                result.pages,
                result.seconds,
                result.error,
            )
        else:
            self.log.info(
                "Instance %s: %d record(s) kept of %d task(s) listed in %d page(s), %.2f s",
                result.instance_id,
                len(result.records),
                result.listed,
                result.pages,
                result.seconds,
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
        for item in skipped:
            self.log.warning(
                "Skipped instance %s (on_instance_error='skip'): %s",
                item["instance_id"],
                item["error"],
            )
        return [r for r in results if r.error is None], skipped

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
        self, args: _Arguments, dumped: list[InstanceResult], skipped: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Write the records whole to the destination; the summary is the XCom."""
        assert args.destination is not None
        assert args.output_format is not None
        all_records = [record for r in dumped for record in r.records]
        data = records.serialise(all_records, args.output_format)
        path = _write(args.destination, data)
        summary = {
            "destination": args.destination,
            "format": args.output_format,
            "records": len(all_records),
            "bytes": len(data),
            "instances": [r.instance_id for r in dumped],
            "by_instance": {r.instance_id: len(r.records) for r in dumped},
            "by_type": records.count_by(all_records, "type"),
            "by_status": records.count_by(all_records, "status"),
            "skipped_instances": skipped,
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


def _skipped_note(skipped: list[dict[str, str]]) -> str:
    return f"; skipped {len(skipped)} instance(s)" if skipped else ""


def _write(destination: str, data: bytes) -> ObjectStoragePath:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_iotda.storage import write_object

    try:
        path = ObjectStoragePath(destination)
        write_object(path, data)
    except Exception as exc:
        raise AirflowException(
            f"Could not write {destination}: {type(exc).__name__}: {exc}; "
            "no partial object was left at the destination"
        ) from exc
    return path


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
                if keep(task):
                    result.records.append(records.task_record(instance_id, project_id, task))
    except Exception as exc:
        result.records = []
        result.error = exc
    finally:
        result.pages = walk.pages
        result.seconds = time.monotonic() - started
    return result
