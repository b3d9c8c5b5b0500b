"""IoTDAInstanceTaskReportOperator: parse-time and rendered validation, every source form
(dump in each format, the list operator's summary, XCom records, rendered text), local and
``memory://`` destinations, all-or-nothing writes and the summary it returns."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_iotda import records
from airflow_provider_iotda.compat import AirflowException, AirflowFailException
from airflow_provider_iotda.get_provider_info import get_provider_info
from airflow_provider_iotda.operators.report import IoTDAInstanceTaskReportOperator

from .operator_fakes import INSTANCE_A, INSTANCE_B, REPO, api_task


def rec(instance_id: str, task: dict[str, Any]) -> dict[str, Any]:
    return {"instance_id": instance_id, "project_id": "0123456789abcdef0123456789abcdef", **task}


RECORDS = [
    rec(
        INSTANCE_A,
        api_task(
            "a2",
            "MODIFY",
            "FAILED",
            "2024-05-01T12:00:00.000Z",
            start_time="2024-05-01T12:00:05.000Z",
            end_time="2024-05-01T12:10:05.000Z",
            status_detail="<script>alert(1)</script> no capacity",
            target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}},
        ),
    ),
    rec(
        INSTANCE_A,
        api_task(
            "a1",
            "CREATE",
            "SUCCESS",
            "2024-05-01T01:00:00.000Z",
            start_time="2024-05-01T01:00:00.000Z",
            end_time="2024-05-01T01:30:00.000Z",
        ),
    ),
    rec(INSTANCE_B, api_task("b1", "MODIFY", "RUNNING", "2024-05-01T06:00:00.000Z")),
]
INCOMPLETE = [{"instance_id": INSTANCE_B, "oldest_listed": "2024-05-01T06:00:00.000Z"}]


def op(**kwargs: Any) -> IoTDAInstanceTaskReportOperator:
    kwargs.setdefault("task_id", "report")
    return IoTDAInstanceTaskReportOperator(**kwargs)


def dump(tmp_path: Path, fmt: str, rows: list[dict[str, Any]] = RECORDS) -> Path:
    path = tmp_path / f"tasks.{fmt}"
    path.write_bytes(records.serialise(rows, fmt))
    return path


def expected_summary(destination: str, page: bytes, **overrides: Any) -> dict[str, Any]:
    return {
        "destination": destination,
        "bytes": len(page),
        "records": 3,
        "instances": 2,
        "by_type": {"CREATE": 1, "MODIFY": 2},
        "by_status": {"SUCCESS": 1, "FAILED": 1, "RUNNING": 1},
        "failed": 1,
        "incomplete_instances": None,
        **overrides,
    }


# -- parse time -------------------------------------------------------------------------------


class TestParseTime:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"source": "/data/tasks.jsonl", "records": []},
        ],
    )
    def test_exactly_one_of_source_and_records(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=r"give exactly one of source .* and records"):
            op(destination="/data/report.html", **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"destination": "/data/report.json"}, r"destination must name an \.html"),
            ({"destination": "report.html"}, "destination must be an absolute path or a URL"),
            ({"destination": "/data/../etc/report.html"}, "destination must not contain '.'"),
            ({"destination": ""}, "destination must be an absolute path"),
            ({"source": "/data/tasks"}, "source_format is not given and cannot be inferred"),
            ({"source": "/data/x.jsonl", "source_format": "xml"}, "source_format must be one of"),
            ({"source": "s3://b/x.jsonl?v=2"}, "source must not contain"),
            ({"source": "/data/r.html", "source_format": "json"}, "destination must differ"),
            ({"title": ""}, "title must be a non-empty string"),
            ({"title": "x" * 201}, "at most 200 characters"),
            ({"records": {"a": 1}}, "records must be a list of task records"),
            ({"records": ["a1"]}, r"records item 0 must be a task record"),
            ({"records": "not json ["}, "records must be a list of task records"),
            ({"incomplete_instances": 3}, "incomplete_instances must be a list"),
            ({"source": {"format": "json"}}, "source must be a path/URL or the list operator"),
        ],
    )
    def test_literal_values_are_checked(self, kwargs: dict[str, Any], message: str) -> None:
        kwargs.setdefault("destination", "/data/r.html")
        if "source" not in kwargs and "records" not in kwargs:
            kwargs["source"] = "/data/tasks.jsonl"
        with pytest.raises(ValueError, match=message):
            op(**kwargs)

    def test_templates_wait_for_rendering(self) -> None:
        task = op(
            source="{{ ti.xcom_pull('dump_tasks')['destination'] }}",
            destination="file:///data/{{ ds }}/report.html",
            title="IoTDA tasks on {{ ds }}",
            incomplete_instances="{{ ti.xcom_pull('dump_tasks')['incomplete_instances'] }}",
        )
        assert task.template_fields == (
            "source",
            "records",
            "destination",
            "source_format",
            "title",
            "incomplete_instances",
        )
        op(records="{{ ti.xcom_pull('dump_tasks') }}", destination="/data/r.html")

    def test_an_xcom_arg_waits_for_the_run(self) -> None:
        from airflow.sdk import DAG
        from airflow.sdk.definitions.xcom_arg import XComArg

        from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

        with DAG("report_xcomarg_dag", schedule=None):
            listing = IoTDAInstanceTaskListOperator(task_id="dump_tasks", instance_ids=INSTANCE_A)
            task = op(records=listing.output, destination="/data/r.html")
        assert isinstance(task.records, XComArg)
        assert task.upstream_task_ids == {"dump_tasks"}


# -- execution --------------------------------------------------------------------------------


class TestSources:
    @pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
    def test_every_dump_format(self, tmp_path: Path, fmt: str) -> None:
        source = dump(tmp_path, fmt)
        target = tmp_path / "out" / "report.html"
        summary = op(source=f"file://{source}", destination=f"file://{target}").execute({})
        page = target.read_bytes()
        assert summary == expected_summary(f"file://{target}", page)
        text = page.decode()
        assert text.startswith("<!DOCTYPE html>")
        assert "&lt;script&gt;alert(1)&lt;/script&gt; no capacity" in text
        assert "<script" not in text
        assert "iotda.standard.s3 \u00d7 2" in text
        assert "10 min 00 s" in text  # the MODIFY's duration (from its start)
        assert f"file://{source}" in text  # the page names its source

    def test_source_format_overrides_the_suffix(self, tmp_path: Path) -> None:
        source = tmp_path / "tasks.txt"
        source.write_bytes(records.serialise(RECORDS, "jsonl"))
        target = tmp_path / "report.html"
        summary = op(source=str(source), source_format="jsonl", destination=str(target)).execute({})
        assert summary["records"] == 3

    def test_the_list_operators_summary_as_source(self, tmp_path: Path) -> None:
        source = dump(tmp_path, "csv")
        listing_summary = {
            "destination": f"file://{source}",
            "format": "csv",
            "records": 3,
            "incomplete_instances": INCOMPLETE,
        }
        target = tmp_path / "report.html"
        summary = op(source=listing_summary, destination=str(target)).execute({})
        assert summary["incomplete_instances"] == 1
        text = target.read_text()
        assert "Instances flagged incomplete" in text
        assert "2024-05-01 06:00:00" in text

    def test_records_from_xcom(self, tmp_path: Path) -> None:
        target = tmp_path / "report.html"
        summary = op(
            records=RECORDS, destination=str(target), incomplete_instances=INCOMPLETE
        ).execute({})
        page = target.read_bytes()
        assert summary == expected_summary(str(target), page, incomplete_instances=1)
        assert 'source <span class="mono">XCom</span>' in page.decode()

    def test_rendered_templates(self, tmp_path: Path) -> None:
        """As users template it: a non-native template renders the XCom as Python text."""
        task = op(
            records="{{ params.rows }}",
            destination="file://" + str(tmp_path) + "/{{ ds }}/report.html",
            title="IoTDA tasks on {{ ds }}",
            incomplete_instances="{{ params.incomplete }}",
        )
        task.render_template_fields(
            {"ds": "2024-05-01", "params": {"rows": RECORDS, "incomplete": INCOMPLETE}}
        )
        summary = task.execute({})
        text = (tmp_path / "2024-05-01" / "report.html").read_text()
        assert "<title>IoTDA tasks on 2024-05-01</title>" in text
        assert summary["records"] == 3
        assert summary["incomplete_instances"] == 1

    def test_rendered_values_are_validated(self, tmp_path: Path) -> None:
        task = op(source="{{ params.src }}", destination=str(tmp_path / "r.html"))
        task.render_template_fields({"params": {"src": "relative/tasks.jsonl"}})
        with pytest.raises(ValueError, match="source must be an absolute path or a URL"):
            task.execute({})
        assert not (tmp_path / "r.html").exists()

    def test_empty_dump(self, tmp_path: Path) -> None:
        source = dump(tmp_path, "csv", [])
        target = tmp_path / "report.html"
        summary = op(source=str(source), destination=str(target)).execute({})
        assert (summary["records"], summary["instances"], summary["failed"]) == (0, 0, 0)
        assert "The records hold no task" in target.read_text()


class TestFailures:
    def test_missing_source_writes_nothing(self, tmp_path: Path) -> None:
        target = tmp_path / "report.html"
        with pytest.raises(AirflowException, match=r"Could not read source .*tasks.jsonl"):
            op(source=str(tmp_path / "tasks.jsonl"), destination=str(target)).execute({})
        assert list(tmp_path.iterdir()) == []

    def test_corrupt_source_names_it(self, tmp_path: Path) -> None:
        source = tmp_path / "tasks.json"
        source.write_text('{"not": "an array"}')
        with pytest.raises(ValueError, match=r"source .*tasks\.json is not a valid json dump"):
            op(source=str(source), destination=str(tmp_path / "r.html")).execute({})

    def test_bad_record_names_the_field(self, tmp_path: Path) -> None:
        rows = [{**RECORDS[0], "end_time": "tomorrow"}]
        with pytest.raises(ValueError, match=r"end_time of records item 0 must be an ISO-8601"):
            op(records=rows, destination=str(tmp_path / "r.html")).execute({})

    @pytest.mark.parametrize("field", ["destination", "source"])
    def test_unknown_scheme_is_refused_when_the_dag_is_parsed(
        self, tmp_path: Path, field: str
    ) -> None:
        kwargs = {"source": str(tmp_path / "t.jsonl"), "destination": str(tmp_path / "r.html")}
        kwargs[field] = "obs://bucket/iotda/r.html"
        with pytest.raises(ValueError) as info:
            op(**kwargs)
        message = str(info.value)
        assert message.startswith(f"{field} 'obs://bucket/iotda/r.html' uses the scheme obs://")
        assert "s3://AWS_CONN_ID@BUCKET/KEY" in message

    def test_a_scheme_without_filesystem_fails_before_reading(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.sdk.io import fs as airflow_fs

        monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: {})  # no provider
        source = tmp_path / "tasks.jsonl"
        read: list[str] = []
        monkeypatch.setattr(IoTDAInstanceTaskReportOperator, "_read", lambda *a: read.append("x"))
        with pytest.raises(AirflowFailException, match=r"^destination 'gs://b/r.html' uses the"):
            op(source=str(source), destination="gs://b/r.html").execute({})
        assert read == []

    def test_a_parquet_source_without_pyarrow_is_refused_when_the_dag_is_parsed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        with pytest.raises(ValueError, match=r"^source means the parquet format, which needs"):
            op(source=str(tmp_path / "t.parquet"), destination=str(tmp_path / "r.html"))

    def test_s3_without_the_amazon_provider_names_the_package(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.sdk.io import fs as airflow_fs

        for key in [k for k in _STORE_CACHE if k.startswith("s3")]:
            monkeypatch.delitem(_STORE_CACHE, key)
        monkeypatch.setattr(airflow_fs, "_register_filesystems", lambda: {})  # no provider
        url = "s3://aws_default@bucket/r.html"
        with pytest.raises(
            AirflowException, match=r"apache-airflow-providers-amazon with its s3fs"
        ):
            op(source=str(tmp_path / "absent.jsonl"), destination=url).execute({})

    def test_failed_local_write_keeps_the_old_page(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow_provider_iotda import storage

        target = tmp_path / "report.html"
        target.write_text("yesterday's page")

        def broken_replace(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(storage.os, "replace", broken_replace)
        with pytest.raises(AirflowException, match=r"Could not write .*OSError: disk full"):
            op(records=RECORDS, destination=str(target)).execute({})
        assert target.read_text() == "yesterday's page"
        assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left


# -- object storage ---------------------------------------------------------------------------


class _FailingUploadFS(MemoryFileSystem):
    """An in-memory object store whose uploads fail after part of the data."""

    store: dict[str, Any] = {}
    pseudo_dirs = [""]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        handle = super()._open(path, mode, **kwargs)
        if "w" in mode:
            write: Callable[[bytes], int] = handle.write

            def fail(data: bytes) -> int:
                write(data[: len(data) // 2])
                raise ConnectionResetError("connection reset during upload")

            handle.write = fail
        return handle


@pytest.fixture
def memory_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MemoryFileSystem, str]]:
    """``memory://`` attached as an Airflow object store; yields it and a fresh bucket name."""
    fs = MemoryFileSystem()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
    bucket = f"iotda-report-{uuid.uuid4().hex[:8]}"
    yield fs, bucket
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


class TestObjectStorage:
    def test_memory_source_and_destination(
        self, memory_store: tuple[MemoryFileSystem, str]
    ) -> None:
        fs, bucket = memory_store
        source = f"memory://{bucket}/iotda/2024-05-01/tasks.jsonl"
        with ObjectStoragePath(source).open("wb") as handle:
            handle.write(records.serialise(RECORDS, "jsonl"))
        destination = f"memory://{bucket}/iotda/2024-05-01/report.html"
        summary = op(source=source, destination=destination).execute({})
        page = fs.cat_file(f"/{bucket}/iotda/2024-05-01/report.html")
        assert summary == expected_summary(destination, page)
        assert b"Failed tasks (1)" in page

    def test_objectstoragepath_destination(
        self, memory_store: tuple[MemoryFileSystem, str]
    ) -> None:
        fs, bucket = memory_store
        destination = ObjectStoragePath(f"memory://{bucket}/report.html")
        summary = op(records=RECORDS, destination=destination).execute({})
        assert summary["destination"] == str(destination)  # memory:/// on Airflow 3.1
        assert fs.exists(f"/{bucket}/report.html")

    def test_failed_upload_leaves_no_object(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fs = _FailingUploadFS()
        monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
        url = "memory://bucket/report.html"
        with pytest.raises(AirflowException, match=f"Could not write {url}: ConnectionResetError"):
            op(records=RECORDS, destination=url).execute({})
        assert not fs.exists("/bucket/report.html")
        assert _FailingUploadFS.store == {}


# -- packaging --------------------------------------------------------------------------------


def test_listed_in_the_provider_info() -> None:
    modules = [m for entry in get_provider_info()["operators"] for m in entry["python-modules"]]
    assert "airflow_provider_iotda.operators.report" in modules


def test_import_is_cheap() -> None:
    """Over what ``import airflow.sdk`` loads anyway, the operator adds no HTTP client or hook."""
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_iotda.operators.report\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('airflow_provider_iotda.hooks', 'requests', 'httpx', 'urllib3', 'tenacity',"
        " 'pyarrow', 'airflow_provider_iotda.simulator')\n"
        "print(json.dumps(sorted(m for m in added if m.startswith(heavy))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert json.loads(out.stdout) == []


def test_the_pure_module_does_not_import_airflow() -> None:
    code = (
        "import sys\nimport airflow_provider_iotda.report\n"
        "print(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"
