"""IoTDAInstanceTaskListOperator against a requests-mock IoTDA: parameters, paging, filters,
formats, concurrency, all-or-nothing writes, empty results, non-file storage."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from fsspec.implementations.memory import MemoryFileSystem
from iotda_test_values import TEST_INSTANCE, FakeObjectStore, tasks_url

from airflow_provider_iotda import records, storage
from airflow_provider_iotda.compat import AirflowException
from airflow_provider_iotda.operators import iotda as operator_module
from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

from .operator_fakes import (
    INSTANCE_A,
    INSTANCE_B,
    INSTANCE_C,
    OP_SK,
    OP_TOKEN,
    REPO,
    FakeIoTDA,
    LoopbackIoTDA,
    api_task,
    connection_json,
    expected,
    listing,
    op,
)

# Newest first, as the API lists them.
TASKS_A = [
    api_task(
        "a5",
        "MODIFY",
        "RUNNING",
        "2024-05-02T08:00:00.000Z",
        target_config={
            "flavor": {"type": "iotda.standard.s3", "size": 2},
            "charge_mode": "postPaid",
        },
        operate_window={"start_time": "18:00", "end_time": "22:00"},
    ),
    api_task("a4", "FREEZE", "SUCCESS", "2024-05-02T00:00:00.000Z"),  # = end of 05-01's window
    api_task("a3", "MODIFY", "FAILED", "2024-05-01T12:00:00.000Z", status_detail="no capacity"),
    api_task("a2", "UPDATE_ALLOW_LISTS", "SUCCESS", "2024-05-01T00:00:00.000Z"),  # = start
    api_task("a1", "CREATE", "SUCCESS", "2024-04-30T23:59:59.999Z"),
]
TASKS_B = [
    api_task("b2", "MODIFY", "SUCCESS", "2024-05-01T06:00:00.000Z"),
    api_task("b1", "UNFREEZE", "PENDING", "2024-05-01T05:00:00.000Z"),
]


# -- parameters ------------------------------------------------------------------------------


class TestParseTimeValidation:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"instance_ids": "NOT-HEX!"}, r"instance_ids item 0 must be 1 to 36 characters"),
            ({"instance_ids": [INSTANCE_A, "x" * 40]}, r"instance_ids item 1 must be"),
            ({"instance_ids": []}, r"instance_ids must name at least one instance"),
            ({"instance_ids": 42}, r"instance_ids must be an instance ID or a list"),
            ({"task_types": "modify"}, r"task_types must be upper-case names"),
            ({"task_types": []}, r"task_types must name at least one of CREATE, MODIFY"),
            ({"statuses": ["DONE!"]}, r"statuses must be upper-case names such as 'PENDING'"),
            ({"created_after": "yesterday"}, r"created_after must be a datetime or an ISO"),
            ({"created_before": 12}, r"created_before must be a datetime or an ISO"),
            (
                {"created_after": "2024-05-02", "created_before": "2024-05-01"},
                r"created_after must be earlier than created_before",
            ),
            ({"destination": "data/tasks.json"}, r"destination must be an absolute path or a URL"),
            ({"destination": "  "}, r"destination must be None \(XCom\) or a path/URL"),
            ({"destination": 3}, r"destination must be None \(XCom\), a path or URL string"),
            (
                {"destination": "file:///data/tasks.txt"},
                r"output_format is not given and cannot be inferred .*\.json, \.jsonl",
            ),
            (
                {"destination": "file:///data/tasks.csv", "output_format": "json"},
                r"output_format='json' contradicts the suffix of destination",
            ),
            (
                {"destination": "file:///data/tasks.txt", "output_format": "xml"},
                r"output_format must be one of csv, json, jsonl, parquet; got 'xml'",
            ),
            ({"output_format": "json"}, r"output_format applies only when destination is set"),
            ({"max_concurrency": 0}, r"max_concurrency must be an integer from 1 to 64; got 0"),
            ({"max_concurrency": 65}, r"max_concurrency must be an integer from 1 to 64"),
            ({"max_concurrency": True}, r"max_concurrency must be an integer from 1 to 64"),
            ({"on_instance_error": "ignore"}, r"on_instance_error must be one of fail, skip"),
            ({"page_size": 501}, r"page_size must be an integer from 1 to 500"),
            ({"iotda_conn_id": "two words"}, r"iotda_conn_id must be an Airflow connection ID"),
            ({"if_exists": "append"}, r"if_exists must be one of fail, overwrite, skip"),
            ({"on_incomplete": "ignore"}, r"on_incomplete must be one of fail, warn; got 'ignore'"),
            ({"instance_ids": "ALL"}, r"instance_ids item 0 must be 1 to 36 characters"),
        ],
    )
    def test_bad_values_fail_in_the_constructor(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            op(**kwargs)

    def test_templates_are_checked_only_after_rendering(self) -> None:
        task = op(
            instance_ids="{{ var.json.ids }}",
            task_types="{{ params.types }}",
            created_after="{{ data_interval_start }}",
            created_before="{{ data_interval_end }}",
            destination="{{ params.dest }}",
        )
        assert task.instance_ids == "{{ var.json.ids }}"

    def test_good_values(self) -> None:
        task = op(
            instance_ids=[INSTANCE_A, INSTANCE_B, INSTANCE_A],
            task_types="MODIFY, CREATE",
            statuses=["FAILED"],
            created_after=pendulum.datetime(2024, 5, 1),
            created_before="2024-05-02T00:00:00Z",
            destination="file:///data/iotda/{{ ds }}/tasks.ndjson",
            max_concurrency="8",  # type: ignore[arg-type]  (a rendered param)
        )
        assert task.max_concurrency == 8
        assert task.destination == "file:///data/iotda/{{ ds }}/tasks.ndjson"

    def test_destination_as_object_storage_path(self) -> None:
        task = op(destination=ObjectStoragePath("file:///data/x.csv"))
        assert task._check_fields(only_literal=False)["output_format"] == "csv"
        with pytest.raises(ValueError, match="contradicts"):
            op(destination=ObjectStoragePath("file:///data/x.csv"), output_format="jsonl")

    def test_template_fields(self) -> None:
        assert set(IoTDAInstanceTaskListOperator.template_fields) == {
            "iotda_conn_id",
            "instance_ids",
            "task_types",
            "statuses",
            "created_after",
            "created_before",
            "destination",
            "output_format",
        }

    def test_default_conn_id_matches_the_config(self) -> None:
        from airflow_provider_iotda.config import DEFAULT_CONN_ID

        assert operator_module.DEFAULT_CONN_ID == DEFAULT_CONN_ID
        assert op().iotda_conn_id == DEFAULT_CONN_ID


def test_import_is_cheap() -> None:
    """Over what ``import airflow.sdk`` loads anyway, the operator adds no HTTP client or hook."""
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_iotda.operators.iotda\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('airflow_provider_iotda.hooks', 'requests', 'httpx', 'urllib3', 'tenacity',"
        " 'uvicorn', 'starlette', 'pyarrow', 'airflow_provider_iotda.simulator')\n"
        "print(sorted(m for m in added if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


class TestRenderedValues:
    def test_rendered_fields_are_validated_before_any_request(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        task = op(instance_ids="{{ params.ids }}")
        task.render_template_fields({"params": {"ids": "not an id"}})
        with pytest.raises(ValueError, match=r"instance_ids item 0 must be 1 to 36 characters"):
            task.execute({})
        assert fake_iotda.requests == []

    def test_rendered_bad_window(self, fake_iotda: FakeIoTDA) -> None:
        task = op(created_after="{{ params.a }}", created_before="{{ params.b }}")
        task.render_template_fields({"params": {"a": "2024-05-02", "b": "2024-05-02"}})
        with pytest.raises(ValueError, match="created_after must be earlier than created_before"):
            task.execute({})
        assert fake_iotda.requests == []

    def test_rendered_destination_format_is_checked(self, fake_iotda: FakeIoTDA) -> None:
        task = op(destination="{{ params.dest }}", output_format="json")
        task.render_template_fields({"params": {"dest": "file:///tmp/iotda/x.csv"}})
        with pytest.raises(ValueError, match="contradicts"):
            task.execute({})
        assert fake_iotda.requests == []

    def test_templated_connection_id(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """As on the sensor: the connection may come from a param (one DAG, several accounts)."""
        monkeypatch.delenv("AIRFLOW_CONN_IOTDA_DEFAULT")
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_ACCOUNT_B", connection_json())
        fake_iotda.add(INSTANCE_A, TASKS_A)
        task = op(iotda_conn_id="{{ params.acct }}", instance_ids=INSTANCE_A)
        task.render_template_fields({"params": {"acct": "iotda_account_b"}})
        assert task.execute({}) == expected(INSTANCE_A, TASKS_A)

    def test_rendered_connection_id_is_validated(self, fake_iotda: FakeIoTDA) -> None:
        task = op(iotda_conn_id="{{ params.acct }}", instance_ids=INSTANCE_A)
        task.render_template_fields({"params": {"acct": "no such/../ account"}})
        with pytest.raises(ValueError, match="iotda_conn_id must be an Airflow connection ID"):
            task.execute({})
        assert fake_iotda.requests == []

    def test_rendered_values_are_used(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        task = op(
            instance_ids="{{ params.ids }}",
            task_types="{{ params.types }}",
            created_after="{{ data_interval_start }}",
            created_before="{{ data_interval_end }}",
            destination="file://" + str(tmp_path) + "/{{ ds }}/tasks.jsonl",
        )
        task.render_template_fields(
            {
                "ds": "2024-05-01",
                "data_interval_start": pendulum.datetime(2024, 5, 1),
                "data_interval_end": pendulum.datetime(2024, 5, 2),
                # as a Variable or param renders into a non-native template: Python list text
                "params": {"ids": [INSTANCE_B, INSTANCE_A], "types": ["MODIFY", "UNFREEZE"]},
            }
        )
        summary = task.execute({})
        written = (tmp_path / "2024-05-01" / "tasks.jsonl").read_text().splitlines()
        assert [json.loads(line)["task_id"] for line in written] == ["b2", "b1", "a3"]
        assert summary["instances"] == [INSTANCE_B, INSTANCE_A]


# -- XCom output -----------------------------------------------------------------------------


class TestXComOutput:
    def test_default_instance_is_the_connections(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(TEST_INSTANCE, TASKS_B)
        result = op().execute({})
        assert result == expected(TEST_INSTANCE, TASKS_B)
        json.dumps(result)  # JSON-serialisable as is

    def test_connection_without_instance_and_no_instance_ids(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(instance_id=None))
        with pytest.raises(ValueError, match=r"instance_ids is required.*'iotda_default'"):
            op().execute({})
        assert fake_iotda.requests == []

    def test_order_is_instances_as_given_then_newest_first(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        result = op(instance_ids=[INSTANCE_B, INSTANCE_A, INSTANCE_B]).execute({})
        assert result == expected(INSTANCE_B, TASKS_B) + expected(INSTANCE_A, TASKS_A)
        # deduplicated: one listing per instance
        assert len(fake_iotda.requests_for(INSTANCE_B)) == 1

    def test_comma_separated_instance_ids(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        result = op(instance_ids=f"{INSTANCE_A}, {INSTANCE_B}").execute({})
        assert [r["task_id"] for r in result] == ["a5", "a4", "a3", "a2", "a1", "b2", "b1"]

    def test_times_and_fields_are_the_apis(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A[:1])
        (record,) = op(instance_ids=INSTANCE_A).execute({})
        assert record["create_time"] == "2024-05-02T08:00:00.000Z"
        assert record["target_config"] == {
            "flavor": {"type": "iotda.standard.s3", "size": 2},
            "charge_mode": "postPaid",
        }
        assert record["operate_window"] == {"start_time": "18:00", "end_time": "22:00"}

    def test_every_page_is_fetched(self, fake_iotda: FakeIoTDA, capsys: Any) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        result = op(instance_ids=INSTANCE_A, page_size=2).execute({})
        assert [r["task_id"] for r in result] == ["a5", "a4", "a3", "a2", "a1"]
        assert fake_iotda.requests_for(INSTANCE_A) == [
            {"limit": ["2"]},
            {"limit": ["2"], "marker": ["a4"]},
            {"limit": ["2"], "marker": ["a2"]},
        ]
        out = capsys.readouterr().out
        assert "Listed 1 of 1 instance(s) in " in out
        assert ": 5 record(s) kept of 5 task(s) listed in 3 page(s); 0 failed, 0 not started" in out

    def test_exact_multiple_of_page_size_ends_on_an_empty_page(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A[:4])
        result = op(instance_ids=INSTANCE_A, page_size=2).execute({})
        assert len(result) == 4
        assert len(fake_iotda.requests_for(INSTANCE_A)) == 3

    def test_repeated_marker_fails_naming_the_instance(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.mocker.get(
            tasks_url(INSTANCE_A),
            json={"tasks": TASKS_A[:2], "page": {"count": 5, "marker": "a4"}},
        )
        with pytest.raises(AirflowException, match=f"instance {INSTANCE_A}: .*repeated"):
            op(instance_ids=INSTANCE_A, page_size=2).execute({})

    def test_filters_are_applied_client_side(self, fake_iotda: FakeIoTDA) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        result = op(
            instance_ids=[INSTANCE_A, INSTANCE_B],
            task_types=["MODIFY", "UPDATE_ALLOW_LISTS", "FREEZE"],
            statuses="SUCCESS,FAILED",
            created_after="2024-05-01T00:00:00Z",
            created_before=pendulum.datetime(2024, 5, 2),
        ).execute({})
        # a5 RUNNING, a4 at the window's end, a1 before it, b1 UNFREEZE/PENDING: all out
        assert [r["task_id"] for r in result] == ["a3", "a2", "b2"]
        # the API has no filters: nothing but paging is sent
        assert all(set(qs) <= {"limit", "marker"} for _, qs in fake_iotda.requests)

    def test_no_match_gives_an_empty_list(self, fake_iotda: FakeIoTDA, capsys: Any) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        assert op(instance_ids=INSTANCE_A, statuses="PENDING").execute({}) == []
        assert "Returning 0 record(s) of 1 instance(s) as XCom" in capsys.readouterr().out


# -- concurrency -----------------------------------------------------------------------------


class TestConcurrency:
    def test_instances_are_fetched_at_the_same_time(self, loopback_iotda: LoopbackIoTDA) -> None:
        for instance in (INSTANCE_A, INSTANCE_B, INSTANCE_C):
            loopback_iotda.add(instance, TASKS_B)
        # Each request waits until all three are in flight: passes only if they overlap.
        barrier = threading.Barrier(3, timeout=20)
        loopback_iotda.on_request = lambda _: barrier.wait()
        result = op(instance_ids=[INSTANCE_A, INSTANCE_B, INSTANCE_C], max_concurrency=3).execute(
            {}
        )
        assert [r["instance_id"] for r in result] == [INSTANCE_A] * 2 + [INSTANCE_B] * 2 + [
            INSTANCE_C
        ] * 2

    def test_concurrency_is_bounded(self, loopback_iotda: LoopbackIoTDA) -> None:
        instances = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(7)]
        for instance in instances:
            loopback_iotda.add(instance, TASKS_B)
        lock = threading.Lock()
        in_flight = [0]
        peak = [0]
        barrier = threading.Barrier(2, timeout=20)

        def track(_: str) -> None:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            try:
                if len(loopback_iotda.requests) < 7:  # the 7th request has no partner
                    barrier.wait()
            finally:
                with lock:
                    in_flight[0] -= 1

        loopback_iotda.on_request = track
        result = op(instance_ids=instances, max_concurrency=2).execute({})
        assert peak[0] == 2
        assert [r["instance_id"] for r in result] == [i for i in instances for _ in (1, 2)]

    def test_one_hook_per_thread_one_connection_lookup_all_closed(
        self, loopback_iotda: LoopbackIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        for instance in (INSTANCE_A, INSTANCE_B, INSTANCE_C):
            loopback_iotda.add(instance, TASKS_B)
        lookups: list[str] = []
        sessions: dict[str, set[int]] = {}
        closed: list[int] = []
        original_lookup = IoTDAHook.get_connection.__func__  # type: ignore[attr-defined]
        original_get_conn = IoTDAHook.get_conn
        original_close = IoTDAHook.close

        def get_connection(cls: Any, conn_id: str) -> Any:
            lookups.append(conn_id)
            return original_lookup(cls, conn_id)

        def get_conn(self: IoTDAHook) -> Any:
            session = original_get_conn(self)
            sessions.setdefault(threading.current_thread().name, set()).add(id(session))
            return session

        def close(self: IoTDAHook) -> None:
            if self._session is not None:
                closed.append(id(self._session))
            original_close(self)

        monkeypatch.setattr(IoTDAHook, "get_connection", classmethod(get_connection))
        monkeypatch.setattr(IoTDAHook, "get_conn", get_conn)
        monkeypatch.setattr(IoTDAHook, "close", close)
        barrier = threading.Barrier(3, timeout=20)
        loopback_iotda.on_request = lambda _: barrier.wait()
        op(instance_ids=[INSTANCE_A, INSTANCE_B, INSTANCE_C], max_concurrency=3).execute({})
        assert lookups == ["iotda_default"]
        assert len(sessions) == 3  # three worker threads...
        assert all(len(ids) == 1 for ids in sessions.values())  # ...one session each
        assert sorted(closed) == sorted(i for ids in sessions.values() for i in ids)


# -- storage output ---------------------------------------------------------------------------


class TestStorageOutput:
    @pytest.mark.parametrize("suffix", ["json", "jsonl", "csv"])
    def test_each_format_round_trips(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, suffix: str
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        target = tmp_path / "out" / f"tasks.{suffix}"
        summary = op(instance_ids=[INSTANCE_A, INSTANCE_B], destination=f"file://{target}").execute(
            {}
        )
        want = expected(INSTANCE_A, TASKS_A) + expected(INSTANCE_B, TASKS_B)
        data = target.read_bytes()
        if suffix == "csv":
            assert records.parse(data, "csv") == records.parse(
                records.serialise(want, "csv"), "csv"
            )
            rows = records.parse(data, "csv")
            assert [r["task_id"] for r in rows] == [w["task_id"] for w in want]
            assert rows[0]["target_config.flavor.type"] == "iotda.standard.s3"
            assert rows[0]["operate_window.end_time"] == "22:00"
        else:
            assert records.parse(data, suffix) == want
        assert summary == {
            "destination": f"file://{target}",
            "format": suffix,
            "records": 7,
            "bytes": len(data),
            "instances": [INSTANCE_A, INSTANCE_B],
            "by_instance": {INSTANCE_A: 5, INSTANCE_B: 2},
            "by_type": {
                "CREATE": 1,
                "FREEZE": 1,
                "MODIFY": 3,
                "UNFREEZE": 1,
                "UPDATE_ALLOW_LISTS": 1,
            },
            "by_status": {"FAILED": 1, "PENDING": 1, "RUNNING": 1, "SUCCESS": 4},
            "skipped_instances": [],
            "incomplete_instances": [],
            "instances_found": None,
            "empty": False,
        }
        json.dumps(summary)
        assert listing(target.parent) == [target.name]  # no temporary file left

    def test_explicit_format_for_an_unknown_suffix_and_a_plain_path(
        self, fake_iotda: FakeIoTDA, tmp_path: Path
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        target = tmp_path / "tasks.txt"
        op(instance_ids=INSTANCE_A, destination=str(target), output_format="jsonl").execute({})
        assert len(target.read_text().splitlines()) == 5

    @pytest.mark.parametrize(
        ("suffix", "content"),
        [("json", "[]\n"), ("jsonl", ""), ("csv", ",".join(records.CSV_COLUMNS) + "\r\n")],
    )
    def test_empty_result_still_writes_a_valid_file(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any, suffix: str, content: str
    ) -> None:
        fake_iotda.add(INSTANCE_A, [])
        target = tmp_path / f"tasks.{suffix}"
        target.write_text("old content that must go\n" * 100)
        summary = op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})
        assert target.read_bytes().decode() == content
        assert summary["records"] == 0
        assert summary["empty"] is True
        assert summary["by_type"] == {}
        assert f"No task matched: wrote an empty {suffix} file to file://{target}" in (
            capsys.readouterr().out
        )

    def test_existing_file_is_replaced_whole(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_B, TASKS_B)
        target = tmp_path / "tasks.jsonl"
        target.write_text("x" * 100_000)
        op(instance_ids=INSTANCE_B, destination=f"file://{target}").execute({})
        assert records.parse(target.read_bytes(), "jsonl") == expected(INSTANCE_B, TASKS_B)

    def test_the_file_holds_no_secret(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(security_token=OP_TOKEN))
        fake_iotda.add(INSTANCE_A, TASKS_A)
        for suffix in ("json", "csv"):
            target = tmp_path / f"tasks.{suffix}"
            summary = op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})
            for text in (target.read_text(), json.dumps(summary)):
                assert OP_SK not in text
                assert OP_TOKEN not in text


class TestAllOrNothing:
    def test_failing_instance_fails_the_task_and_writes_nothing(
        self, fake_iotda: FakeIoTDA, tmp_path: Path
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        fake_iotda.fail[INSTANCE_B] = 403
        target = tmp_path / "day" / "tasks.csv"
        with pytest.raises(AirflowException) as info:
            op(instance_ids=[INSTANCE_A, INSTANCE_B], destination=f"file://{target}").execute({})
        message = str(info.value)
        assert f"instance {INSTANCE_B}" in message
        assert "IOTDA.000006" in message
        assert f"{target} was not written" in message
        assert INSTANCE_A not in message
        assert OP_SK not in message
        assert listing(tmp_path) == []  # not even the directory

    def test_retries_then_fails_and_keeps_the_previous_file(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, retry_sleeps: list[float]
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.fail[INSTANCE_A] = 503
        target = tmp_path / "tasks.json"
        target.write_text('["yesterday"]\n')
        with pytest.raises(AirflowException, match=f"instance {INSTANCE_A}: .*503"):
            op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})
        # max_retries=3 on the connection: 4 attempts, 3 (recorded, not slept) waits
        assert len(fake_iotda.requests_for(INSTANCE_A)) == 4
        assert len(retry_sleeps) == 3
        assert target.read_text() == '["yesterday"]\n'
        assert listing(tmp_path) == ["tasks.json"]

    def test_failure_on_a_later_page(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        calls = [0]

        def fail_third_request(_: str) -> None:
            calls[0] += 1
            if calls[0] == 3:
                fake_iotda.fail[INSTANCE_A] = 400

        fake_iotda.on_request = fail_third_request
        target = tmp_path / "tasks.jsonl"
        with pytest.raises(AirflowException, match=f"instance {INSTANCE_A}"):
            op(instance_ids=INSTANCE_A, page_size=2, destination=f"file://{target}").execute({})
        assert listing(tmp_path) == []

    def test_storage_error_names_the_path_and_leaves_nothing(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        target = tmp_path / "tasks.jsonl"
        target.write_text("previous\n")

        def broken_replace(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(storage.os, "replace", broken_replace)
        with pytest.raises(AirflowException, match=f"Could not write file://{target}: OSError"):
            op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})
        assert target.read_text() == "previous\n"
        assert listing(tmp_path) == ["tasks.jsonl"]  # the temporary file was removed

    def test_unwritable_destination(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        (tmp_path / "blocker").write_text("a file, not a directory")
        target = tmp_path / "blocker" / "tasks.csv"
        with pytest.raises(AirflowException, match=f"Could not write file://{target}"):
            op(instance_ids=INSTANCE_A, destination=f"file://{target}").execute({})

    def test_unexpected_error_is_not_skipped(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)

        def broken(*args: Any) -> Any:
            raise KeyError("bug")

        monkeypatch.setattr(operator_module.records, "task_record", broken)
        with pytest.raises(AirflowException, match=f"instance {INSTANCE_A}: 'bug'"):
            op(instance_ids=INSTANCE_A, on_instance_error="skip").execute({})


class TestSkip:
    def test_failing_instance_is_skipped_and_reported(
        self, fake_iotda: FakeIoTDA, tmp_path: Path, capsys: Any
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        fake_iotda.add(INSTANCE_C, TASKS_B[:1])
        fake_iotda.fail[INSTANCE_B] = 404
        target = tmp_path / "tasks.jsonl"
        summary = op(
            instance_ids=[INSTANCE_A, INSTANCE_B, INSTANCE_C],
            destination=f"file://{target}",
            on_instance_error="skip",
        ).execute({})
        assert records.parse(target.read_bytes(), "jsonl") == expected(
            INSTANCE_A, TASKS_A
        ) + expected(INSTANCE_C, TASKS_B[:1])
        assert summary["instances"] == [INSTANCE_A, INSTANCE_C]
        assert summary["records"] == 6
        (skipped,) = summary["skipped_instances"]
        assert skipped["instance_id"] == INSTANCE_B
        assert "404" in skipped["error"]
        assert "IOTDA.000006" in skipped["error"]
        assert f"Skipped instance {INSTANCE_B}" in capsys.readouterr().out

    def test_skip_with_xcom_output(self, fake_iotda: FakeIoTDA, capsys: Any) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.add(INSTANCE_B, TASKS_B)
        fake_iotda.fail[INSTANCE_A] = 403
        result = op(instance_ids=[INSTANCE_A, INSTANCE_B], on_instance_error="skip").execute({})
        assert result == expected(INSTANCE_B, TASKS_B)
        out = capsys.readouterr().out
        assert f"Skipped instance {INSTANCE_A}" in out
        assert "skipped 1 instance(s)" in out

    def test_all_skipped_writes_an_empty_file(self, fake_iotda: FakeIoTDA, tmp_path: Path) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        fake_iotda.fail[INSTANCE_A] = 403
        target = tmp_path / "tasks.json"
        summary = op(
            instance_ids=INSTANCE_A, destination=str(target), on_instance_error="skip"
        ).execute({})
        assert target.read_text() == "[]\n"
        assert summary["empty"] is True
        assert summary["instances"] == []
        assert [s["instance_id"] for s in summary["skipped_instances"]] == [INSTANCE_A]


# -- non-file storage -------------------------------------------------------------------------


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``memory://`` attached as an Airflow object store; yields a fresh bucket name."""
    fs = MemoryFileSystem()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
    bucket = f"iotda-test-{uuid.uuid4().hex[:8]}"
    yield bucket
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


class TestObjectStorage:
    @pytest.mark.parametrize("suffix", ["json", "csv"])
    def test_writes_through_a_non_file_scheme(
        self, fake_iotda: FakeIoTDA, memory_store: str, suffix: str
    ) -> None:
        fake_iotda.add(INSTANCE_A, TASKS_A)
        url = f"memory://{memory_store}/iotda/2024-05-01/tasks.{suffix}"
        summary = op(instance_ids=INSTANCE_A, destination=url).execute({})
        path = ObjectStoragePath(url)
        with path.open("rb") as handle:
            data = handle.read()
        want = expected(INSTANCE_A, TASKS_A)
        assert records.parse(data, suffix) == records.parse(records.serialise(want, suffix), suffix)
        assert summary["destination"] == url
        assert summary["records"] == 5

    def test_failed_upload_leaves_no_object(
        self, fake_iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fs = FakeObjectStore(fail_write=True)
        monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
        fake_iotda.add(INSTANCE_A, TASKS_A)
        url = "memory://bucket/iotda/tasks.jsonl"
        with pytest.raises(AirflowException, match=f"Could not write {url}: ConnectionResetError"):
            op(instance_ids=INSTANCE_A, destination=url).execute({})
        assert fs.store == {}
