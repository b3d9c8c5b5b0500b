"""The instance API without a transport: what to request and how to read the answer.

The sync hook (requests) and the async hook (httpx) both build requests and parse answers
here, so the two can never disagree: a hook sends a :class:`Call` (method, URL, JSON body)
and hands the :class:`Answer` it got to the call's parser.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlencode

from airflow_provider_iotda import validation
from airflow_provider_iotda.errors import (
    IoTDAInvalidResponseError,
    IoTDAPaginationError,
    error_from_response,
)
from airflow_provider_iotda.models import (
    Instance,
    InstancePage,
    InstanceTask,
    InstanceTaskPage,
)

#: The list holds at most 20 tasks; anything near this size is not an IoTDA answer.
MAX_BODY_BYTES = 4 * 1024 * 1024
USER_AGENT = "airflow-provider-iotda"
#: Paging stops with ``IoTDAPaginationError`` past these (IoTDA keeps at most 20 tasks).
MAX_PAGES = 1000
MAX_TASKS = 10_000
MAX_INSTANCES = 10_000

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True)
class Answer:
    """What the service sent back: status, headers and the whole (capped) body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request: method, full URL, JSON body (``None``: no body) and its parser.

    ``content`` is the exact byte string to send (and to sign): a hook must send these bytes
    as they are, so that the body hash in the signature matches.
    """

    method: str
    url: str
    parse: Callable[[Answer], T]
    body: Mapping[str, Any] | None = None

    @property
    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode()


def _project_url(endpoint: str, project_id: str) -> str:
    return f"{endpoint.rstrip('/')}/v5/iot/{validation.project_id(project_id)}"


def _paged(url: str, offset: int | None, limit: int | None, marker: str | int | None) -> str:
    """``url`` with the paging query (each value validated) when there is one."""
    query: list[tuple[str, str]] = []
    if offset is not None:
        query.append(("offset", str(validation.offset(offset))))
    if limit is not None:
        query.append(("limit", str(validation.limit(limit))))
    if marker is not None:
        query.append(("marker", validation.marker(marker)))
    return f"{url}?{urlencode(query)}" if query else url


def instance_url(endpoint: str, project_id: str, instance_id: str) -> str:
    """URL of ``ShowInstance`` (and the base of an instance's other calls)."""
    instance = validation.instance_id(instance_id)
    return f"{_project_url(endpoint, project_id)}/iotda-instances/{instance}"


def instances_url(
    endpoint: str,
    project_id: str,
    *,
    offset: int | None = None,
    limit: int | None = None,
    marker: str | int | None = None,
) -> str:
    """Full URL of ``ListInstances``; every part is validated first (``ValueError``)."""
    return _paged(f"{_project_url(endpoint, project_id)}/iotda-instances", offset, limit, marker)


def task_url(endpoint: str, project_id: str, instance_id: str, instance_task_id: str) -> str:
    """URL of ``ShowInstanceTask``."""
    task = validation.instance_task_id(instance_task_id)
    return f"{instance_url(endpoint, project_id, instance_id)}/tasks/{task}"


def retry_task_url(endpoint: str, project_id: str, instance_id: str, instance_task_id: str) -> str:
    """URL of ``RetryInstanceTask`` (POST)."""
    return f"{task_url(endpoint, project_id, instance_id, instance_task_id)}/retry"


def resize_url(endpoint: str, project_id: str, instance_id: str) -> str:
    """URL of ``ResizeInstance`` (POST)."""
    return f"{instance_url(endpoint, project_id, instance_id)}/resize"


def resize_body(
    flavor_type: object, flavor_size: object, *, delay: object, is_auto_pay: object
) -> dict[str, Any]:
    """The ``ResizeInstance`` body, every field validated (``ValueError`` naming it)."""
    return {
        "flavor": {
            "type": validation.flavor_type(flavor_type),
            "size": validation.flavor_size(flavor_size),
        },
        "delay": validation.strict_bool(delay, "delay"),
        "is_auto_pay": validation.strict_bool(is_auto_pay, "is_auto_pay"),
    }


def tasks_url(
    endpoint: str,
    project_id: str,
    instance_id: str,
    *,
    offset: int | None = None,
    limit: int | None = None,
    marker: str | int | None = None,
) -> str:
    """Full URL of ``ListInstanceTasks``; every part is validated first (``ValueError``)."""
    return _paged(f"{instance_url(endpoint, project_id, instance_id)}/tasks", offset, limit, marker)


def base_headers(project_id: str) -> dict[str, str]:
    """Headers sent (and signed) with every call, as Huawei's SDK sends them."""
    return {
        "Content-Type": "application/json",
        "X-Project-Id": project_id,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


def read_json(answer: Answer) -> Any:
    """The answer's JSON, or the matching ``IoTDAError``.

    A 2xx body that is not JSON (truncated, an HTML error page) is marked retryable; whether a
    call is repeated is still the retry rule's choice (a POST is not).  A JSON body of the
    wrong shape is not retryable (the parsers below raise it).
    """
    status, body = answer.status, answer.body
    if not 200 <= status < 300:
        raise error_from_response(status, answer.headers, body)
    if len(body) > MAX_BODY_BYTES:
        raise IoTDAInvalidResponseError(
            f"IoTDA answer of {len(body)} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
            status=status,
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # too deep a nesting
        snippet = body[:80].decode("utf-8", "replace")
        raise IoTDAInvalidResponseError(
            f"IoTDA answered {status} with a body that is not JSON: {snippet!r}",
            retryable=True,
            status=status,
        ) from exc


def parse_tasks_response(status: int, headers: Mapping[str, str], body: bytes) -> InstanceTaskPage:
    """A ``ListInstanceTasks`` answer as a page, or the matching ``IoTDAError``."""
    return parse_task_page(Answer(status, headers, body))


def parse_task_page(answer: Answer) -> InstanceTaskPage:
    """``ListInstanceTasks``: the page of tasks."""
    return InstanceTaskPage.from_dict(read_json(answer))


def parse_task(answer: Answer) -> InstanceTask:
    """``ShowInstanceTask`` / ``RetryInstanceTask``: one task (with ``progress``)."""
    return InstanceTask.from_dict(read_json(answer), "")


def parse_instance(answer: Answer) -> Instance:
    """``ShowInstance``: the instance."""
    return Instance.from_dict(read_json(answer))


def parse_instance_page(answer: Answer) -> InstancePage:
    """``ListInstances``: a page of instances."""
    return InstancePage.from_dict(read_json(answer))


def parse_order_id(answer: Answer) -> str | None:
    """``ResizeInstance``: IoTDA's ``order_id`` (``None`` when the answer has none)."""
    data = read_json(answer)
    if not isinstance(data, Mapping):
        raise IoTDAInvalidResponseError(
            f"IoTDA answer is a {type(data).__name__}, expected an object with 'order_id'",
            status=answer.status,
        )
    order_id = data.get("order_id")
    if order_id is None or order_id == "":
        return None
    if isinstance(order_id, bool) or not isinstance(order_id, str | int):
        raise IoTDAInvalidResponseError(
            f"IoTDA answer has order_id={order_id!r}; expected a string", status=answer.status
        )
    return str(order_id)


def list_tasks_call(
    endpoint: str,
    project_id: str,
    instance_id: str,
    *,
    offset: int | None = None,
    limit: int | None = None,
    marker: str | int | None = None,
) -> Call[InstanceTaskPage]:
    url = tasks_url(endpoint, project_id, instance_id, offset=offset, limit=limit, marker=marker)
    return Call("GET", url, parse_task_page)


def show_task_call(
    endpoint: str, project_id: str, instance_id: str, instance_task_id: str
) -> Call[InstanceTask]:
    return Call("GET", task_url(endpoint, project_id, instance_id, instance_task_id), parse_task)


def retry_task_call(
    endpoint: str, project_id: str, instance_id: str, instance_task_id: str
) -> Call[InstanceTask]:
    url = retry_task_url(endpoint, project_id, instance_id, instance_task_id)
    return Call("POST", url, parse_task)  # no body, as Huawei's SDK sends it


def show_instance_call(endpoint: str, project_id: str, instance_id: str) -> Call[Instance]:
    return Call("GET", instance_url(endpoint, project_id, instance_id), parse_instance)


def list_instances_call(
    endpoint: str,
    project_id: str,
    *,
    offset: int | None = None,
    limit: int | None = None,
    marker: str | int | None = None,
) -> Call[InstancePage]:
    url = instances_url(endpoint, project_id, offset=offset, limit=limit, marker=marker)
    return Call("GET", url, parse_instance_page)


def resize_call(
    endpoint: str,
    project_id: str,
    instance_id: str,
    *,
    flavor_type: object,
    flavor_size: object,
    delay: object = False,
    is_auto_pay: object = False,
) -> Call[str | None]:
    body = resize_body(flavor_type, flavor_size, delay=delay, is_auto_pay=is_auto_pay)
    return Call("POST", resize_url(endpoint, project_id, instance_id), parse_order_id, body)


class CappedBody:
    """Collects a streamed answer body, refusing one larger than :data:`MAX_BODY_BYTES`."""

    def __init__(
        self, status: int, headers: Mapping[str, str], limit: int = MAX_BODY_BYTES
    ) -> None:
        self.status = status
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        declared = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        if declared and declared.isdigit() and int(declared) > limit:
            raise IoTDAInvalidResponseError(
                f"IoTDA answer of {declared} bytes exceeds the {limit}-byte limit", status=status
            )

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.limit:
            raise IoTDAInvalidResponseError(
                f"IoTDA answer exceeds the {self.limit}-byte limit", status=self.status
            )
        self._chunks.append(chunk)

    def value(self) -> bytes:
        return b"".join(self._chunks)


class Listing(Protocol[R_co]):
    """A page of a marker-paged list: its records and the marker of the last one."""

    @property
    def records(self) -> Sequence[R_co]: ...

    @property
    def marker(self) -> str | None: ...


class MarkerWalk(Generic[R]):
    """Following ``marker`` across the pages of a list: what to request next, which records
    are new, when to stop.

    Both hooks drive it the same way::

        walk = PageWalk(instance_id, page_size)       # or InstanceWalk(page_size)
        while not walk.done:
            new = walk.take(<list call with limit=walk.limit, marker=walk.marker>)

    It ends at an empty or short page, yields a record listed twice only once, and raises
    ``IoTDAPaginationError`` when the service repeats a marker or goes on past
    :data:`MAX_PAGES` pages or ``max_records`` records, instead of looping forever.
    """

    def __init__(
        self,
        page_size: int | None,
        *,
        record_id: Callable[[R], str],
        what: str,
        max_records: int,
        note: str = "",
    ) -> None:
        self.limit = validation.limit(page_size, "page_size") if page_size is not None else None
        self.marker: str | None = None
        self.done = False
        self.pages = 0
        self._record_id = record_id
        self._what = what
        self._max_records = max_records
        self._note = note
        self._full_page = self.limit or validation.LIMIT_RANGE[1]
        self._markers: set[str] = set()
        self._seen: set[str] = set()

    def take(self, page: Listing[R]) -> list[R]:
        """The records of ``page`` not seen before; moves to the next marker or finishes."""
        self.pages += 1
        records = page.records
        new = [r for r in records if self._record_id(r) not in self._seen]
        self._seen.update(self._record_id(r) for r in new)
        if not records or len(records) < self._full_page:
            self.done = True
            return new
        if self.pages >= MAX_PAGES or len(self._seen) >= self._max_records:
            raise IoTDAPaginationError(
                f"IoTDA listed {len(self._seen)} {self._what} in {self.pages} pages"
                f"{self._note} and still had more; stopping at the limit of {MAX_PAGES} pages "
                f"or {self._max_records} records"
            )
        next_marker = page.marker or self._record_id(records[-1])
        if next_marker in self._markers or next_marker == self.marker:
            raise IoTDAPaginationError(
                f"IoTDA repeated page marker {next_marker!r} for {self._what}; "
                "stopping instead of fetching the same page again"
            )
        self._markers.add(next_marker)
        self.marker = next_marker
        return new


def _task_id(task: InstanceTask) -> str:
    return task.task_id


def _instance_id(instance: Instance) -> str:
    return instance.instance_id


class PageWalk(MarkerWalk[InstanceTask]):
    """The walk over an instance's tasks (IoTDA keeps at most 20, so one page is the rule)."""

    def __init__(self, instance_id: str, page_size: int | None = None) -> None:
        super().__init__(
            page_size,
            record_id=_task_id,
            what=f"tasks of instance {instance_id}",
            max_records=MAX_TASKS,
            note=" (it keeps at most 20)",
        )
        self.instance_id = instance_id


class InstanceWalk(MarkerWalk[Instance]):
    """The walk over the project's instances."""

    def __init__(self, page_size: int | None = None) -> None:
        super().__init__(
            page_size, record_id=_instance_id, what="instances", max_records=MAX_INSTANCES
        )
