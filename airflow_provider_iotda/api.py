"""The instance-task API without a transport: what to request and how to read the answer.

The sync hook (requests) and the async trigger (httpx) both build requests and parse answers
here, so the two can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

from airflow_provider_iotda import validation
from airflow_provider_iotda.errors import (
    IoTDAInvalidResponseError,
    IoTDAPaginationError,
    error_from_response,
)
from airflow_provider_iotda.models import InstanceTask, InstanceTaskPage

#: The list holds at most 20 tasks; anything near this size is not an IoTDA answer.
MAX_BODY_BYTES = 4 * 1024 * 1024
USER_AGENT = "airflow-provider-iotda"
#: Paging stops with ``IoTDAPaginationError`` past these (IoTDA keeps at most 20 tasks).
MAX_PAGES = 1000
MAX_TASKS = 10_000


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
    project = validation.project_id(project_id)
    instance = validation.instance_id(instance_id)
    query: list[tuple[str, str]] = []
    if offset is not None:
        query.append(("offset", str(validation.offset(offset))))
    if limit is not None:
        query.append(("limit", str(validation.limit(limit))))
    if marker is not None:
        query.append(("marker", validation.marker(marker)))
    url = f"{endpoint.rstrip('/')}/v5/iot/{project}/iotda-instances/{instance}/tasks"
    return f"{url}?{urlencode(query)}" if query else url


def base_headers(project_id: str) -> dict[str, str]:
    """Headers sent (and signed) with every call, as Huawei's SDK sends them."""
    return {
        "Content-Type": "application/json",
        "X-Project-Id": project_id,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


def parse_tasks_response(status: int, headers: Mapping[str, str], body: bytes) -> InstanceTaskPage:
    """Turn an answer into a page, or raise the matching ``IoTDAError``.

    A 2xx body that is not JSON (truncated, an HTML error page) is retryable: the GET can be
    repeated.  A JSON body of the wrong shape is not.
    """
    if not 200 <= status < 300:
        raise error_from_response(status, headers, body)
    if len(body) > MAX_BODY_BYTES:
        raise IoTDAInvalidResponseError(
            f"IoTDA answer of {len(body)} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
            status=status,
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # too deep a nesting
        snippet = body[:80].decode("utf-8", "replace")
        raise IoTDAInvalidResponseError(
            f"IoTDA answered {status} with a body that is not JSON: {snippet!r}",
            retryable=True,
            status=status,
        ) from exc
    return InstanceTaskPage.from_dict(data)


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


class PageWalk:
    """Following ``marker`` across pages: what to request next, which tasks are new, when to stop.

    Both hooks drive it the same way::

        walk = PageWalk(instance_id, page_size)
        while not walk.done:
            new_tasks = walk.take(<list call with limit=walk.limit, marker=walk.marker>)

    It ends at an empty or short page, yields a task listed twice only once, and raises
    ``IoTDAPaginationError`` when the service repeats a marker or goes on past
    :data:`MAX_PAGES` pages or :data:`MAX_TASKS` tasks, instead of looping forever.
    """

    def __init__(self, instance_id: str, page_size: int | None = None) -> None:
        self.instance_id = instance_id
        self.limit = validation.limit(page_size, "page_size") if page_size is not None else None
        self.marker: str | None = None
        self.done = False
        self.pages = 0
        self._full_page = self.limit or validation.LIMIT_RANGE[1]
        self._markers: set[str] = set()
        self._task_ids: set[str] = set()

    def take(self, page: InstanceTaskPage) -> list[InstanceTask]:
        """The tasks of ``page`` not seen before; moves to the next marker or finishes."""
        self.pages += 1
        new = [t for t in page.tasks if t.task_id not in self._task_ids]
        self._task_ids.update(t.task_id for t in new)
        if not page.tasks or len(page.tasks) < self._full_page:
            self.done = True
            return new
        if self.pages >= MAX_PAGES or len(self._task_ids) >= MAX_TASKS:
            raise IoTDAPaginationError(
                f"IoTDA listed {len(self._task_ids)} tasks in {self.pages} pages for instance "
                f"{self.instance_id} and still had more (it keeps at most 20); stopping at the "
                f"limit of {MAX_PAGES} pages or {MAX_TASKS} tasks"
            )
        next_marker = page.marker or page.tasks[-1].task_id
        if next_marker in self._markers or next_marker == self.marker:
            raise IoTDAPaginationError(
                f"IoTDA repeated page marker {next_marker!r} for instance {self.instance_id}; "
                "stopping instead of fetching the same page again"
            )
        self._markers.add(next_marker)
        self.marker = next_marker
        return new
