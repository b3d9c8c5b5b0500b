"""Values and helpers shared by the whole test suite (``from iotda_test_values import ...``).

This is the one home of the test credentials, IDs and API-body builders.  It has a unique name
because ``from conftest import ...`` is ambiguous: every test folder has a ``conftest.py``.
pytest puts ``tests/`` on ``sys.path`` (the root ``conftest.py`` lives there), and so does
``benchmarks/reliability_storm.py`` (for ``tests/integration/reliability/storm.py``).

The SK and token are recognisable so that leak checks can search for them.  Modules that want
credentials of their own on purpose (operators, simulator, storm, DAG tests) name them with
their own prefix (``OP_SK``, ``STORM_SK``...).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

from airflow_provider_iotda.auth import expected_authorization, parse_authorization

TEST_AK = "TESTACCESSKEY0000001"
TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_TOKEN = "TESTSECURITYTOKEN-do-not-leak-77aa"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"

#: Task IDs of the task lists the tests build (valid: [a-f0-9-]).
MODIFY_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
OLD_MODIFY_ID = "0a1b2c3d-0000-4000-8000-000000000001"
CREATE_ID = "0a1b2c3d-0000-4000-8000-000000000000"


#: The fields of a task object in a ``ListInstanceTasks`` answer.
TASK_FIELDS = (
    "task_id",
    "type",
    "status",
    "status_detail",
    "create_time",
    "start_time",
    "end_time",
    "target_config",
    "operate_window",
    "progress",
)


def tasks_url(instance_id: str = TEST_INSTANCE) -> str:
    """URL of ``ListInstanceTasks`` at the regional endpoint, for ``instance_id``."""
    return f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{instance_id}/tasks"


TASKS_URL = tasks_url()


def connection_json(login: str = TEST_AK, password: str = TEST_SK, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value for a ``huaweicloud_iotda`` connection at the regional
    endpoint; an extra given as ``None`` is left out."""
    extras: dict[str, object] = {
        "region": "cn-north-4",
        "project_id": TEST_PROJECT,
        "instance_id": TEST_INSTANCE,
        "max_retries": 3,
    }
    extras.update(extra)
    extras = {k: v for k, v in extras.items() if v is not None}
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": login, "password": password, "extra": extras}
    )


def endpoint_connection_json(
    endpoint: str,
    *,
    login: str = TEST_AK,
    password: str = TEST_SK,
    project_id: str = TEST_PROJECT,
    **extra: object,
) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value for an explicit ``endpoint``, such as a simulator's: no
    region, no retries setting and no default instance unless ``extra`` names them."""
    extras = {"endpoint": endpoint, "project_id": project_id, **extra}
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": login, "password": password, "extra": extras}
    )


def task_json(
    task_id: Any = MODIFY_ID,
    status: Any = "SUCCESS",
    *,
    type: Any = "MODIFY",
    create_time: Any = "2024-05-01T10:00:00.000Z",
    **extra: Any,
) -> dict[str, Any]:
    """One task object as the API lists it (any JSON value allowed, to test bad ones);
    ``extra`` adds or replaces fields (``status_detail``, ``target_config``...)."""
    return {
        "task_id": task_id,
        "type": type,
        "status": status,
        "create_time": create_time,
        "start_time": None,
        "end_time": None,
        "target_config": None,
        "operate_window": None,
        **extra,
    }


def page_json(
    tasks: list[dict[str, Any]], marker: Any = None, *, count: int | None = None
) -> dict[str, Any]:
    """A ``ListInstanceTasks`` answer; ``count`` defaults to the number of tasks."""
    return {
        "page": {"count": len(tasks) if count is None else count, "marker": marker},
        "tasks": list(tasks),
    }


def last_task_id(tasks: list[dict[str, Any]]) -> Any:
    """The marker of a page that ends with ``tasks`` (``None`` for no tasks)."""
    return tasks[-1]["task_id"] if tasks else None


_LAST_TASK: Any = object()


def page(*tasks: dict[str, Any], marker: Any = _LAST_TASK, count: int | None = None) -> Any:
    """A ``ListInstanceTasks`` answer holding ``tasks``; ``marker`` defaults to the last task's
    ID, ``count`` to the number of tasks."""
    tasks_list = list(tasks)
    chosen = last_task_id(tasks_list) if marker is _LAST_TASK else marker
    return page_json(tasks_list, chosen, count=count)


def pending_task(
    task_id: str = MODIFY_ID, status: str = "PENDING", **fields: Any
) -> dict[str, Any]:
    """A task being waited for: :func:`task_json`, PENDING, with a target flavor and a window."""
    fields = {
        "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
        "operate_window": {"start_time": "18:00", "end_time": "22:00"},
        **fields,
    }
    return task_json(task_id, status, **fields)


def history(status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    """An instance's list: the MODIFY waited for (newest, in ``status``), an older FAILED MODIFY
    and an old CREATE."""
    return page(
        pending_task(MODIFY_ID, status, create_time="2024-05-01T10:00:00.000Z", **extra),
        pending_task(
            OLD_MODIFY_ID,
            "FAILED",
            create_time="2024-04-01T10:00:00.000Z",
            status_detail="old failure",
        ),
        pending_task(CREATE_ID, "SUCCESS", type="CREATE", create_time="2024-01-01T00:00:00.000Z"),
    )


def verify_signature(request: Any, secret: str = TEST_SK) -> bool:
    """Whether a recorded request (requests-mock's or an ``httpx.Request``) carries a valid
    signature for ``secret``."""
    value = request.headers["Authorization"]
    parts = urlsplit(str(request.url))
    if isinstance(request, httpx.Request):
        received = dict(request.headers)  # httpx sends (and records) Host itself
        payload = request.content
    else:
        # requests adds Host only on the wire, after requests-mock has recorded the request.
        received = {**request.headers, "Host": parts.netloc}
        body = request.body or b""
        payload = body.encode() if isinstance(body, str) else body
    expected = expected_authorization(
        parse_authorization(value),
        secret,
        request.method,
        parts.path,
        parts.query,
        received,
        payload,
    )
    return bool(expected == value)


@contextmanager
def advance_clock_after(
    sim: Any,
    *steps: tuple[int, float],
    counter: Callable[[Any], int] = lambda sim: sim.counters.requests,
    name: str = "sim-clock-mover",
) -> Iterator[None]:
    """Move a simulator's clock by ``seconds`` once ``counter(sim)`` (by default the API
    requests it answered) has reached ``count``, for each ``(count, seconds)`` step in turn, so
    a task moves on only after the client has seen each state (no race with the wall clock)."""
    stop = threading.Event()

    def mover() -> None:
        for count, seconds in steps:
            while counter(sim) < count:
                if stop.wait(0.01):
                    return
            sim.advance(seconds)

    thread = threading.Thread(target=mover, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def return_values(dag_run: Any) -> dict[str, Any]:
    """The ``return_value`` XComs of a finished DAG run (``dag.test()``), by task ID."""
    from airflow import settings
    from airflow.models.xcom import XComModel

    assert settings.Session is not None
    with settings.Session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, key="return_value")
        ).all()
        return {row.task_id: XComModel.deserialize_value(row) for row in rows}


# -- Airflow internals the tests need, on every supported line ----------------------------------


def dag_bag(file_name: str) -> Any:
    """A ``DagBag`` of one file of the test DAGs folder (the DagBag moved in Airflow 3.2:
    ``airflow.dag_processing.dagbag``, before ``airflow.models.dagbag``)."""
    import importlib.util

    from airflow import settings

    if importlib.util.find_spec("airflow.dag_processing.dagbag") is not None:
        from airflow.dag_processing.dagbag import DagBag
    else:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=os.path.join(str(settings.DAGS_FOLDER), file_name))


def supervise_task_function() -> Any:
    """The supervisor's run-one-task function (``supervise_task``; ``supervise`` in 3.1)."""
    from airflow.sdk.execution_time import supervisor

    return getattr(supervisor, "supervise_task", None) or supervisor.supervise


def failure_type(name: str) -> str:
    """The exception type an ``on_failure_callback`` sees under ``dag.test()``: ``name``, but
    ``NoneType`` on Airflow 3.1 and 3.2, whose ``dag.test`` hands failure callbacks no exception
    (the task still fails, and its log holds the error)."""
    import airflow

    return "NoneType" if str(airflow.__version__).startswith(("3.1.", "3.2.")) else name


class _Upload(AbstractBufferedFile):  # type: ignore[misc]
    """A buffered upload as s3fs makes one: the object appears only when the last part is sent
    (one PUT, or the completion of a multipart upload)."""

    def _initiate_upload(self) -> None:
        self._parts: list[bytes] = []

    def _upload_chunk(self, final: bool = False) -> bool:
        self._parts.append(self.buffer.getvalue())
        if final:
            if self.fs.fail_commit:
                raise ConnectionResetError("connection reset while completing the upload")
            self.fs.store[self.path] = MemoryFile(self.fs, self.path, b"".join(self._parts))
        return True


class FakeObjectStore(MemoryFileSystem):  # type: ignore[misc]
    """An in-memory object store (fsspec) with contents of its own and injected faults.

    ``exists_failures``: how many ``exists`` calls raise ``TimeoutError``; ``fail_write``: a
    write buffers half its data, then raises; ``fail_commit``: the final PUT fails (a previous
    object stays as it was).  ``writes`` records each write's size, ``opened`` the keyword
    arguments of each open for writing.  Attach it with
    ``monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=store))``.
    """

    cachable = False

    def __init__(
        self, exists_failures: int = 0, fail_write: bool = False, fail_commit: bool = False
    ) -> None:
        super().__init__()
        self.store: dict[str, Any] = {}
        self.pseudo_dirs = [""]
        self.exists_failures = exists_failures
        self.fail_write = fail_write
        self.fail_commit = fail_commit
        self.writes: list[int] = []
        self.opened: list[dict[str, Any]] = []

    def exists(self, path: str, **kwargs: Any) -> bool:
        if self.exists_failures > 0:
            self.exists_failures -= 1
            raise TimeoutError("HEAD request timed out")
        return bool(super().exists(path, **kwargs))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "w" not in mode or "data" in kwargs:  # reads, and pipe_file() setting up a test
            return super()._open(path, mode, **kwargs)
        self.opened.append(dict(kwargs))
        handle = _Upload(self, self._strip_protocol(path), mode)
        buffered = handle.write

        def write(data: bytes) -> int:
            self.writes.append(len(data))
            if self.fail_write:
                buffered(data[: len(data) // 2])
                raise ConnectionResetError("connection reset during upload")
            return int(buffered(data))

        handle.write = write
        return handle
