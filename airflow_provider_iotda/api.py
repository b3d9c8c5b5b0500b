"""The instance-task API without a transport: what to request and how to read the answer.

The sync hook (requests) and the async trigger (httpx) both build requests and parse answers
here, so the two can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlencode

from airflow_provider_iotda import validation
from airflow_provider_iotda.errors import IoTDAInvalidResponseError, error_from_response
from airflow_provider_iotda.models import InstanceTaskPage

#: The list holds at most 20 tasks; anything near this size is not an IoTDA answer.
MAX_BODY_BYTES = 4 * 1024 * 1024
USER_AGENT = "airflow-provider-iotda"


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
