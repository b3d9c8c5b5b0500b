"""``IoTDAInstanceTaskListOperator``: dump IoTDA instance task lists to XCom or to storage.

Importing this module is cheap: the hook (and ``requests``) is imported when the task runs.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import threading
import time
import uuid
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
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What could move a rendered destination somewhere else than its template says.
_UNSAFE_DESTINATION = re.compile(r"[?#\x00-\x1f\x7f]|%2[fF]|%5[cC]")


def _is_template(value: object) -> bool:
    """Whether ``value`` still holds Jinja markup (it is checked after rendering then)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(_is_template(v) for v in value)
    return False


def _names(value: object, field_name: str) -> object:
    """Accept the forms a rendered template gives a list: JSON or Python list text."""
    if isinstance(value, str) and value.strip().startswith("["):
        text = value.strip()
        try:
            return json.loads(text)
        except ValueError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(
                    f"{field_name} must be a name, a comma-separated string or a list of names; "
                    f"got {text[:80]!r}"
                ) from exc
    return value


def parse_instance_ids(value: object, field_name: str = "instance_ids") -> list[str] | None:
    """``None`` (the connection's instance), one ID, or a list of IDs; deduplicated, in order.

    A string may hold several IDs separated by commas or spaces, or a JSON list (as a template
    rendered from a Variable gives it).
    """
    if value is None:
        return None
    value = _names(value, field_name)
    items: list[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(
            f"{field_name} must be an instance ID or a list of instance IDs "
            f"(1 to 36 characters of [a-f0-9-]); got {type(value).__name__}"
        )
    if not items:
        raise ValueError(
            f"{field_name} must name at least one instance (or be None for the connection's "
            "instance)"
        )
    ids = [validation.instance_id(item, f"{field_name}[{i}]") for i, item in enumerate(items)]
    return list(dict.fromkeys(ids))


def _optional_names(value: object, field_name: str, check: Any) -> frozenset[str] | None:
    if value is None:
        return None
    result: frozenset[str] = check(_names(value, field_name), field_name)
    return result


def _window(after: object, before: object) -> tuple[dt.datetime | None, dt.datetime | None]:
    start = validation.timestamp(after, "created_after")
    end = validation.timestamp(before, "created_before")
    if start is not None and end is not None and start >= end:
        raise ValueError(
            f"created_after must be earlier than created_before (the window is "
            f"created_after <= create_time < created_before); got {start.isoformat()} and "
            f"{end.isoformat()}"
        )
    return start, end


def _destination_text(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
    elif hasattr(value, "protocol") and hasattr(value, "path"):  # an ObjectStoragePath
        return str(value)
    else:
        raise ValueError(
            "destination must be None (XCom), a path or URL string, or an ObjectStoragePath; "
            f"got {type(value).__name__}"
        )
    if not text:
        raise ValueError(
            "destination must be None (XCom) or a path/URL such as "
            "file:///data/iotda/{{ ds }}/tasks.jsonl; got an empty string"
        )
    if _UNSAFE_DESTINATION.search(text) or any(
        segment in (".", "..") for segment in _URL_SCHEME.sub("", text).split("/")
    ):
        raise ValueError(
            "destination must not contain '.' or '..' segments, '?', '#', an encoded '/' or "
            f"'\\' (%2F, %5C) or control characters; got {text!r}"
        )
    if not _URL_SCHEME.match(text) and not text.startswith("/"):
        raise ValueError(
            "destination must be an absolute path or a URL such as "
            "file:///data/iotda/tasks.jsonl or s3://aws_default@bucket/iotda/tasks.csv; "
            f"got {text!r}"
        )
    return text


def resolve_format(destination: str | None, output_format: object) -> str | None:
    """The output format: ``output_format`` if given (it must agree with a known suffix of
    ``destination``), else inferred from the suffix; ``None`` for XCom output."""
    if destination is None:
        if output_format is not None:
            raise ValueError(
                "output_format applies only when destination is set; XCom output is always a "
                f"list of records (got output_format={output_format!r} and destination=None)"
            )
        return None
    inferred = records.infer_format(destination)
    if output_format is None or output_format == "":
        if inferred is None:
            raise ValueError(
                f"output_format is not given and cannot be inferred from destination "
                f"{destination!r}: use a suffix {', '.join(records.SUFFIX_FORMATS)} or set "
                f"output_format to one of {', '.join(records.OUTPUT_FORMATS)}"
            )
        return inferred
    fmt = validation.one_of(output_format, "output_format", records.OUTPUT_FORMATS)
    if inferred is not None and inferred != fmt:
        raise ValueError(
            f"output_format={fmt!r} contradicts the suffix of destination {destination!r} "
            f"(which means {inferred!r}); change one of them"
        )
    return fmt


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

    :param iotda_conn_id: connection of type ``huaweicloud_iotda``.
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
            return not (only_literal and any(_is_template(v) for v in values))

        checked: dict[str, Any] = {}
        if ready(self.instance_ids):
            checked["instance_ids"] = parse_instance_ids(self.instance_ids)
        if ready(self.task_types):
            checked["task_types"] = _optional_names(
                self.task_types, "task_types", validation.task_types
            )
        if ready(self.statuses):
            checked["statuses"] = _optional_names(
                self.statuses, "statuses", validation.task_statuses
            )
        if ready(self.created_after, self.created_before):
            checked["window"] = _window(self.created_after, self.created_before)
        if ready(self.destination, self.output_format):
            destination = None if self.destination is None else _destination_text(self.destination)
            checked["destination"] = destination
            checked["output_format"] = resolve_format(destination, self.output_format)
        return checked

    # -- execution ---------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Fetch, filter, and return the records or write them and return a summary."""
        checked = self._check_fields(only_literal=False)
        destination: str | None = checked["destination"]
        output_format: str | None = checked["output_format"]
        task_types: frozenset[str] | None = checked["task_types"]
        statuses: frozenset[str] | None = checked["statuses"]
        created_after, created_before = checked["window"]

        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        config = IoTDAHook(self.iotda_conn_id).config  # validates; masks the SK and token
        instance_ids = checked["instance_ids"] or self._default_instance(config)
        self.log.info(
            "Listing tasks of %d instance(s) in project %s (types=%s, statuses=%s, "
            "created in [%s, %s)) with up to %d at once",
            len(instance_ids),
            config.project_id,
            ",".join(sorted(task_types)) if task_types else "any",
            ",".join(sorted(statuses)) if statuses else "any",
            created_after.isoformat() if created_after else "-inf",
            created_before.isoformat() if created_before else "+inf",
            min(self.max_concurrency, len(instance_ids)),
        )

        def keep(task: InstanceTask) -> bool:
            return records.matches(
                task,
                task_types=task_types,
                statuses=statuses,
                created_after=created_after,
                created_before=created_before,
            )

        results = self._fetch_all(config, instance_ids, keep)
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
        dumped = [r for r in results if r.error is None]
        all_records = [record for r in dumped for record in r.records]

        if destination is None:
            self.log.info(
                "Returning %d record(s) of %d instance(s) as XCom%s",
                len(all_records),
                len(dumped),
                f"; skipped {len(skipped)} instance(s)" if skipped else "",
            )
            return all_records

        assert output_format is not None
        data = records.serialise(all_records, output_format)
        path = self._write(destination, data)
        summary = {
            "destination": destination,
            "format": output_format,
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
                output_format,
                len(data),
                summary["by_type"],
                summary["by_status"],
                f"; skipped {len(skipped)} instance(s)" if skipped else "",
            )
        else:
            self.log.info(
                "No task matched: wrote an empty %s file to %s (%d bytes)%s",
                output_format,
                path,
                len(data),
                f"; skipped {len(skipped)} instance(s)" if skipped else "",
            )
        return summary

    def _default_instance(self, config: IoTDAConnectionConfig) -> list[str]:
        if config.instance_id:
            return [config.instance_id]
        raise ValueError(
            f"instance_ids is required: neither the operator nor connection "
            f"{self.iotda_conn_id!r} (extra 'instance_id') names an instance"
        )

    def _fetch_all(
        self,
        config: IoTDAConnectionConfig,
        instance_ids: list[str],
        keep: Callable[[InstanceTask], bool],
    ) -> list[InstanceResult]:
        """Fetch every instance (bounded concurrency); results in the order of ``instance_ids``.

        With ``on_instance_error='fail'`` the first failure cancels the instances not started.
        """
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        hooks = _HookPool(self.iotda_conn_id, config)
        results: dict[str, InstanceResult] = {}
        workers = min(self.max_concurrency, len(instance_ids))
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="iotda-tasks") as pool:
                futures: dict[Future[InstanceResult], str] = {
                    pool.submit(
                        _fetch_instance, hooks, instance_id, config.project_id, keep, self.page_size
                    ): instance_id
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

    def _may_skip(self, error: BaseException) -> bool:
        """Only IoTDA errors (after retries) may be skipped; anything else is a bug or a
        configuration problem and fails the task."""
        from airflow_provider_iotda.errors import IoTDAError

        return self.on_instance_error == "skip" and isinstance(error, IoTDAError)

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

    def _write(self, destination: str, data: bytes) -> ObjectStoragePath:
        from airflow.sdk import ObjectStoragePath

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
        self._config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._hooks: list[_PageCountingHook] = []

    def get(self) -> _PageCountingHook:
        hook: _PageCountingHook | None = getattr(self._local, "hook", None)
        if hook is None:
            hook = _page_counting_hook_class()(self._conn_id, self._config)
            self._local.hook = hook
            with self._lock:
                self._hooks.append(hook)
        return hook

    def close(self) -> None:
        with self._lock:
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook.close()


if TYPE_CHECKING:

    class _PageCountingHook(IoTDAHook):
        pages: int

        def __init__(self, conn_id: str, config: IoTDAConnectionConfig) -> None: ...


_HOOK_CLASS: type[_PageCountingHook] | None = None


def _page_counting_hook_class() -> type[_PageCountingHook]:
    """An ``IoTDAHook`` that counts the pages it fetched (built lazily: the hook is heavy)."""
    global _HOOK_CLASS
    if _HOOK_CLASS is None:
        from airflow_provider_iotda.hooks.iotda import IoTDAHook
        from airflow_provider_iotda.models import InstanceTaskPage

        class PageCountingHook(IoTDAHook):
            def __init__(self, conn_id: str, config: IoTDAConnectionConfig) -> None:
                super().__init__(conn_id)
                self.__dict__["config"] = config  # the cached_property, already validated
                self.pages = 0

            def list_instance_tasks(self, *args: Any, **kwargs: Any) -> InstanceTaskPage:
                page = super().list_instance_tasks(*args, **kwargs)
                self.pages += 1
                return page

        _HOOK_CLASS = PageCountingHook  # type: ignore[assignment]
    assert _HOOK_CLASS is not None
    return _HOOK_CLASS


def _fetch_instance(
    hooks: _HookPool,
    instance_id: str,
    project_id: str,
    keep: Callable[[InstanceTask], bool],
    page_size: int | None,
) -> InstanceResult:
    """Every page of one instance; an error is returned in the result, not raised."""
    result = InstanceResult(instance_id)
    hook = hooks.get()
    hook.pages = 0
    started = time.monotonic()
    try:
        for task in hook.iter_instance_tasks(instance_id, page_size=page_size):
            result.listed += 1
            if keep(task):
                result.records.append(records.task_record(instance_id, project_id, task))
    except Exception as exc:
        result.records = []
        result.error = exc
    finally:
        result.pages = hook.pages
        result.seconds = time.monotonic() - started
    return result


# -- storage ---------------------------------------------------------------------------------


def write_object(path: ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` as the whole object at ``path``, or leave nothing new behind.

    Local files (``file``/``local``) are written to a hidden temporary sibling, synced and
    renamed over the target (atomic on POSIX; parents are created).  Other schemes get the
    whole object in one write (a single PUT on object stores); if that fails, a partial object
    that did not exist before is removed, and a buffered upload is discarded, not committed.
    """
    if (path.protocol or "file") in _LOCAL_PROTOCOLS:
        _write_local(path.path, data)
    else:
        _write_remote(path, data)


def _write_local(target: str, data: bytes) -> None:
    directory, name = os.path.split(target)
    os.makedirs(directory or ".", exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_remote(path: ObjectStoragePath, data: bytes) -> None:
    fs = path.fs
    key = path.path
    existed = _exists(fs, key)
    handle = fs.open(key, "wb")
    try:
        handle.write(data)
    except BaseException:
        _abandon(handle)
        _remove_new_object(fs, key, existed)
        raise
    try:
        handle.close()  # the commit: one PUT, or the completion of a multipart upload
    except BaseException:
        _remove_new_object(fs, key, existed)
        raise


def _exists(fs: Any, key: str) -> bool:
    try:
        return bool(fs.exists(key))
    except Exception:
        return False


def _abandon(handle: Any) -> None:
    """Throw a half-written file away without committing it (buffered uploads commit on close)."""
    discard = getattr(handle, "discard", None)
    if callable(discard):
        with contextlib.suppress(Exception):  # best effort; the caller re-raises the real error
            discard()
    try:
        handle.closed = True  # fsspec buffered files: close() / __del__ would upload the buffer
    except (AttributeError, TypeError):
        with contextlib.suppress(Exception):
            handle.close()


def _remove_new_object(fs: Any, key: str, existed: bool) -> None:
    if existed:
        return  # a failed single write leaves the previous object in place on object stores
    try:
        if fs.exists(key):
            fs.rm_file(key)
    except Exception:  # noqa: S110 - best effort; the caller re-raises the real error
        pass
